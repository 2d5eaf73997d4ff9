# Key Vault VM extension on a Windows VM with Az PowerShell.
#
# Pass the settings as a HASHTABLE to -Settings. Do NOT build a JSON string and pass it as the value of a
# hashtable key or through ConvertTo-Json into -SettingString twice: the extension then receives a JSON *string*
# inside JSON ("Failed to parse the configuration settings with: not an object"), the double-encoding trap.
param(
    [string] $ResourceGroupName = 'rg-web',
    [string] $VMName = 'iis1',
    [string] $Location = 'westeurope'
)

$settings = @{
    secretsManagementSettings = @{
        pollingIntervalInS   = '3600'
        linkOnRenewal        = $true
        requireInitialSync   = $true
        observedCertificates = @(
            @{
                url                      = 'https://contoso-kv.vault.azure.net/secrets/web'
                certificateStoreName     = 'MY'
                certificateStoreLocation = 'LocalMachine'
                keyExportable            = $false
                accounts                 = @('Network Service')
            }
        )
    }
    authenticationSettings = @{
        msiEndpoint = 'http://169.254.169.254/metadata/identity/oauth2/token'
        msiClientId = 'c7373ae5-91c2-4165-8ab6-7381d6e75619'
    }
}

Set-AzVMExtension -ResourceGroupName $ResourceGroupName -VMName $VMName -Location $Location `
    -Name 'KeyVaultForWindows' -Publisher 'Microsoft.Azure.KeyVault' -ExtensionType 'KeyVaultForWindows' `
    -TypeHandlerVersion '3.0' -Settings $settings

Get-AzVMExtension -ResourceGroupName $ResourceGroupName -VMName $VMName -Name 'KeyVaultForWindows' -Status |
    Select-Object -ExpandProperty Statuses
