/**
 * Behaviour profiles, one row per line of docs/versions.md that can run on Linux, each through `enable` in an
 * agent-like folder whose handler version is given the way the agent gives it (AZURE_GUEST_AGENT_EXTENSION_VERSION,
 * or only the extension folder name `<Publisher>.<Type>-<version>`). The handler and its detached service are real
 * processes against the dev vault; the status file and the PEM store are what is asserted.
 * (The Windows rows through `enable`, with their crypt32 arguments, are in test/windows/wine/profilesEnable.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { X509Certificate } from 'node:crypto';
import { makeAgentLayout, type AgentLayout } from './helpers/agentFolder.js';
import { startDevVault, type DevVault } from '../handler/devvault/server.js';
import { createCa, issueCertificate, toPemSecret } from '../handler/devvault/certFactory.js';
import { splitPemBlocks } from '../handler/certs/pemText.js';
import { packageRoot } from '../handler/paths.js';

const run = promisify(execFile);
const CLI = join(packageRoot(), 'lib', 'handler', 'cli.js');
const CLIENT_ID = '6f1d3c55-8f5c-4a57-9a3e-0c4b2d7e9a11';
const NAME = 'Microsoft.Azure.KeyVault.KeyVaultForLinux';

interface Status {
  status: string;
  message: string;
  substatus: Array<{ name: string; status: string; formattedMessage: { message: string } }>;
}

async function agentCommand(layout: AgentLayout, seq: number, command: string, env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, [CLI, command], { cwd: layout.extensionFolder, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

/** Bounded wait (a liveness deadline, not a timing assertion) until `done` holds for the status file. */
async function statusWhere(layout: AgentLayout, seq: number, done: (s: Status) => boolean, seen: Set<string> = new Set()): Promise<Status> {
  const deadline = Date.now() + 90_000;
  let last = '';
  while (Date.now() < deadline) {
    const view = await layout.readStatus(seq);
    if (view.state === 'valid') {
      const s = (view.document as Array<{ status: { status: string; formattedMessage: { message: string }; substatus?: Status['substatus'] } }>)[0]!.status;
      const status: Status = { status: s.status, message: s.formattedMessage.message, substatus: s.substatus ?? [] };
      last = JSON.stringify(status);
      seen.add(status.status);
      if (done(status)) return status;
    }
    await sleep(200);
  }
  throw new Error(`status ${seq} never reached the expected state; last: ${last}`);
}

const sub = (s: Status, name: string): Status['substatus'][number] | undefined => s.substatus.find((x) => x.name === `kvvm/${name}`);

interface Row {
  name: string;
  /** The version in the folder name, and what AZURE_GUEST_AGENT_EXTENSION_VERSION says ('' = the agent did not set it). */
  folderVersion: string;
  envVersion: string;
  requireInitialSync?: boolean;
  pollingIntervalInS: string;
  expect: (s: Status, store: string, seen: Set<string>) => Promise<void>;
  /** The status that ends the wait for this row. */
  settled: (s: Status) => boolean;
}

const WEB_CN = 'web.profile.test';

async function pemLabels(file: string): Promise<string[]> {
  const blocks = splitPemBlocks(await readFile(file, 'utf8'));
  return blocks.map((b) => (b.label === 'CERTIFICATE' ? `CERT ${new X509Certificate(b.der).subject.replace(/^CN=/, '')}` : b.label));
}

const ROWS: Row[] = [
  {
    name: '3.x Linux, version from AZURE_GUEST_AGENT_EXTENSION_VERSION (the folder says 4.0.0): success once polling starts, untrusted server-auth chain installed with a warning, key LAST',
    folderVersion: '4.0.0',
    envVersion: '3.0.2',
    pollingIntervalInS: '30',
    settled: (s) => s.status === 'success' && sub(s, 'web')?.status === 'success',
    expect: async (s, store, seen) => {
      // Never waits for the missing certificate: success while it still fails (and no initial-sync retries).
      assert.equal(s.status, 'success');
      assert.equal(sub(s, 'missing')?.status, 'error');
      assert.doesNotMatch(s.message, /Initial sync/);
      assert.ok(!seen.has('error'), `statuses seen: ${[...seen].join(', ')}`);
      assert.match(sub(s, 'web')?.formattedMessage.message ?? '', /chain does not validate/);
      assert.match(s.message, /pollingIntervalInS "30" is below 60 s/);
      assert.deepEqual(await pemLabels(join(store, 'kvvm.web')), [`CERT ${WEB_CN}`, 'CERT profile intermediate', 'CERT profile root', 'PRIVATE KEY']);
    },
  },
  {
    name: '3.x Linux, version only in the folder name (KeyVaultForLinux-3.1.5): requireInitialSync true → transitioning, 25 attempts, then error naming the missing certificate',
    folderVersion: '3.1.5',
    envVersion: '',
    requireInitialSync: true,
    pollingIntervalInS: '3600',
    settled: (s) => s.status === 'error',
    expect: async (s, store, seen) => {
      assert.ok(seen.has('transitioning'), `statuses seen: ${[...seen].join(', ')}`);
      assert.ok(!seen.has('success'), 'never success before every certificate is in');
      assert.match(s.message, /Initial sync failed after 25 attempts/);
      assert.match(s.message, /missing/);
      assert.equal(sub(s, 'web')?.status, 'success');
      assert.equal((await pemLabels(join(store, 'kvvm.web'))).at(-1), 'PRIVATE KEY');
    },
  },
  {
    name: '4.x Linux (KeyVaultForLinux-4.0.0): requireInitialSync absent waits (transitioning), the untrusted server-auth leaf is refused, interval clamped, 25 attempts then error',
    folderVersion: '4.0.0',
    envVersion: '4.0.0',
    pollingIntervalInS: '30',
    settled: (s) => s.status === 'error',
    expect: async (s, store, seen) => {
      assert.ok(seen.has('transitioning') && !seen.has('success'), `statuses seen: ${[...seen].join(', ')}`);
      assert.match(sub(s, 'web')?.formattedMessage.message ?? '', /chain/i);
      assert.equal(sub(s, 'web')?.status, 'error');
      assert.match(s.message, /pollingIntervalInS "30" is outside 300-3600 s/);
      await assert.rejects(stat(join(store, 'kvvm.web')), 'nothing installed for the refused leaf');
    },
  },
];

