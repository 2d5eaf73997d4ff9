#!/usr/bin/env bash
# Key Vault VM extension on a Linux VM with the az CLI. --settings takes the FILE (az reads it): no shell quoting
# of JSON, no escaped quotes. kvvm ignores the "$schema" editor hint in the file.
set -euo pipefail
RG=${RG:-rg-web}
VM=${VM:-web1}
cd "$(dirname "$0")"

# Check the settings first (same verdict as the extension on the VM).
"${KVVM:-kvvm}" validate ../linux.settings.json --platform linux   # KVVM="node /path/to/kvvm/lib/handler/cli.js"

az vm extension set \
  --resource-group "$RG" \
  --vm-name "$VM" \
  --name KeyVaultForLinux \
  --publisher Microsoft.Azure.KeyVault \
  --version 3.0 \
  --enable-auto-upgrade true \
  --settings ../linux.settings.json

# Scale set: the same, then make the app's extension wait for ours, and roll the model out.
# az vmss extension set -g "$RG" --vmss-name webss -n KeyVaultForLinux --publisher Microsoft.Azure.KeyVault \
#   --version 3.0 --settings ../linux.settings.json
# az vmss extension set -g "$RG" --vmss-name webss -n CustomScript --publisher Microsoft.Azure.Extensions \
#   --version 2.1 --provision-after-extensions KeyVaultForLinux --settings '{"commandToExecute":"systemctl restart nginx"}'
# az vmss update-instances -g "$RG" -n webss --instance-ids '*'

az vm extension show --resource-group "$RG" --vm-name "$VM" --name KeyVaultForLinux --instance-view \
  --query "instanceView.{status: statuses[0].displayStatus, message: statuses[0].message}" -o table
