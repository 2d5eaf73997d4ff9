/**
 * Protected settings values and tokens never reach status, events or logs, in any form.
 *
 * 1. A catalogue of INVALID protected settings (the agent's real CMS-encrypted protectedSettings, decrypted by the
 *    handler) goes through `enable`; every file the handler wrote is then searched for each value's marker.
 * 2. A vault look-alike answers with an error body that echoes the request's bearer token; the service runs, its
 *    substatus reports the failure, and no file written anywhere contains a token the dev vault issued.
 * Both register their values for zz-secretScan, which scans the whole fault run once more.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCa, issueCertificate, toPemSecret } from '../../handler/devvault/certFactory.js';
import { startDevVault, type DevVault } from '../../handler/devvault/server.js';
import { KvvmError } from '../../handler/errors.js';
import { REMOTE_DETAIL_MAX_CHARS } from '../../handler/redaction.js';
import { createVaultReader } from '../../handler/vault/secretsClient.js';
import { makeAgentLayout } from '../helpers/agentFolder.js';
import { agentCommand, waitForStatus } from '../helpers/agentCommands.js';
import { faultWorkDir, registerSecrets } from '../helpers/faults.js';
import { hostileTls, startHostileVault, type HostileTls, type HostileVault } from '../helpers/hostileVault.js';

let work: string;
let dev: DevVault;
let tls: HostileTls;
let hostile: HostileVault;

before(async () => {
  work = await faultWorkDir('redaction');
  dev = await startDevVault();
  tls = hostileTls(work, dev);
  hostile = await startHostileVault(dev, tls);
  const ca = createCa('redaction root');
  const leaf = issueCertificate({ issuer: ca, subjectCn: 'web.test', serverAuth: false });
  const value = toPemSecret(leaf.keyPem, [leaf.certPem]);
  registerSecrets('redaction', { secrets: [leaf.keyPem, value] });
  dev.setSecret('web', value, { contentType: 'application/x-pem-file' });
});

after(async () => {
  registerSecrets('redaction', { tokens: dev.issuedTokens() });
  await hostile.close();
  await dev.close();
});

/** Every regular file under `dir`, with its text. */
async function allFiles(dir: string): Promise<Array<{ path: string; text: string }>> {
  const out: Array<{ path: string; text: string }> = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    if (st.isDirectory()) out.push(...(await allFiles(path)));
    else if (st.isFile()) out.push({ path, text: await readFile(path, 'latin1') });
  }
  return out;
}

async function assertNowhere(dir: string, needles: readonly string[], what: string): Promise<number> {
  const files = await allFiles(dir);
  for (const f of files) {
    const lower = f.text.toLowerCase();
    for (const n of needles) assert.ok(!lower.includes(n.toLowerCase()), `${what} found in ${f.path}`);
  }
  return files.length;
}

/** Each value carries a marker; the marker must appear in no file (hosts are lower-cased by URL parsing). */
const invalidProtected: Array<{ name: string; marker: string; settings: Record<string, unknown> }> = [
  {
    name: 'msiEndpoint with an unsupported scheme',
    marker: 'mkr-scheme-7q2',
    settings: { authenticationSettings: { msiEndpoint: 'ftp://mkr-scheme-7q2.example/metadata/identity' } },
  },
  { name: 'msiEndpoint that is not a URL', marker: 'mkr-noturl-4k9', settings: { authenticationSettings: { msiEndpoint: 'not a url mkr-noturl-4k9' } } },
  {
    name: 'msiEndpoint with credentials',
    marker: 'mkr-cred-8z1',
    settings: { authenticationSettings: { msiEndpoint: 'http://user:mkr-cred-8z1@169.254.169.254/metadata/identity' } },
  },
  { name: 'msiClientId that is not a GUID', marker: 'mkr-guid-3m5', settings: { authenticationSettings: { msiClientId: 'mkr-guid-3m5-not-a-guid' } } },
  { name: 'msiClientId as a number', marker: '73915286', settings: { authenticationSettings: { msiClientId: 73915286 } } },
  { name: 'msiClientId with quotes and a line break', marker: 'mkr-esc-6h0', settings: { authenticationSettings: { msiClientId: 'mkr-esc-6h0"\n\\x' } } },
  { name: 'a 300-character msiClientId', marker: 'mkr-long-2w8', settings: { authenticationSettings: { msiClientId: `mkr-long-2w8${'y'.repeat(288)}` } } },
  {
    name: 'an observed URL on a host that is not a vault',
    marker: 'mkr-host-5t3',
    settings: { secretsManagementSettings: { observedCertificates: [{ url: 'https://mkr-host-5t3.example.com/secrets/web' }] } },
  },
  { name: 'a misspelt key', marker: 'mkr-key-1p6', settings: { authenticationSettings: { msiEndpont: 'http://mkr-key-1p6.example/metadata/identity' } } },
];

