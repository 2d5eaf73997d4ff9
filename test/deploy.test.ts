/**
 * `kvvm deploy` and `kvvm status` against a local HTTPS Resource Manager (test/helpers/armServer.ts) through the
 * real @azure/arm-compute client: settings checked before anything is sent, long-running operations polled to
 * the end, failures shown with ARM's message, scale-set sequencing written on the dependent extension.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { runDeployCommand } from '../handler/deploy/deployCommand.js';
import { runStatusCommand } from '../handler/deploy/statusCommand.js';
import { startArmServer, type ArmServer } from './helpers/armServer.js';

const RG = 'rg-web';
const LINUX_SETTINGS = {
  $schema: '../schemas/settings.schema.json',
  secretsManagementSettings: {
    pollingIntervalInS: '3600',
    observedCertificates: [
      { url: 'https://myvault.vault.azure.net/secrets/web', certificateStoreLocation: '/var/lib/waagent/Microsoft.Azure.KeyVault.Store', acls: [{ user: 'www-data' }] },
    ],
  },
  authenticationSettings: { msiClientId: 'c7373ae5-91c2-4165-8ab6-7381d6e75619' },
};

const SUCCESS_VIEW = {
  name: 'KeyVaultForLinux',
  type: 'Microsoft.Azure.KeyVault.KeyVaultForLinux',
  typeHandlerVersion: '3.0.2',
  statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded', message: 'Polling started: 1 of 1 certificates in place.' }],
  substatuses: [
    {
      code: 'ComponentStatus/myvault/web/success',
      level: 'Info',
      displayStatus: 'Provisioning succeeded',
      message: 'Installed: version 0f1e2d, thumbprint AB12, expires 2030-01-01T00:00:00.000Z.',
    },
  ],
};

interface Run {
  code: number;
  out: string;
  err: string;
}

let arm: ArmServer;
let dir: string;

function io(): { io: Parameters<typeof runDeployCommand>[1]; result: () => { out: string; err: string } } {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: (s) => void (out += s),
      stderr: (s) => void (err += s),
      env: { KVVM_ARM_ENDPOINT: arm.endpoint, AZURE_SUBSCRIPTION_ID: arm.subscriptionId },
    },
    result: () => ({ out, err }),
  };
}

const deps = (): { credential: ArmServer['credential']; tlsCa: string[]; pollIntervalMs: number } => ({ credential: arm.credential, tlsCa: [arm.caPem], pollIntervalMs: 1 });

async function deploy(args: string[]): Promise<Run> {
  const h = io();
  const code = await runDeployCommand(args, h.io, deps());
  return { code, ...h.result() };
}

async function status(args: string[]): Promise<Run> {
  const h = io();
  const code = await runStatusCommand(args, h.io, deps());
  return { code, ...h.result() };
}

function settingsFile(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(content, null, 2));
  return p;
}

const puts = (): typeof arm.requests => arm.requests.filter((r) => r.method === 'PUT');
const operationPolls = (): typeof arm.requests => arm.requests.filter((r) => /\/locations\/[^/]+\/operation/i.test(r.path));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kvvm-deploy-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('kvvm deploy vm', () => {
  beforeEach(async () => {
    arm = await startArmServer();
    arm.addVm(RG, 'web1', { location: 'northeurope', osType: 'Linux' });
  });
  it('refuses invalid settings with the problems and sends no request at all', async (t) => {
    t.after(() => arm.close());
    const bad = settingsFile('bad.json', {
      secretsManagementSettings: { observedCertificates: ['https://myvault.vault.azure.net/keys/web'], pollingIntervalInSeconds: 60 },
    });
    const r = await deploy(['vm', '--resource-group', RG, '--name', 'web1', '--settings', bad, '--wait']);
    assert.equal(r.code, 1);
    assert.match(r.err, /nothing was sent/);
    assert.match(r.err, /pollingIntervalInSeconds/);
    assert.match(r.err, /\/keys\//);
    assert.equal(arm.requests.length, 0);
  });

  it('--wait polls the Azure-AsyncOperation until Succeeded, printing progress, then shows the instance view', async (t) => {
    t.after(() => arm.close());
    arm.scenario('KeyVaultForLinux', { mode: 'async-operation', polls: 3, outcome: 'Succeeded', instanceView: SUCCESS_VIEW });
    const file = settingsFile('linux.json', LINUX_SETTINGS);
    const r = await deploy(['vm', '--resource-group', RG, '--name', 'web1', '--settings', file, '--wait']);
    assert.equal(r.code, 0, r.err);
    assert.equal(puts().length, 1);
    const put = puts()[0];
    assert.ok(put?.authorized);
    assert.match(put?.path ?? '', /\/resourceGroups\/rg-web\/providers\/Microsoft\.Compute\/virtualMachines\/web1\/extensions\/KeyVaultForLinux$/);
    const body = put?.body as { location: string; properties: Record<string, unknown> };
    assert.equal(body.location, 'northeurope'); // read from the VM
    assert.equal(body.properties['publisher'], 'Microsoft.Azure.KeyVault');
    assert.equal(body.properties['type'], 'KeyVaultForLinux');
    assert.equal(body.properties['typeHandlerVersion'], '3.0');
    assert.equal(body.properties['autoUpgradeMinorVersion'], true);
    assert.equal(body.properties['enableAutomaticUpgrade'], false);
    const { $schema: _s, ...expected } = LINUX_SETTINGS;
    assert.deepEqual(body.properties['settings'], expected); // an object, not a JSON string; no editor hint
    assert.ok(operationPolls().length >= 4, `expected 3 running polls and a final one, saw ${operationPolls().length}`);
    assert.ok((r.out.match(/\(poll \d+\)/g) ?? []).length >= 3, r.out);
    assert.match(r.out, /✓ VM web1 extension KeyVaultForLinux: Succeeded/);
    assert.match(r.out, /myvault\/web\s+success\s+Installed: version 0f1e2d/);
  });

  it("a provisioning that ends Failed shows ARM's error and the extension's own message, exit 1", async (t) => {
    t.after(() => arm.close());
    arm.scenario('KeyVaultForLinux', {
      mode: 'async-operation',
      polls: 2,
      outcome: 'Failed',
      error: {
        code: 'VMExtensionProvisioningError',
        message: 'VM has reported a failure when processing extension \'KeyVaultForLinux\'. Error message: "Identity not found".',
      },
      instanceView: {
        name: 'KeyVaultForLinux',
        type: 'Microsoft.Azure.KeyVault.KeyVaultForLinux',
        statuses: [
          {
            code: 'ProvisioningState/failed/1',
            level: 'Error',
            displayStatus: 'Provisioning failed',
            message: 'The metadata endpoint has no user-assigned identity with client id c7373ae5-91c2-4165-8ab6-7381d6e75619. Fix: assign it to the VM.',
          },
        ],
      },
    });
    const file = settingsFile('linux-fail.json', LINUX_SETTINGS);
    const r = await deploy(['vm', '--resource-group', RG, '--name', 'web1', '--settings', file, '--wait']);
    assert.equal(r.code, 1);
    assert.match(r.err, /provisioning failed: VMExtensionProvisioningError: VM has reported a failure .*Identity not found/);
    assert.match(r.err, /no user-assigned identity with client id c7373ae5/);
  });

  it('without --wait it submits the PUT once and does not poll', async (t) => {
    t.after(() => arm.close());
    arm.scenario('KeyVaultForLinux', { mode: 'async-operation', polls: 5 });
    const file = settingsFile('linux-nowait.json', LINUX_SETTINGS);
    const r = await deploy([
      'vm',
      '--resource-group',
      RG,
      '--name',
      'web1',
      '--settings',
      file,
      '--location',
      'westeurope',
      '--no-auto-upgrade-minor',
      '--enable-automatic-upgrade',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.equal(puts().length, 1);
    assert.equal(operationPolls().length, 0);
    assert.equal(arm.requests.filter((q) => q.method === 'GET').length, 0); // --location given: no VM lookup
    const props = (puts()[0]?.body as { properties: Record<string, unknown> }).properties;
    assert.equal(props['autoUpgradeMinorVersion'], false);
    assert.equal(props['enableAutomaticUpgrade'], true);
    assert.match(r.out, /submitted/);
    assert.match(r.out, /kvvm status vm/);
  });

  it('Windows settings (inferred) for a Linux VM are refused before the PUT', async (t) => {
    t.after(() => arm.close());
    const file = settingsFile('win.json', {
      secretsManagementSettings: {
        observedCertificates: [{ url: 'https://myvault.vault.azure.net/secrets/web', certificateStoreName: 'MY', certificateStoreLocation: 'LocalMachine' }],
      },
    });
    const r = await deploy(['vm', '--resource-group', RG, '--name', 'web1', '--settings', file]);
    assert.equal(r.code, 1);
    assert.match(r.err, /runs linux, but the extension planned is KeyVaultForWindows/);
    assert.equal(puts().length, 0);
  });

  it('an ARM 404 for the VM is reported with the fix', async (t) => {
    t.after(() => arm.close());
    const file = settingsFile('linux-404.json', LINUX_SETTINGS);
    const r = await deploy(['vm', '--resource-group', RG, '--name', 'nosuchvm', '--settings', file]);
    assert.equal(r.code, 1);
    assert.match(r.err, /404 ResourceNotFound/);
    assert.match(r.err, /check --subscription, --resource-group and --name/);
  });
});

describe('kvvm deploy vmss', () => {
  beforeEach(async () => {
    arm = await startArmServer();
    arm.addVmss(RG, 'webss', { instances: ['0', '3'] });
    arm.seedVmssExtension(RG, 'webss', 'CustomScript', {
      publisher: 'Microsoft.Azure.Extensions',
      type: 'CustomScript',
      typeHandlerVersion: '2.1',
      autoUpgradeMinorVersion: true,
      settings: { commandToExecute: 'systemctl restart nginx' },
    });
  });

  it("--dependents adds ours to the dependent extension's provisionAfterExtensions; Location polling to the end", async (t) => {
    t.after(() => arm.close());
    arm.scenario('KeyVaultForLinux', { mode: 'location', polls: 3, outcome: 'Succeeded' });
    arm.scenario('CustomScript', { mode: 'location', polls: 1, outcome: 'Succeeded' });
    const file = settingsFile('vmss.json', LINUX_SETTINGS);
    const r = await deploy([
      'vmss',
      '--resource-group',
      RG,
      '--name',
      'webss',
      '--settings',
      file,
      '--provision-after',
      'HealthExtension',
      '--dependents',
      'CustomScript',
      '--wait',
    ]);
    assert.equal(r.code, 0, r.err);
    const ours = arm.extension(`${RG}/vmss/webss/KeyVaultForLinux`);
    assert.deepEqual((ours?.['properties'] as Record<string, unknown>)['provisionAfterExtensions'], ['HealthExtension']);
    assert.equal((ours?.['properties'] as Record<string, unknown>)['provisioningState'], 'Succeeded');
    const dep = arm.extension(`${RG}/vmss/webss/CustomScript`)?.['properties'] as Record<string, unknown>;
    assert.deepEqual(dep['provisionAfterExtensions'], ['KeyVaultForLinux']);
    assert.deepEqual(dep['settings'], { commandToExecute: 'systemctl restart nginx' }); // nothing else changed
    assert.equal(dep['typeHandlerVersion'], '2.1');
    assert.ok(operationPolls().length >= 4 + 2);
    assert.match(r.out, /CustomScript now provisions after KeyVaultForLinux/);
  });

  it('--provision-after is refused for a single VM (it is a scale-set property)', async (t) => {
    t.after(() => arm.close());
    const file = settingsFile('vm-pa.json', LINUX_SETTINGS);
    await assert.rejects(
      runDeployCommand(['vm', '--resource-group', RG, '--name', 'web1', '--settings', file, '--provision-after', 'X'], io().io, deps()),
      (e: { reason?: string }) => e.reason === 'usage',
    );
    assert.equal(arm.requests.length, 0);
  });
});

describe('kvvm status', () => {
  before(async () => {
    arm = await startArmServer();
    arm.addVm(RG, 'web1', { osType: 'Linux' });
    arm.scenario('KeyVaultForLinux', { mode: 'sync', instanceView: SUCCESS_VIEW });
    arm.addVmss(RG, 'webss', { instances: ['0'] });
    const file = settingsFile('status.json', LINUX_SETTINGS);
    assert.equal((await deploy(['vm', '--resource-group', RG, '--name', 'web1', '--settings', file, '--location', 'westus'])).code, 0);
    arm.scenario('KeyVaultForLinux', { mode: 'sync' });
    assert.equal((await deploy(['vmss', '--resource-group', RG, '--name', 'webss', '--settings', file])).code, 0);
    arm.setVmssInstanceView(RG, 'webss', '0', 'KeyVaultForLinux', {
      name: 'KeyVaultForLinux',
      statuses: [
        { code: 'ProvisioningState/transitioning', level: 'Info', displayStatus: 'Transitioning', message: 'Initial sync: 0 of 1 certificates in place; attempt 2 of 25 failed.' },
      ],
      substatuses: [
        {
          code: 'ComponentStatus/myvault/web/error',
          level: 'Error',
          displayStatus: 'Provisioning failed',
          message: "Vault myvault.vault.azure.net refused access (403). Fix: assign 'Key Vault Secrets User'.",
        },
      ],
    });
  });
  after(async () => arm.close());

  it('vm: finds the Key Vault extension in the VM instance view and prints the per-certificate table', async () => {
    const r = await status(['vm', '--resource-group', RG, '--name', 'web1']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /VM web1, extension KeyVaultForLinux/);
    assert.match(r.out, /provisioning: succeeded/);
    assert.match(r.out, /CERTIFICATE\s+STATUS\s+MESSAGE/);
    assert.match(r.out, /myvault\/web\s+success\s+Installed/);
  });

  it('vm --extension-name --json: the extension GET with its instance view, as JSON', async () => {
    const r = await status(['vm', '--resource-group', RG, '--name', 'web1', '--extension-name', 'KeyVaultForLinux', '--json']);
    assert.equal(r.code, 0, r.err);
    const view = JSON.parse(r.out) as { provisioningState: string; certificates: { name: string; status: string }[]; statuses: { message: string }[] };
    assert.equal(view.provisioningState, 'Succeeded');
    assert.deepEqual(
      view.certificates.map((c) => [c.name, c.status]),
      [['myvault/web', 'success']],
    );
    assert.match(view.statuses[0]?.message ?? '', /1 of 1 certificates/);
  });

  it('vmss --instance-id: a certificate in error makes the exit code 1 and shows the fix', async () => {
    const r = await status(['vmss', '--resource-group', RG, '--name', 'webss', '--instance-id', '0']);
    assert.equal(r.code, 1);
    assert.match(r.out, /VMSS webss instance 0/);
    assert.match(r.out, /myvault\/web\s+error\s+Vault myvault.vault.azure.net refused access \(403\)\. Fix: assign 'Key Vault Secrets User'/);
  });

  it('vmss without --instance-id shows the model and says instance views are per instance', async () => {
    const r = await status(['vmss', '--resource-group', RG, '--name', 'webss', '--json']);
    assert.equal(r.code, 0, r.err);
    const view = JSON.parse(r.out) as { target: string; provisioningState: string };
    assert.equal(view.target, 'VMSS webss (model)');
    assert.equal(view.provisioningState, 'Succeeded');
  });
});
