/**
 * `kvvm deploy vm|vmss`: validate the settings exactly as the handler will, then create or update the extension
 * through Azure Resource Manager (@azure/arm-compute). Nothing is sent when the settings are invalid.
 *
 * Sequencing on scale sets: `provisionAfterExtensions` lives on the extension that WAITS. `--provision-after A,B`
 * makes ours wait for A and B; `--dependents X,Y` adds ours to X's and Y's provisionAfterExtensions (read-modify-
 * write of those extensions), which is what "start the web server only once the certificates are installed" needs.
 */
import { readFile as fsReadFile } from 'node:fs/promises';
import type { VirtualMachineExtension, VirtualMachineScaleSetExtension } from '@azure/arm-compute';
import { KvvmError } from '../errors.js';
import { describeJsonError } from '../jsonError.js';
import { connectArm, describeArmError, resolveSubscription, type ArmConnection, type ArmDeps } from './armClient.js';
import { checkDeploySettings, DEFAULT_TYPE_HANDLER_VERSION, inferOs, planExtension, type ExtensionPlan, type OsKind, type TargetKind } from './extension.js';
import { listValue, parseFlags, requireValue, usageError } from './flags.js';
import { buildStatusView, failureMessages, formatStatusView } from './instanceView.js';

export interface ToolIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: Record<string, string | undefined>;
  readFile?: (path: string) => Promise<string>;
}

export const DEPLOY_USAGE =
  'kvvm deploy vm|vmss --resource-group RG --name NAME --settings FILE [--subscription ID] [--os linux|windows] ' +
  '[--extension-name NAME] [--type-handler-version 3.0] [--location LOC] [--protected-settings FILE] ' +
  '[--provision-after EXT1,EXT2] [--dependents EXT1,EXT2] [--no-auto-upgrade-minor] [--enable-automatic-upgrade] [--wait]';

const FLAGS = {
  values: ['resource-group', 'name', 'settings', 'subscription', 'os', 'extension-name', 'type-handler-version', 'location', 'protected-settings', 'provision-after', 'dependents'],
  switches: ['no-auto-upgrade-minor', 'enable-automatic-upgrade', 'wait'],
} as const;

async function readJsonObject(io: ToolIo, path: string, what: string): Promise<Record<string, unknown>> {
  const read = io.readFile ?? ((p: string) => fsReadFile(p, 'utf8'));
  let text: string;
  try {
    text = await read(path);
  } catch (err) {
    throw new KvvmError('usage', `Cannot read the ${what} file ${path}: ${(err as Error).message}.`, { fix: 'Check the path.' });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    throw new KvvmError('settings-invalid', `The ${what} file ${path} is not valid JSON ${describeJsonError(text.replace(/^\uFEFF/, ''))}.`, {
      fix: 'Fix the JSON syntax (kvvm validate shows where).',
    });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new KvvmError('settings-invalid', `The ${what} file ${path} must hold a JSON object.`, { fix: 'Write the settings as {"secretsManagementSettings": {...}}.' });
  }
  return doc as Record<string, unknown>;
}

function parseOs(value: string | undefined): OsKind | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (v === 'linux' || v === 'windows') return v;
  throw usageError(`--os must be linux or windows, not "${value}".`, DEPLOY_USAGE);
}

interface Waiter {
  label: string;
  wait: boolean;
  io: ToolIo;
}

/** Runs one ARM long-running operation: submit, then (with --wait) poll with a progress line per poll. */
async function runOperation<T>(
  poller: {
    submitted(): Promise<void>;
    pollUntilDone(): Promise<T>;
    onProgress(cb: (state: { status: string }) => void): unknown;
    readonly operationState?: { status: string } | undefined;
  },
  w: Waiter,
): Promise<{ done: boolean; result?: T }> {
  await poller.submitted();
  if (!w.wait) {
    w.io.stdout(`${w.label}: submitted (${poller.operationState?.status ?? 'running'}).\n`);
    return { done: false };
  }
  let polls = 0;
  poller.onProgress((state) => {
    polls += 1;
    w.io.stdout(`… ${w.label}: ${state.status} (poll ${polls})\n`);
  });
  const result = await poller.pollUntilDone();
  return { done: true, result };
}