test('invalid protected settings are reported by path through enable, and their values reach no file the handler writes', { timeout: 120_000 }, async () => {
  const layout = makeAgentLayout(join(work, 'agent-settings'));
  registerSecrets('redaction', { secrets: invalidProtected.map((c) => c.marker) });
  const publicSettings = {
    secretsManagementSettings: { pollingIntervalInS: '3600', observedCertificates: [{ url: `${dev.vaultUrl}/secrets/web`, certificateStoreLocation: join(work, 'store') }] },
  };
  const env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', NODE_EXTRA_CA_CERTS: dev.caCertFile };
  assert.equal((await agentCommand(layout, 0, 'install', env)).code, 0);
  try {
    for (const [seq, c] of invalidProtected.entries()) {
      layout.writeSettings(seq, publicSettings, c.settings);
      const result = await agentCommand(layout, seq, 'enable', env);
      // Refused by settings validation (status error), or by the identity client once the service runs (substatus).
      const status = await waitForStatus(layout, seq, (s) => s.status === 'error' || s.substatus.some((x) => x.status === 'error'));
      const text = [status.message, ...status.substatus.map((x) => x.formattedMessage.message)].join('\n');
      assert.match(text, /msiEndpoint|msiClientId|observedCertificates|url/, `${c.name}: the status still names the setting: ${text}`);
      assert.ok(!`${result.stdout}${result.stderr}`.toLowerCase().includes(c.marker), `${c.name}: printed by enable`);
    }
  } finally {
    await agentCommand(layout, invalidProtected.length - 1, 'disable', env);
  }
  const scanned = await assertNowhere(
    layout.root,
    invalidProtected.map((c) => c.marker),
    'a protected value',
  );
  assert.ok(scanned >= invalidProtected.length + 2, `status, log and event files were written (${scanned} files)`);
});

test('a vault error body echoing the bearer token is reduced to code and a redacted, capped message', async () => {
  hostile.setMode({ kind: 'echo-token', status: 400 });
  const reader = createVaultReader({
    authentication: { msiEndpoint: dev.imdsEndpoint },
    env: { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' },
    tlsCa: [tls.caPem],
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
  const err = await reader.getSecret(hostile.vaultUrl, 'web').then(
    () => assert.fail('must fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof KvvmError, String(err));
  assert.equal(err.reason, 'vault-request-rejected');
  assert.match(err.message, /BadGateway/, 'the vault error code is kept');
  for (const t of dev.issuedTokens()) assert.ok(!err.describe().includes(t), 'no token in the message');
  const detail = err.message.slice(err.message.indexOf('(400): ') + 7);
  assert.ok(detail.length <= REMOTE_DETAIL_MAX_CHARS, `detail capped: ${detail.length}`);
});

test('through the service, an echoed token reaches neither the status nor any log', { timeout: 120_000 }, async () => {
  hostile.setMode({ kind: 'echo-token', status: 400 });
  const layout = makeAgentLayout(join(work, 'agent-echo'));
  const env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', NODE_EXTRA_CA_CERTS: tls.caFile, KVVM_NO_JITTER: '1' };
  const settings = {
    secretsManagementSettings: {
      pollingIntervalInS: '3600',
      observedCertificates: [{ url: `${hostile.vaultUrl}/secrets/web`, certificateStoreLocation: join(work, 'store-echo') }],
    },
  };
  layout.writeSettings(0, settings, { authenticationSettings: { msiEndpoint: dev.imdsEndpoint } });
  try {
    assert.equal((await agentCommand(layout, 0, 'install', env)).code, 0);
    assert.equal((await agentCommand(layout, 0, 'enable', env)).code, 0);
    const status = await waitForStatus(layout, 0, (s) => s.substatus.some((c) => c.name === 'kvvm/web' && c.status === 'error'));
    const web = status.substatus.find((c) => c.name === 'kvvm/web');
    assert.match(web?.formattedMessage.message ?? '', /BadGateway/);
  } finally {
    await agentCommand(layout, 0, 'disable', env);
  }
  const tokens = dev.issuedTokens();
  assert.ok(tokens.length > 0, 'the service got a token, so the echo carried one');
  await assertNowhere(layout.root, tokens, 'a bearer token');
});
