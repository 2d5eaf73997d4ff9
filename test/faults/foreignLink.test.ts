/**
 * A hostile vault look-alike on loopback (test/helpers/hostileVault.ts: a proxy in front of the dev vault) answers
 * the versions listing with a `nextLink` to another origin, or a request with a redirect there. A second pair of
 * loopback servers plays "evil" and records every connection and Authorization header. The real
 * @azure/keyvault-secrets client (kvvm's reader) and then the real handler and service must refuse each link with
 * an error naming the host, send nothing there (zero connections), and keep the installed certificate.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { createCa, issueCertificate, toPemSecret } from '../../handler/devvault/certFactory.js';
import { startDevVault, type DevVault } from '../../handler/devvault/server.js';
import { KvvmError } from '../../handler/errors.js';
import { createVaultReader } from '../../handler/vault/secretsClient.js';
import { makeAgentLayout } from '../helpers/agentFolder.js';
import { agentCommand, finalStatus, waitForStatus } from '../helpers/agentCommands.js';
import { faultWorkDir, registerSecrets } from '../helpers/faults.js';
import { hostileTls, startEvilServers, startHostileVault, type EvilServers, type HostileTls, type HostileVault } from '../helpers/hostileVault.js';

let work: string;
let dev: DevVault;
let tls: HostileTls;
let hostile: HostileVault;
let evil: EvilServers;
const ca = createCa('foreign-link root');

function secretValue(): string {
  const leaf = issueCertificate({ issuer: ca, subjectCn: 'web.test', serverAuth: false });
  const value = toPemSecret(leaf.keyPem, [leaf.certPem, ca.certPem]);
  registerSecrets('foreign-link', { secrets: [leaf.keyPem, value] });
  return value;
}

before(async () => {
  work = await faultWorkDir('foreign-link');
  dev = await startDevVault();
  tls = hostileTls(work, dev);
  hostile = await startHostileVault(dev, tls);
  evil = await startEvilServers(tls);
  dev.setSecret('web', secretValue(), { contentType: 'application/x-pem-file' });
});

after(async () => {
  registerSecrets('foreign-link', { tokens: dev.issuedTokens() });
  await evil.close();
  await hostile.close();
  await dev.close();
});

function reader() {
  return createVaultReader({
    authentication: { msiEndpoint: dev.imdsEndpoint },
    env: { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' },
    tlsCa: [tls.caPem],
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
}

function assertNothingReachedEvil(): void {
  assert.equal(evil.connections(), 0, 'no connection to the evil servers');
  assert.deepEqual(evil.authorizations(), [], 'no Authorization header at the evil servers');
}

test('the look-alike forwards to the dev vault faithfully while it is not hostile', async () => {
  hostile.setMode({ kind: 'pass' });
  const versions = await reader().listVersions(hostile.vaultUrl, 'web');
  assert.equal(versions.length, 1);
  const secret = await reader().getSecret(hostile.vaultUrl, 'web');
  assert.match(secret.value, /BEGIN CERTIFICATE/);
});

const foreignLinks: Array<{ name: string; link: () => string; names: () => string }> = [
  { name: 'another host', link: () => `https://evil.localhost:${evil.httpsPort}/secrets/web/versions?$skiptoken=p2`, names: () => `evil.localhost:${evil.httpsPort}` },
  {
    name: 'the vault host as user info before another host',
    link: () => `https://kvvm.localhost@evil.localhost:${evil.httpsPort}/secrets/web/versions`,
    names: () => `kvvm.localhost@evil.localhost:${evil.httpsPort}`,
  },
  { name: 'the vault host on another port', link: () => `https://kvvm.localhost:${evil.httpsPort}/secrets/web/versions`, names: () => `kvvm.localhost:${evil.httpsPort}` },
  { name: 'the vault host over plain http', link: () => `http://kvvm.localhost:${evil.httpPort}/secrets/web/versions`, names: () => `http://kvvm.localhost:${evil.httpPort}` },
];

for (const c of foreignLinks) {
  test(`a versions listing whose nextLink points at ${c.name} is refused, naming the host, and nothing is sent there`, async () => {
    hostile.setMode({ kind: 'next-link', nextLink: c.link() });
    const err = await reader()
      .listVersions(hostile.vaultUrl, 'web')
      .then(
        () => assert.fail('the listing must fail'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof KvvmError, String(err));
    assert.equal(err.reason, 'vault-foreign-link');
    assert.ok(err.message.includes(c.names()), err.message);
    assertNothingReachedEvil();
  });
}

test("the vault's secret listing (the poll memory's check) refuses a foreign nextLink the same way", async () => {
  const link = foreignLinks[0]!;
  hostile.setMode({ kind: 'next-link', nextLink: link.link() });
  const err = await reader().listSecrets!(hostile.vaultUrl, () => true, 10).then(
    () => assert.fail('the listing must fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof KvvmError, String(err));
  assert.equal(err.reason, 'vault-foreign-link');
  assert.ok(err.message.includes(link.names()), err.message);
  assertNothingReachedEvil();
});

test('a redirect from the vault to another origin reaches nothing there', async () => {
  hostile.setMode({ kind: 'redirect', location: `https://evil.localhost:${evil.httpsPort}/secrets/web` });
  await assert.rejects(reader().getSecret(hostile.vaultUrl, 'web'));
  hostile.setMode({ kind: 'redirect', location: `https://evil.localhost:${evil.httpsPort}/secrets/web`, status: 302 });
  await assert.rejects(reader().listVersions(hostile.vaultUrl, 'web'));
  assertNothingReachedEvil();
});

test('the service keeps the installed certificate and its substatus names the foreign host', { timeout: 120_000 }, async () => {
  hostile.setMode({ kind: 'pass' });
  const layout = makeAgentLayout(join(work, 'agent'));
  const store = join(work, 'store');
  const env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', NODE_EXTRA_CA_CERTS: tls.caFile, KVVM_NO_JITTER: '1' };
  const settings = {
    secretsManagementSettings: { pollingIntervalInS: '3600', observedCertificates: [{ url: `${hostile.vaultUrl}/secrets/web`, certificateStoreLocation: store }] },
  };
  const protectedSettings = { authenticationSettings: { msiEndpoint: dev.imdsEndpoint } };
  try {
    layout.writeSettings(0, settings, protectedSettings);
    assert.equal((await agentCommand(layout, 0, 'install', env)).code, 0);
    assert.equal((await agentCommand(layout, 0, 'enable', env)).code, 0);
    const first = await finalStatus(layout, 0);
    assert.equal(first.status, 'success', first.message);
    const installed = await readlink(join(store, 'kvvm.web'));

    // Rotate, turn the look-alike hostile, and let the agent deliver a new sequence number (the service syncs at once).
    dev.setSecret('web', secretValue(), { contentType: 'application/x-pem-file' });
    hostile.setMode({ kind: 'next-link', nextLink: `https://evil.localhost:${evil.httpsPort}/secrets/web/versions?$skiptoken=p2` });
    layout.writeSettings(1, settings, protectedSettings);
    assert.equal((await agentCommand(layout, 1, 'enable', env)).code, 0);
    // The first sync of a new sequence number retries a failed certificate (status transitioning); its substatus
    // already says why.
    const second = await waitForStatus(layout, 1, (s) => s.substatus.some((c) => c.name === 'kvvm/web' && c.status === 'error'));
    const web = second.substatus.find((s) => s.name === 'kvvm/web');
    assert.ok(web, JSON.stringify(second));
    assert.ok(web.formattedMessage.message.includes(`evil.localhost:${evil.httpsPort}`), web.formattedMessage.message);
    assert.equal(await readlink(join(store, 'kvvm.web')), installed, 'the installed version stays active');
    assertNothingReachedEvil();
  } finally {
    await agentCommand(layout, 1, 'disable', env);
  }
});

/**
 * An identity endpoint look-alike that answers every token request with a SAME-origin redirect (the case a
 * default HTTP pipeline would follow) and counts requests that arrive at the redirect target: there must be none.
 */
