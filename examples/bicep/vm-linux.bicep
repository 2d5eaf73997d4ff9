// Key Vault VM extension on an existing Linux VM. The settings live in ../linux.settings.json (edited with
// schema completion); the "$schema" editor hint is dropped before they are sent.
param vmName string = 'web1'
param location string = resourceGroup().location

var fileSettings = loadJsonContent('../linux.settings.json')
var settings = toObject(filter(items(fileSettings), kv => kv.key != '$schema'), kv => kv.key, kv => kv.value)

resource vm 'Microsoft.Compute/virtualMachines@2024-07-01' existing = {
  name: vmName
}

resource keyVaultExtension 'Microsoft.Compute/virtualMachines/extensions@2024-07-01' = {
  parent: vm
  name: 'KeyVaultForLinux'
  location: location
  properties: {
    publisher: 'Microsoft.Azure.KeyVault'
    type: 'KeyVaultForLinux'
    typeHandlerVersion: '3.0'
    autoUpgradeMinorVersion: true
    enableAutomaticUpgrade: true
    settings: settings
  }
}
