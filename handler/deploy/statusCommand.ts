/**
 * `kvvm status vm|vmss`: the extension's instance view from Azure Resource Manager, as a table or JSON.
 *
 * VM without --extension-name: the VM instance view, whose extensions[] entry of type Microsoft.Azure.KeyVault.*
 * is ours whatever it was named. With --extension-name: that extension, expanded with its instance view.
 * VMSS: --instance-id N reads that instance's extension (default name KeyVaultFor<os>); without it, the scale-set
 * model's extension (provisioning state only: instance views exist per instance).
 */
import type { InstanceViewStatus } from '@azure/arm-compute';
import { connectArm, describeArmError, resolveSubscription, type ArmDeps } from './armClient.js';
import type { ToolIo } from './deployCommand.js';
import { EXTENSION_PUBLISHER, extensionType } from './extension.js';
import { parseFlags, requireValue, usageError } from './flags.js';
import { buildStatusView, formatStatusView, type ExtensionStatusView } from './instanceView.js';

export const STATUS_USAGE = 'kvvm status vm|vmss --resource-group RG --name NAME [--instance-id N] [--extension-name NAME] [--os linux|windows] [--subscription ID] [--json]';

const FLAGS = { values: ['resource-group', 'name', 'instance-id', 'extension-name', 'os', 'subscription'], switches: ['json'] } as const;

/** A handler's top status tells whether it is healthy: error-level or a failed/error code means not. */
function healthy(view: ExtensionStatusView): boolean {
  if (/^failed$/i.test(view.provisioningState ?? '')) return false;
  if (view.statuses.some((s) => s.level === 'Error' || /\/(failed|error)$/i.test(s.code))) return false;
  return !view.certificates.some((c) => /^(error|failed)$/i.test(c.status));
}

export async function runStatusCommand(argv: string[], io: ToolIo, deps: ArmDeps = {}): Promise<number> {
  const flags = parseFlags(argv, FLAGS, STATUS_USAGE);
  const kind = flags.positionals[0];
  if (kind !== 'vm' && kind !== 'vmss') throw usageError('Say what to look at: kvvm status vm ... or kvvm status vmss ...', STATUS_USAGE);
  const resourceGroup = requireValue(flags, 'resource-group', STATUS_USAGE);
  const name = requireValue(flags, 'name', STATUS_USAGE);
  const instanceId = flags.values.get('instance-id');
  if (kind === 'vm' && instanceId !== undefined) throw usageError('--instance-id applies to scale sets.', STATUS_USAGE);
  const osFlag = flags.values.get('os')?.toLowerCase();
  if (osFlag !== undefined && osFlag !== 'linux' && osFlag !== 'windows') throw usageError('--os must be linux or windows.', STATUS_USAGE);
  const extName = flags.values.get('extension-name') ?? extensionType(osFlag === 'windows' ? 'windows' : 'linux');
  const { client } = connectArm(resolveSubscription(flags.values.get('subscription'), io.env), io.env, deps);

  let view: ExtensionStatusView;
  try {
    if (kind === 'vm') {
      if (flags.values.has('extension-name')) {
        const ext = await client.virtualMachineExtensions.get(resourceGroup, name, extName, { expand: 'instanceView' });
        view = buildStatusView(`VM ${name}`, extName, ext.instanceView, {
          provisioningState: ext.provisioningState,
          type: ext.publisher && ext.typePropertiesType ? `${ext.publisher}.${ext.typePropertiesType}` : undefined,
          typeHandlerVersion: ext.typeHandlerVersion,
        });
      } else {
        const iv = await client.virtualMachines.instanceView(resourceGroup, name);
        const ours = (iv.extensions ?? []).find((e) => (e.type ?? '').toLowerCase().startsWith(EXTENSION_PUBLISHER.toLowerCase() + '.'));
        if (!ours) {
          const others = (iv.extensions ?? []).map((e) => e.name ?? e.type ?? '?');
          io.stderr(`✗ VM ${name} reports no ${EXTENSION_PUBLISHER} extension${others.length ? ` (it has: ${others.join(', ')})` : ''}. Deploy it with kvvm deploy vm.\n`);
          return 1;
        }
        const provisioning = (ours.statuses ?? []).map((s: InstanceViewStatus) => s.code ?? '').find((c) => c.startsWith('ProvisioningState/'));
        view = buildStatusView(`VM ${name}`, ours.name ?? '?', ours, { provisioningState: provisioning?.slice('ProvisioningState/'.length) });
      }
    } else if (instanceId !== undefined) {
      const ext = await client.virtualMachineScaleSetVMExtensions.get(resourceGroup, name, instanceId, extName, { expand: 'instanceView' });
      view = buildStatusView(`VMSS ${name} instance ${instanceId}`, extName, ext.instanceView, {
        provisioningState: ext.provisioningState,
        type: ext.publisher && ext.typePropertiesType ? `${ext.publisher}.${ext.typePropertiesType}` : undefined,
        typeHandlerVersion: ext.typeHandlerVersion,
      });
    } else {
      const ext = await client.virtualMachineScaleSetExtensions.get(resourceGroup, name, extName);
      view = buildStatusView(`VMSS ${name} (model)`, extName, undefined, {
        provisioningState: ext.provisioningState,
        type: ext.publisher && ext.typePropertiesType ? `${ext.publisher}.${ext.typePropertiesType}` : undefined,
        typeHandlerVersion: ext.typeHandlerVersion,
      });
    }
  } catch (err) {
    io.stderr(`✗ kvvm status: ${describeArmError(err)}\n`);
    return 1;
  }
  if (flags.switches.has('json')) io.stdout(JSON.stringify(view, null, 2) + '\n');
  else {
    io.stdout(formatStatusView(view));
    if (kind === 'vmss' && instanceId === undefined) io.stdout('Instance views are per instance: add --instance-id N.\n');
  }
  return healthy(view) ? 0 : 1;
}