async function redirectingIdentity(): Promise<{ base: string; followed: () => number; close: () => Promise<void> }> {
  let followed = 0;
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/redirected')) {
      followed += 1;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ access_token: 'not-for-you', expires_in: '3600', token_type: 'Bearer', resource: 'https://localhost' }));
      return;
    }
    res.writeHead(307, { Location: `/redirected${req.url ?? '/'}` });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { base: `http://127.0.0.1:${port}`, followed: () => followed, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test("an identity endpoint answering with a redirect gets no second request: kvvm's IMDS client (msiEndpoint)", async () => {
  const imds = await redirectingIdentity();
  try {
    const r = createVaultReader({
      authentication: { msiEndpoint: `${imds.base}/metadata/identity/oauth2/token` },
      env: { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' },
      tlsCa: [dev.caCertPem],
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      identityRetry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    await assert.rejects(r.getSecret(dev.vaultUrl, 'web'), (e: unknown) => e instanceof KvvmError && e.reason === 'identity-unavailable' && /redirect/.test(e.message));
    assert.equal(imds.followed(), 0, 'the redirect was followed');
  } finally {
    await imds.close();
  }
});

test('an identity endpoint answering with a redirect gets no second request: the library path (AZURE_POD_IDENTITY_AUTHORITY_HOST)', async () => {
  const imds = await redirectingIdentity();
  // @azure/identity reads its IMDS host from process.env once per process: a child process of its own.
  const child = `
    import { createVaultReader } from ${JSON.stringify(new URL('../../handler/vault/secretsClient.js', import.meta.url).href)};
    const reader = createVaultReader({ authentication: {}, env: process.env, sleep: async () => {}, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });
    try { await reader.getSecret(process.env.TEST_VAULT_URL, 'web'); console.log(JSON.stringify({ ok: true })); }
    catch (e) { console.log(JSON.stringify({ reason: e.reason })); }
  `;
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child], {
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: dev.caCertFile,
        KVVM_EXTRA_VAULT_SUFFIXES: 'localhost',
        TEST_VAULT_URL: dev.vaultUrl,
        AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.base,
      },
    });
    assert.deepEqual(JSON.parse(stdout.trim()), { reason: 'identity-unavailable' });
    assert.equal(imds.followed(), 0, 'the redirect was followed');
  } finally {
    await imds.close();
  }
});

test('a same-origin redirect from the vault is reported as a redirect, not as a refused token', async () => {
  for (const status of [301, 302, 307, 308]) {
    hostile.setMode({ kind: 'redirect', location: `${hostile.vaultUrl}/secrets/elsewhere`, status });
    const err = await reader()
      .getSecret(hostile.vaultUrl, 'web')
      .then(
        () => assert.fail('the read must fail'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof KvvmError, String(err));
    assert.equal(err.reason, 'vault-redirect', `${status}: ${err.message}`);
    assert.ok(err.message.includes(`(${status}, to the same host)`), err.message);
    assert.ok(err.fix?.includes('resolves to the real vault'), err.fix);
  }
  // The listing (the poll's first request) is reported the same way.
  hostile.setMode({ kind: 'redirect', location: `${hostile.vaultUrl}/secrets/elsewhere/versions`, status: 302 });
  await assert.rejects(reader().listVersions(hostile.vaultUrl, 'web'), (e: unknown) => e instanceof KvvmError && e.reason === 'vault-redirect');
  assertNothingReachedEvil();
});
