/**
 * `kvvm doctor` against the real dev vault (HTTPS + IMDS) with injected faults: each broken layer is named and
 * comes with the fix that repairs it. Tokens and secret values never appear in the output.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueCertificate, toPemSecret } from '../handler/devvault/certFactory.js';
import { runDoctorCommand } from '../handler/doctor/command.js';
import type { DoctorCheck, DoctorReport } from '../handler/doctor/doctor.js';
import { linuxProcInspector, writePidFile } from '../handler/service/pidfile.js';
import { startTestVault, type TestVault } from './helpers/devVault.js';
import { makeAgentLayout } from './helpers/agentFolder.js';

const USER_ID = '6f1c1d4e-3b1a-4a43-9d0e-2b9f1f6a0c11';
const OTHER_ID = '0b6f7a9e-1111-4c3d-8e2f-5a6b7c8d9e0f';

let dir: string;
let secretValue: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kvvm-doctor-'));
  const cert = issueCertificate({ subjectCn: 'web.example.test', days: 30 });
  secretValue = toPemSecret(cert.keyPem, [cert.certPem]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  code: number;
  out: string;
  report: DoctorReport;
}

function settingsFor(vaultUrl: string, imds: string, extra: { msiClientId?: string; secrets?: string[] } = {}): string {
  const file = join(dir, `settings-${Math.random().toString(36).slice(2)}.json`);
  const settings = {
    secretsManagementSettings: {
      observedCertificates: (extra.secrets ?? ['web']).map((s) => ({ url: `${vaultUrl}/secrets/${s}`, certificateStoreLocation: join(dir, 'store') })),
    },
    authenticationSettings: { msiEndpoint: imds, ...(extra.msiClientId ? { msiClientId: extra.msiClientId } : {}) },
  };
  writeFileSync(file, JSON.stringify(settings));
  return file;
}

async function doctor(args: string[], tv: TestVault | undefined, o: { env?: Record<string, string>; trust?: boolean; now?: () => number } = {}): Promise<Outcome> {
  const run = async (json: boolean): Promise<{ code: number; out: string }> => {
    let out = '';
    const code = await runDoctorCommand(
      [...args, ...(json ? ['--json'] : [])],
      { stdout: (s) => void (out += s), stderr: (s) => void (out += s), env: { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', ...o.env }, platform: 'linux' },
      { ...(tv && o.trust !== false ? { tlsCa: [tv.caPem] } : {}), ...(o.now ? { now: o.now } : {}), timeoutMs: 3000 },
    );
    return { code, out };
  };
  const text = await run(false);
  const json = await run(true);
  assert.equal(text.code, json.code);
  for (const out of [text.out, json.out]) {
    assert.doesNotMatch(out, /kvvmdev\./, 'a dev-vault token leaked into the output');
    assert.ok(!out.includes('PRIVATE KEY'), 'the secret value leaked into the output');
  }
  return { code: text.code, out: text.out, report: JSON.parse(json.out) as DoctorReport };
}

function check(r: DoctorReport, id: DoctorCheck['id']): DoctorCheck {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `no ${id} check in ${JSON.stringify(r.checks.map((x) => x.id))}`);
  return c;
}

async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('kvvm doctor against the dev vault', () => {
  let tv: TestVault;
  before(async () => {
    tv = await startTestVault({ identities: { systemAssigned: true, userAssigned: [USER_ID] } });
    tv.vault.setSecret('web', secretValue, { contentType: 'application/x-pem-file' });
  });
  after(() => tv.close());

  it('a healthy setup passes every check, in text and JSON', async () => {
    const r = await doctor(['--settings', settingsFor(tv.vault.vaultUrl, tv.vault.imdsEndpoint, { msiClientId: USER_ID })], tv);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.report.ok, true);
    for (const id of ['settings', 'proxy', 'imds', 'identity', 'vault-dns', 'vault-connect', 'clock', 'secret', 'store'] as const)
      assert.equal(check(r.report, id).status, 'pass', id);
    assert.equal(check(r.report, 'service').status, 'skip');
    assert.match(check(r.report, 'vault-connect').message, /asks for a token for https:\/\/localhost/);
    assert.match(check(r.report, 'secret').message, /readable: version [0-9a-f]{32} \(application\/x-pem-file\), 1 version listed/);
    assert.match(r.out, /✓ secret\s+kvvm\.localhost\/secrets\/web: readable/);
    assert.match(r.out, /All checks passed/);
  });

  it('the VM has no system-assigned identity: "Identity not found" with the enable-identity fix', async () => {
    const bare = await startTestVault({ identities: { systemAssigned: false, userAssigned: [] } });
    try {
      bare.vault.setSecret('web', secretValue, { contentType: 'application/x-pem-file' });
      const r = await doctor(['--settings', settingsFor(bare.vault.vaultUrl, bare.vault.imdsEndpoint)], bare);
      assert.equal(r.code, 1);
      assert.equal(check(r.report, 'imds').status, 'pass');
      const id = check(r.report, 'identity');
      assert.equal(id.status, 'fail');
      assert.match(id.message, /Identity not found/);
      assert.match(id.fix ?? '', /Enable the system-assigned identity/);
      assert.equal(check(r.report, 'secret').status, 'skip');
    } finally {
      await bare.close();
    }
  });

  it('the identity endpoint does not answer: IMDS unreachable, with the endpoint named', async () => {
    const port = await closedPort();
    const r = await doctor(['--settings', settingsFor(tv.vault.vaultUrl, `http://127.0.0.1:${port}/metadata/identity`)], tv);
    assert.equal(r.code, 1);
    const imds = check(r.report, 'imds');
    assert.equal(imds.status, 'fail');
    assert.match(imds.message, new RegExp(`127\\.0\\.0\\.1:${port}/metadata/identity/oauth2/token is not reachable \\(ECONNREFUSED\\)`));
    assert.match(imds.fix ?? '', /nothing answers there/);
    assert.equal(check(r.report, 'identity').status, 'skip');
  });

  it('a wrong msiClientId names that client id in the fix', async () => {
    const r = await doctor(['--settings', settingsFor(tv.vault.vaultUrl, tv.vault.imdsEndpoint, { msiClientId: OTHER_ID })], tv);
    assert.equal(r.code, 1);
    const id = check(r.report, 'identity');
    assert.equal(id.status, 'fail');
    assert.match(id.fix ?? '', new RegExp(`Assign the user-assigned identity with client id ${OTHER_ID} to this VM`));
  });

  it('403 ForbiddenByRbac: assign "Key Vault Secrets User" to the identity on the vault scope', async (t) => {
    tv.vault.denyAccess(USER_ID, 'ForbiddenByRbac');
    t.after(() => tv.vault.allowAccess(USER_ID));
    const r = await doctor(['--settings', settingsFor(tv.vault.vaultUrl, tv.vault.imdsEndpoint, { msiClientId: USER_ID })], tv);
    assert.equal(r.code, 1);
    const s = check(r.report, 'secret');
    assert.equal(s.status, 'fail');
    assert.match(s.message, /\[forbidden\]/);
    assert.match(s.fix ?? '', /Assign the role "Key Vault Secrets User" to the user-assigned identity with client id 6f1c1d4e/);
    assert.match(
      s.fix ?? '',
      /az role assignment create --role "Key Vault Secrets User" --assignee-object-id \$\(az ad sp show --id 6f1c1d4e-3b1a-4a43-9d0e-2b9f1f6a0c11 --query id -o tsv\) .* --scope \$\(az keyvault show --name kvvm --query id -o tsv\)/,
    );
    assert.match(r.out, /✗ secret .*\n\s+fix: Assign the role "Key Vault Secrets User"/);
  });

  it('403 ForbiddenByFirewall: the network rule, not a role', async (t) => {
    tv.vault.denyAccess('system', 'ForbiddenByFirewall');
    t.after(() => tv.vault.allowAccess('system'));
    const r = await doctor(['--settings', settingsFor(tv.vault.vaultUrl, tv.vault.imdsEndpoint)], tv);
    assert.equal(r.code, 1);
    const s = check(r.report, 'secret');
    assert.match(s.fix ?? '', /az keyvault network-rule add --name kvvm/);
    assert.doesNotMatch(s.fix ?? '', /Secrets User/);
  });

  it("404: the secret name is wrong, and the fix lists the vault's secrets", async () => {
    const r = await doctor(['--settings', settingsFor(tv.vault.vaultUrl, tv.vault.imdsEndpoint, { secrets: ['web', 'wbe'] })], tv);
    assert.equal(r.code, 1);
    const [good, bad] = r.report.checks.filter((c) => c.id === 'secret');
    assert.equal(good?.status, 'pass');
    assert.equal(bad?.status, 'fail');
    assert.match(bad?.message ?? '', /\[secret-not-found\]/);
    assert.match(bad?.fix ?? '', /no secret "wbe"\. List what exists: az keyvault secret list --vault-name kvvm/);
  });

  it('the vault port is closed: TCP fails, with the outbound-443 fix, and secrets are skipped', async () => {
    const port = await closedPort();
    const r = await doctor(['--settings', settingsFor(`https://kvvm.localhost:${port}`, tv.vault.imdsEndpoint)], tv);
    assert.equal(r.code, 1);
    assert.equal(check(r.report, 'vault-dns').status, 'pass');
    const c = check(r.report, 'vault-connect');
    assert.equal(c.status, 'fail');
    assert.match(c.message, /ECONNREFUSED/);
    assert.match(c.fix ?? '', /Allow outbound HTTPS \(TCP 443\)/);
    assert.equal(check(r.report, 'secret').status, 'skip');
  });

  it('an untrusted certificate on the vault: TLS failure with the inspecting-proxy fix', async () => {
    const r = await doctor(['--settings', settingsFor(tv.vault.vaultUrl, tv.vault.imdsEndpoint)], tv, { trust: false });
    assert.equal(r.code, 1);
    const c = check(r.report, 'vault-connect');
    assert.equal(c.status, 'fail');
    assert.match(c.message, /TLS to kvvm\.localhost failed: (UNABLE_TO_|SELF_SIGNED|CERT_)/);
    assert.match(c.fix ?? '', /TLS-inspecting proxy/);
  });

  it("a local clock ten minutes ahead of the vault's Date header fails the clock check", async () => {
    const r = await doctor(['--settings', settingsFor(tv.vault.vaultUrl, tv.vault.imdsEndpoint)], tv, { now: () => Date.now() + 10 * 60_000 });
    assert.equal(r.code, 1);
    const c = check(r.report, 'clock');
    assert.equal(c.status, 'fail');
    assert.match(c.message, /local clock is (59\d|60\d) s ahead of the vault/);
    assert.match(c.fix ?? '', /chrony/);
  });

  it('HTTPS_PROXY is honoured for the vault (CONNECT tunnel) and shown; IMDS outside NO_PROXY is flagged', async (t) => {
    const seen: string[] = [];
    const proxy: Server = createNetServer((client) => {
      client.once('data', (d: Buffer) => {
        const first = d.toString('latin1').split('\r\n')[0] ?? '';
        seen.push(first);
        const m = /^CONNECT ([^:]+):(\d+) /.exec(first);
        if (!m) {
          client.destroy();
          return;
        }
        const upstream = netConnect({ host: '127.0.0.1', port: Number(m[2]) }, () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          client.pipe(upstream).pipe(client);
        });
        upstream.on('error', () => client.destroy());
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    t.after(() => new Promise<void>((r) => proxy.close(() => r())));
    const proxyUrl = `http://user:hunter2@127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const r = await doctor(['--settings', settingsFor(tv.vault.vaultUrl, tv.vault.imdsEndpoint)], tv, { env: { HTTPS_PROXY: proxyUrl, NO_PROXY: 'example.com' } });
    assert.ok(
      seen.some((l) => l.startsWith(`CONNECT ${new URL(tv.vault.vaultUrl).host} `)),
      JSON.stringify(seen),
    );
    assert.match(check(r.report, 'vault-connect').message, /via proxy 127\.0\.0\.1:\d+/);
    assert.equal(check(r.report, 'vault-dns').status, 'skip');
    const p = check(r.report, 'proxy');
    assert.equal(p.status, 'warn');
    assert.match(p.message, /HTTPS_PROXY=http:\/\/\*\*\*@127\.0\.0\.1:\d+, NO_PROXY=example\.com/);
    assert.doesNotMatch(r.out, /hunter2/);
    assert.match(p.fix ?? '', /Add 127\.0\.0\.1 to NO_PROXY/);
  });

  it('--extension-folder reads the installed settings (protected msiClientId decrypted) and checks the service pid file', async () => {
    const layout = makeAgentLayout(join(dir, 'agent'));
    layout.writeSettings(
      3,
      {
        secretsManagementSettings: { observedCertificates: [{ url: `${tv.vault.vaultUrl}/secrets/web`, certificateStoreLocation: join(dir, 'store2', 'nested') }] },
        authenticationSettings: { msiEndpoint: tv.vault.imdsEndpoint },
      },
      { authenticationSettings: { msiClientId: USER_ID } },
    );
    const notRunning = await doctor(['--extension-folder', layout.extensionFolder], tv, { env: { KVVM_WAAGENT_DIR: layout.waagentDir } });
    assert.equal(notRunning.code, 1);
    assert.equal(notRunning.report.identity.clientId, USER_ID);
    assert.equal(check(notRunning.report, 'secret').status, 'pass');
    assert.match(check(notRunning.report, 'store').message, /does not exist yet; .* is writable/);
    const svc = check(notRunning.report, 'service');
    assert.equal(svc.status, 'fail');
    assert.match(svc.fix ?? '', /Re-enable the extension/);

    const inspector = linuxProcInspector();
    await writePidFile(join(layout.extensionFolder, 'kvvm-service.pid'), {
      pid: process.pid,
      markerKind: inspector.markerKind,
      startMarker: await inspector.startMarker(process.pid),
      command: 'node',
      startedAt: new Date().toISOString(),
    });
    const running = await doctor(['--extension-folder', layout.extensionFolder], tv, { env: { KVVM_WAAGENT_DIR: layout.waagentDir } });
    assert.equal(running.code, 0, running.out);
    assert.match(check(running.report, 'service').message, new RegExp(`running \\(pid ${process.pid}\\)`));

    // At rest (Linux): no worker, its supervisor sleeping until the next cycle: the service runs.
    rmSync(join(layout.extensionFolder, 'kvvm-service.pid'));
    await writePidFile(join(layout.extensionFolder, 'kvvm-supervisor.pid'), {
      pid: process.pid,
      markerKind: inspector.markerKind,
      startMarker: await inspector.startMarker(process.pid),
      command: '/bin/sh',
      startedAt: new Date().toISOString(),
    });
    const resting = await doctor(['--extension-folder', layout.extensionFolder], tv, { env: { KVVM_WAAGENT_DIR: layout.waagentDir } });
    assert.equal(resting.code, 0, resting.out);
    assert.match(check(resting.report, 'service').message, new RegExp(`at rest between cycles \\(supervisor pid ${process.pid}\\)`));
  });

  it('--extension-folder on Windows decrypts the protected settings with the Windows decryption, given the blob and thumbprint the agent wrote', async () => {
    // Argument level: Wine 8 has no CryptDecryptMessage, so a stand-in receives exactly what the Windows decryption would.
    const layout = makeAgentLayout(join(dir, 'agent-win'));
    const file = layout.writeSettings(
      4,
      {
        secretsManagementSettings: { observedCertificates: [{ url: `${tv.vault.vaultUrl}/secrets/web`, certificateStoreName: 'MY', certificateStoreLocation: 'LocalMachine' }] },
        authenticationSettings: { msiEndpoint: tv.vault.imdsEndpoint },
      },
      { authenticationSettings: { msiClientId: USER_ID } },
    );
    const written = (
      JSON.parse(readFileSync(file, 'utf8')) as { runtimeSettings: Array<{ handlerSettings: { protectedSettings: string; protectedSettingsCertThumbprint: string } }> }
    ).runtimeSettings[0]!.handlerSettings;
    const calls: Array<[string, string]> = [];
    let out = '';
    const code = await runDoctorCommand(
      ['--extension-folder', layout.extensionFolder, '--json'],
      { stdout: (s) => void (out += s), stderr: (s) => void (out += s), env: { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' }, platform: 'win32' },
      {
        tlsCa: [tv.caPem],
        timeoutMs: 3000,
        windowsDecrypt: async (base64, thumbprint) => {
          calls.push([base64, thumbprint]);
          return { authenticationSettings: { msiClientId: USER_ID } };
        },
      },
    );
    assert.deepEqual(calls, [[written.protectedSettings, written.protectedSettingsCertThumbprint]]);
    const report = JSON.parse(out) as DoctorReport;
    assert.equal(report.identity.clientId, USER_ID, out);
    assert.equal(check(report, 'secret').status, 'pass', out);
    assert.equal(code, 1, 'the service check fails: no Windows service here');
  });

  it('invalid settings stop at the settings check with the problems listed', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ secretsManagementSettings: { observedCertificates: ['https://myvault.vault.azure.net/keys/web'] } }));
    const r = await doctor(['--settings', file], undefined);
    assert.equal(r.code, 1);
    assert.equal(r.report.checks.length, 1);
    assert.equal(check(r.report, 'settings').status, 'fail');
    assert.match(check(r.report, 'settings').message, /\/keys\//);
  });
});