test('behaviour profiles through enable, one row per profile', { timeout: 600_000 }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-profiles-'));
  let vault: DevVault | undefined;
  try {
    vault = await startDevVault({ port: 0, identities: { systemAssigned: false, userAssigned: [CLIENT_ID] } });
    const rootCa = createCa('profile root');
    const inter = issueCertificate({ issuer: rootCa, subjectCn: 'profile intermediate', isCa: true, serverAuth: false });
    const web = issueCertificate({ issuer: inter, subjectCn: WEB_CN, dnsNames: [WEB_CN], serverAuth: true });
    // Uploaded out of order (root, leaf, intermediate): the store must write leaf → intermediate → root.
    vault.setSecret('web', toPemSecret(web.keyPem, [rootCa.certPem, web.certPem, inter.certPem]), { contentType: 'application/x-pem-file' });
    const trust = join(root, 'trusted.pem');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(trust, vault.caCertPem); // the dev vault's TLS only: "profile root" is NOT trusted
    const baseEnv = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', NODE_EXTRA_CA_CERTS: trust, KVVM_NO_JITTER: '1', KVVM_RETRY_BASE_MS: '5' };

    for (const [i, row] of ROWS.entries()) {
      await t.test(row.name, async () => {
        const layout = makeAgentLayout(join(root, `row${i}`), { name: NAME, version: row.folderVersion });
        const store = join(root, `row${i}`, 'store');
        const sms: Record<string, unknown> = {
          pollingIntervalInS: row.pollingIntervalInS,
          observedCertificates: [
            { url: `${vault!.vaultUrl}/secrets/web`, certificateStoreLocation: store },
            { url: `${vault!.vaultUrl}/secrets/missing`, certificateStoreLocation: store },
          ],
        };
        if (row.requireInitialSync !== undefined) sms['requireInitialSync'] = row.requireInitialSync;
        layout.writeSettings(0, { secretsManagementSettings: sms, authenticationSettings: { msiEndpoint: vault!.imdsEndpoint, msiClientId: CLIENT_ID } });
        const env = { ...layout.env(0), AZURE_GUEST_AGENT_EXTENSION_VERSION: row.envVersion, ...baseEnv };
        try {
          const enable = await agentCommand(layout, 0, 'enable', env);
          assert.equal(enable.code, 0, enable.stderr);
          const seen = new Set<string>();
          const status = await statusWhere(layout, 0, row.settled, seen);
          await row.expect(status, store, seen);
        } finally {
          await agentCommand(layout, 0, 'disable', env);
        }
      });
    }
  } finally {
    await vault?.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('4.x refuses requireInitialSync false through enable: error status naming the key, why 4.0 removed it, and the fix', async () => {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-profiles-4x-'));
  try {
    const layout = makeAgentLayout(root, { name: NAME, version: '4.0.0' });
    layout.writeSettings(0, { secretsManagementSettings: { requireInitialSync: false, observedCertificates: [{ url: 'https://myvault.vault.azure.net/secrets/web' }] } });
    const r = await agentCommand(layout, 0, 'enable', layout.env(0));
    assert.notEqual(r.code, 0);
    const s = await statusWhere(layout, 0, (x) => x.status === 'error');
    assert.match(s.message, /\/secretsManagementSettings\/requireInitialSync: requireInitialSync false is not supported by handler version 4\.0\.0/);
    assert.match(s.message, /4\.0 removed requireInitialSync/);
    assert.match(s.message, /Fix: Remove requireInitialSync .* or deploy typeHandlerVersion "3\.0"/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