/** "The long-running operation has failed. CODE. message" → "CODE: message". */
function lroFailure(err: unknown): string | undefined {
  const msg = err instanceof Error ? err.message : '';
  const m = /^The long-running operation has failed\.?\s*(.*)$/s.exec(msg);
  if (!m) return undefined;
  const rest = (m[1] ?? '').trim();
  const parts = /^([A-Za-z0-9_.-]+)\.\s+(.*)$/s.exec(rest);
  return parts ? `${parts[1]}: ${parts[2]}` : rest || 'no error details were returned';
}

export async function runDeployCommand(argv: string[], io: ToolIo, deps: ArmDeps = {}): Promise<number> {
  const flags = parseFlags(argv, FLAGS, DEPLOY_USAGE);
  const kind = flags.positionals[0];
  if (kind !== 'vm' && kind !== 'vmss') throw usageError('Say what to deploy to: kvvm deploy vm ... or kvvm deploy vmss ...', DEPLOY_USAGE);
  if (flags.positionals.length > 1) throw usageError(`Unexpected argument "${flags.positionals[1] ?? ''}".`, DEPLOY_USAGE);
  const target: TargetKind = kind;
  const resourceGroup = requireValue(flags, 'resource-group', DEPLOY_USAGE);
  const name = requireValue(flags, 'name', DEPLOY_USAGE);
  const settingsFile = requireValue(flags, 'settings', DEPLOY_USAGE);
  const provisionAfter = listValue(flags, 'provision-after');
  const dependents = listValue(flags, 'dependents');
  if (target === 'vm' && (provisionAfter.length > 0 || dependents.length > 0)) {
    throw usageError('--provision-after and --dependents apply to scale sets (provisionAfterExtensions is a VMSS property).', DEPLOY_USAGE);
  }

  // 1. Settings, checked before anything goes over the network.
  const settings = await readJsonObject(io, settingsFile, 'settings');
  const protectedFile = flags.values.get('protected-settings');
  const protectedSettings = protectedFile === undefined ? undefined : await readJsonObject(io, protectedFile, 'protected settings');
  const osFlag = parseOs(flags.values.get('os'));
  const os: OsKind = osFlag ?? inferOs(settings) ?? 'linux';
  const check = checkDeploySettings(settings, protectedSettings, os, io.env, flags.values.get('type-handler-version') || DEFAULT_TYPE_HANDLER_VERSION);
  if (!check.ok) {
    io.stderr(`kvvm deploy: ${settingsFile} is not valid for ${os === 'windows' ? 'KeyVaultForWindows' : 'KeyVaultForLinux'}; nothing was sent.\n${check.report}\n`);
    return 1;
  }
  io.stdout(
    `✓ settings valid (${check.config.generation} format, ${check.config.observedCertificates.length} certificate${check.config.observedCertificates.length === 1 ? '' : 's'}, ${os}${osFlag ? '' : ', inferred; pass --os to override'})\n`,
  );
  if (check.warnings) io.stdout(`  warnings:\n${check.warnings.replace(/^/gm, '    ')}\n`);

  const plan = planExtension({
    os,
    settings,
    ...(protectedSettings ? { protectedSettings } : {}),
    ...(flags.values.has('extension-name') ? { name: flags.values.get('extension-name') ?? '' } : {}),
    ...(flags.values.has('type-handler-version') ? { typeHandlerVersion: flags.values.get('type-handler-version') ?? '' } : {}),
    autoUpgradeMinorVersion: !flags.switches.has('no-auto-upgrade-minor'),
    enableAutomaticUpgrade: flags.switches.has('enable-automatic-upgrade'),
    provisionAfterExtensions: provisionAfter,
  });
  const subscriptionId = resolveSubscription(flags.values.get('subscription'), io.env);
  const arm = connectArm(subscriptionId, io.env, deps);
  const wait = flags.switches.has('wait');
  try {
    return target === 'vm'
      ? await deployToVm(arm, io, deps, { resourceGroup, name, plan, wait, location: flags.values.get('location'), osFlag })
      : await deployToVmss(arm, io, deps, { resourceGroup, name, plan, wait, dependents });
  } catch (err) {
    io.stderr(`✗ kvvm deploy: ${describeArmError(err)}\n`);
    return 1;
  }
}

interface VmTarget {
  resourceGroup: string;
  name: string;
  plan: ExtensionPlan;
  wait: boolean;
  location: string | undefined;
  osFlag: OsKind | undefined;
}

async function deployToVm(arm: ArmConnection, io: ToolIo, deps: ArmDeps, t: VmTarget): Promise<number> {
  const { client } = arm;
  let location = t.location;
  if (location === undefined) {
    // An extension is a tracked resource: it needs the VM's location. The VM also tells us its OS.
    const vm = await client.virtualMachines.get(t.resourceGroup, t.name);
    location = vm.location;
    const vmOs = vm.storageProfile?.osDisk?.osType?.toLowerCase();
    const planOs = t.plan.type === 'KeyVaultForWindows' ? 'windows' : 'linux';
    if (vmOs !== undefined && vmOs !== planOs) {
      io.stderr(
        `✗ VM ${t.name} runs ${vmOs}, but the extension planned is ${t.plan.type}${t.osFlag ? ' (--os)' : ' (inferred from the settings)'}. Pass --os ${vmOs} and settings for that OS.\n`,
      );
      return 1;
    }
  }
  const resource: VirtualMachineExtension = {
    location,
    ...extensionProperties(t.plan),
  };
  const label = `VM ${t.name} extension ${t.plan.name}`;
  const poller = client.virtualMachineExtensions.createOrUpdate(t.resourceGroup, t.name, t.plan.name, resource, pollOptions(deps));
  let failure: string | undefined;
  try {
    const r = await runOperation(poller, { label, wait: t.wait, io });
    if (!r.done) {
      io.stdout(`Follow it with: kvvm status vm --resource-group ${t.resourceGroup} --name ${t.name} --extension-name ${t.plan.name}\n`);
      return 0;
    }
  } catch (err) {
    failure = lroFailure(err);
    if (failure === undefined) throw err;
  }
  // The operation is over: the extension resource (with its instance view) says how it went.
  const ext = await client.virtualMachineExtensions.get(t.resourceGroup, t.name, t.plan.name, { expand: 'instanceView' });
  const view = buildStatusView(`VM ${t.name}`, t.plan.name, ext.instanceView, {
    provisioningState: ext.provisioningState,
    type: `${ext.publisher ?? t.plan.publisher}.${ext.typePropertiesType ?? t.plan.type}`,
    typeHandlerVersion: ext.typeHandlerVersion,
  });
  if (failure !== undefined || /^failed$/i.test(ext.provisioningState ?? '')) {
    io.stderr(`✗ ${label}: provisioning failed${failure ? `: ${failure}` : ''}\n`);
    for (const m of failureMessages(view)) if (!failure?.includes(m)) io.stderr(`  ${m}\n`);
    io.stderr(formatStatusView(view));
    return 1;
  }
  io.stdout(`✓ ${label}: ${ext.provisioningState ?? 'done'}\n`);
  io.stdout(formatStatusView(view));
  return 0;
}

interface VmssTarget {
  resourceGroup: string;
  name: string;
  plan: ExtensionPlan;
  wait: boolean;
  dependents: string[];
}

function pollOptions(deps: ArmDeps): { updateIntervalInMs?: number } {
  return deps.pollIntervalMs === undefined ? {} : { updateIntervalInMs: deps.pollIntervalMs };
}

/** The extension properties a VM and a scale set share. */
function extensionProperties(plan: VmTarget['plan']) {
  return {
    publisher: plan.publisher,
    typePropertiesType: plan.type,
    typeHandlerVersion: plan.typeHandlerVersion,
    autoUpgradeMinorVersion: plan.autoUpgradeMinorVersion,
    enableAutomaticUpgrade: plan.enableAutomaticUpgrade,
    settings: plan.settings,
    ...(plan.protectedSettings ? { protectedSettings: plan.protectedSettings } : {}),
  };
}

async function deployToVmss(arm: ArmConnection, io: ToolIo, deps: ArmDeps, t: VmssTarget): Promise<number> {
  const { client } = arm;
  const resource: VirtualMachineScaleSetExtension = {
    name: t.plan.name,
    ...extensionProperties(t.plan),
    ...(t.plan.provisionAfterExtensions ? { provisionAfterExtensions: t.plan.provisionAfterExtensions } : {}),
  };
  const label = `VMSS ${t.name} extension ${t.plan.name}`;
  let failed = false;
  const step = async (
    what: string,
    start: () => ReturnType<typeof client.virtualMachineScaleSetExtensions.createOrUpdate>,
  ): Promise<VirtualMachineScaleSetExtension | undefined> => {
    try {
      const r = await runOperation(start(), { label: what, wait: t.wait, io });
      return r.result;
    } catch (err) {
      const f = lroFailure(err);
      if (f === undefined) throw err;
      io.stderr(`✗ ${what}: provisioning failed: ${f}\n`);
      failed = true;
      return undefined;
    }
  };
  const ours = await step(label, () => client.virtualMachineScaleSetExtensions.createOrUpdate(t.resourceGroup, t.name, t.plan.name, resource, pollOptions(deps)));
  if (failed) return 1;
  if (ours && /^failed$/i.test(ours.provisioningState ?? '')) {
    io.stderr(`✗ ${label}: provisioning failed (provisioningState Failed).\n`);
    return 1;
  }
  if (ours)
    io.stdout(`✓ ${label}: ${ours.provisioningState ?? 'done'}${t.plan.provisionAfterExtensions ? ` (provisions after ${t.plan.provisionAfterExtensions.join(', ')})` : ''}\n`);

  for (const dep of t.dependents) {
    const current = await client.virtualMachineScaleSetExtensions.get(t.resourceGroup, t.name, dep);
    const after = current.provisionAfterExtensions ?? [];
    if (after.some((a) => a.toLowerCase() === t.plan.name.toLowerCase())) {
      io.stdout(`✓ VMSS ${t.name} extension ${dep} already provisions after ${t.plan.name}\n`);
      continue;
    }
    // Send back what was read (minus read-only fields) with our name added: nothing else of the dependent changes.
    const { provisioningState: _ps, type: _type, id: _id, ...writable } = current;
    const updated: VirtualMachineScaleSetExtension = { ...writable, name: current.name ?? dep, provisionAfterExtensions: [...after, t.plan.name] };
    const r = await step(`VMSS ${t.name} extension ${dep}`, () => client.virtualMachineScaleSetExtensions.createOrUpdate(t.resourceGroup, t.name, dep, updated, pollOptions(deps)));
    if (failed) return 1;
    io.stdout(`✓ VMSS ${t.name} extension ${dep} now provisions after ${t.plan.name}${r ? '' : ' (submitted)'}\n`);
  }
  io.stdout(
    `Scale-set model updated. Instances pick it up according to the upgrade policy (manual: az vmss update-instances -g ${t.resourceGroup} -n ${t.name} --instance-ids '*').\n` +
      `Per-instance status: kvvm status vmss --resource-group ${t.resourceGroup} --name ${t.name} --instance-id 0 --extension-name ${t.plan.name}\n`,
  );
  return 0;
}
