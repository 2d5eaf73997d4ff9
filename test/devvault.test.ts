/**
 * The dev vault against the real @azure/keyvault-secrets SecretClient over real HTTPS, and its wire shapes
 * against the recorded Key Vault vectors in /work/shared/vectors.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretClient } from '@azure/keyvault-secrets';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { startDevVault, type DevVault } from '../handler/devvault/server.js';
import { createIdentityCredential } from '../handler/vault/identity.js';
import { newRetryStats } from '../handler/vault/backoff.js';
import { loopbackLookup, transportFor, trustedCas } from '../handler/vault/transport.js';
import { startTestVault, type TestVault } from './helpers/devVault.js';
import { sharedDir } from './helpers/vectors.js';

const VECTORS = join(sharedDir(), 'vectors');
const vector = (p: string): { status?: number; headers?: Record<string, string>; body: Record<string, unknown> } =>
  JSON.parse(readFileSync(join(VECTORS, p), 'utf8')) as { status?: number; headers?: Record<string, string>; body: Record<string, unknown> };
const specBody = (p: string): Record<string, unknown> =>
  (JSON.parse(readFileSync(join(VECTORS, 'rest-api-specs', p), 'utf8')) as { responses: { '200': { body: Record<string, unknown> } } }).responses['200'].body;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A plain HTTPS request that trusts only the dev CA (no SDK in between: we are checking the wire). */
function rawRequest(vault: DevVault, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const url = new URL(path, vault.vaultUrl);
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: vault.caCertPem, lookup: loopbackLookup, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function imdsToken(vault: DevVault, resource = 'https://localhost', clientId?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(vault.imdsEndpoint);
  url.searchParams.set('api-version', '2018-02-01');
  url.searchParams.set('resource', resource);
  if (clientId) url.searchParams.set('client_id', clientId);
  const res = await fetch(url, { headers: { Metadata: 'true' } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function bearer(vault: DevVault): Promise<Record<string, string>> {
  const { body } = await imdsToken(vault);
  return { Authorization: `Bearer ${String(body['access_token'])}` };
}

function sdkCredential(tv: TestVault): TokenCredential {
  return createIdentityCredential({ msiEndpoint: tv.vault.imdsEndpoint }, tv.env, {
    sleep: async () => {},
    random: () => 0.5,
    now: Date.now,
    retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
    stats: newRetryStats(),
  });
}

function sdkClient(tv: TestVault, credential?: TokenCredential): SecretClient {
  const cred = credential ?? sdkCredential(tv);
  const host = new URL(tv.vault.vaultUrl).hostname;
  return new SecretClient(tv.vault.vaultUrl, cred, { retryOptions: { maxRetries: 0 }, ...transportFor(host, trustedCas([tv.caPem], {})) });
}

const keys = (o: unknown): string[] => Object.keys(o as object).sort();

describe('dev vault with the real SecretClient', () => {
  let tv: TestVault;
  before(async () => {
    tv = await startTestVault();
  });
  after(async () => {
    await tv.close();
  });

  test('set, get and list versions round-trip through the SDK with challenge verification on', async () => {
    const client = sdkClient(tv);
    const first = await client.setSecret('roundtrip', 'value-1', { contentType: 'application/x-pem-file' });
    const second = await client.setSecret('roundtrip', 'value-2', { contentType: 'application/x-pem-file' });
    assert.match(second.properties.version ?? '', /^[0-9a-f]{32}$/);
    assert.notEqual(first.properties.version, second.properties.version);

    const latest = await client.getSecret('roundtrip');
    assert.equal(latest.value, 'value-2');
    assert.equal(latest.properties.version, second.properties.version);
    const older = await client.getSecret('roundtrip', { version: first.properties.version ?? '' });
    assert.equal(older.value, 'value-1');

    const versions: string[] = [];
    for await (const p of client.listPropertiesOfSecretVersions('roundtrip')) versions.push(p.version ?? '');
    assert.deepEqual(versions.sort(), [first.properties.version, second.properties.version].sort());
    // The SDK authenticated through the 401 challenge, not around it.
    assert.ok(tv.vault.stats().vault.unauthorized >= 1);
  });

  test('version listing pages through nextLink until every version is returned', async () => {
    for (let i = 0; i < 30; i++) tv.vault.setSecret('paged', `v${i}`);
    const before = tv.vault.stats().vault.byRoute['listVersions'] ?? 0;
    const client = sdkClient(tv);
    const seen = new Set<string>();
    for await (const p of client.listPropertiesOfSecretVersions('paged')) seen.add(p.version ?? '');
    assert.equal(seen.size, 30);
    // 30 versions at 25 per page: two authenticated page requests (+ at most one challenge round trip).
    const pageRequests = (tv.vault.stats().vault.byRoute['listVersions'] ?? 0) - before;
    assert.ok(pageRequests >= 2 && pageRequests <= 3, `page requests: ${pageRequests}`);
  });

  test('residenceMs: per route, the time requests spent in the vault, its latency included, not more than the client waited', async () => {
    const slow = await startTestVault({ latencyMs: 30 });
    try {
      for (let i = 0; i < 30; i++) slow.vault.setSecret(`res-${i}`, 'v');
      const client = sdkClient(slow);
      await client.getSecret('res-0'); // the challenge and the token, before the timed part
      slow.vault.resetStats();
      const t0 = performance.now();
      let seen = 0;
      for await (const page of client.listPropertiesOfSecrets().byPage()) seen += page.length;
      const wall = performance.now() - t0;
      const s = slow.vault.stats().vault;
      assert.equal(seen, 30);
      assert.equal(s.byRoute['listSecrets'], 2, '30 secrets, 25 a page');
      const listing = s.residenceMs['listSecrets'] ?? 0;
      // The two pages go one after the other: each at least the latency, together within what the client waited.
      assert.ok(listing >= 2 * 30, `listing residence ${listing} ms`);
      assert.ok(listing <= wall, `listing residence ${listing} ms, client wall ${wall} ms`);
      assert.deepEqual(Object.keys(s.residenceMs), ['listSecrets'], 'only the routes that were asked');
      slow.vault.resetStats();
      assert.deepEqual(slow.vault.stats().vault.residenceMs, {});
    } finally {
      await slow.close();
    }
  });

  test("a kept-alive connection is closed a second before the vault's announced keep-alive timeout", async () => {
    // The dev vault announces Node's default (Keep-Alive: timeout=5); reusing a connection the server has just
    // closed fails the request with ECONNRESET, so the client's idle limit must come first.
    tv.vault.setSecret('keepalive', 'v');
    const host = new URL(tv.vault.vaultUrl).hostname;
    const transport = transportFor(host, trustedCas([tv.caPem], {}));
    const client = new SecretClient(tv.vault.vaultUrl, sdkCredential(tv), { retryOptions: { maxRetries: 0 }, ...transport });
    assert.equal((await client.getSecret('keepalive')).value, 'v');
    await new Promise((resolve) => setImmediate(resolve));
    const free = Object.values(transport.agent?.freeSockets ?? {}).flat();
    assert.equal(free.length, 1, 'the connection is kept alive');
    assert.equal(free[0]?.timeout, 4000);
  });

  test('a token the IMDS endpoint did not issue is refused with 401', async () => {
    // A forged credential is the point of this test: a real one cannot produce a foreign token.
    const forged: TokenCredential = { getToken: async (): Promise<AccessToken> => ({ token: 'eyJforged.token.value', expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const client = sdkClient(tv, forged);
    tv.vault.setSecret('guarded', 'x');
    await assert.rejects(client.getSecret('guarded'), (err: { statusCode?: number }) => err.statusCode === 401);
  });

  test('a token for another audience is refused', async () => {
    tv.vault.setSecret('aud', 'x');
    const { body } = await imdsToken(tv.vault, 'https://vault.azure.net');
    const res = await rawRequest(tv.vault, '/secrets/aud?api-version=7.4', { Authorization: `Bearer ${String(body['access_token'])}` });
    assert.equal(res.status, 401);
    assert.match(res.body, /AKV10022/);
  });
});

describe('dev vault wire shapes match the recorded Key Vault responses', () => {
  let tv: TestVault;
  before(async () => {
    tv = await startTestVault({ tenantId: '12345678-1234-1234-1234-123456789012' });
  });
  after(async () => {
    await tv.close();
  });

  test('the unauthenticated request gets the recorded challenge with a localhost resource', async () => {
    const recorded = vector('keyvault/challenge-401.json');
    const res = await rawRequest(tv.vault, '/secrets/anything/?api-version=7.3');
    assert.equal(res.status, 401);
    const expected = (recorded.headers?.['WWW-Authenticate'] ?? '').replace('resource="https://vault.azure.net"', 'resource="https://localhost"');
    assert.equal(res.headers['www-authenticate'], expected);
    assert.deepEqual(JSON.parse(res.body), recorded.body);
    assert.equal(res.headers['content-length'], recorded.headers?.['Content-Length']);
  });

  test('a certificate-backed SecretBundle has the recorded keys in the recorded order', async () => {
    tv.vault.setSecret('shape', 'MIIK...', { contentType: 'application/x-pkcs12' });
    const res = await rawRequest(tv.vault, '/secrets/shape/?api-version=7.3', await bearer(tv.vault));
    assert.equal(res.status, 200);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    const recorded = vector('keyvault/secret-pkcs12-2022.json').body;
    assert.deepEqual(Object.keys(body), Object.keys(recorded));
    // nbf/exp are absent because this value is not a parsable certificate; the rest must match.
    const recAttrs = keys(recorded['attributes']).filter((k) => k !== 'nbf' && k !== 'exp');
    assert.deepEqual(keys(body['attributes']), recAttrs);
    assert.match(String(body['id']), new RegExp(`^${tv.vault.vaultUrl}/secrets/shape/[0-9a-f]{32}$`));
    assert.equal(body['kid'], String(body['id']).replace('/secrets/', '/keys/'));
  });

  test('a plain secret matches the GetSecret and SetSecret examples', async () => {
    tv.vault.setSecret('plain', 'mysecretvalue', {});
    const res = await rawRequest(tv.vault, '/secrets/plain?api-version=7.4', await bearer(tv.vault));
    const body = JSON.parse(res.body) as Record<string, unknown>;
    const get = specBody('GetSecret-example.json');
    assert.deepEqual(keys(body), keys(get));
    // recoverableDays is what real vaults return today (see the recorded bundles); the 2017 example predates it.
    assert.deepEqual(
      keys(body['attributes']).filter((k) => k !== 'recoverableDays'),
      keys(get['attributes']),
    );
    assert.deepEqual(keys(specBody('SetSecret-example.json')), keys(get));
  });

  test('a version list page has the GetSecretVersions shape with an absolute nextLink', async () => {
    tv.vault.setSecret('listed', 'a');
    tv.vault.setSecret('listed', 'b');
    const res = await rawRequest(tv.vault, '/secrets/listed/versions?api-version=7.4&maxresults=1', await bearer(tv.vault));
    const body = JSON.parse(res.body) as { value: Record<string, unknown>[]; nextLink: string };
    const example = specBody('GetSecretVersions-example.json') as { value: Record<string, unknown>[] };
    assert.deepEqual(keys(body), keys(example));
    assert.equal(body.value.length, 1);
    for (const k of keys(example.value[0])) assert.ok(k in (body.value[0] ?? {}), `missing ${k}`);
    const next = new URL(body.nextLink);
    assert.equal(next.origin, tv.vault.vaultUrl);
    assert.equal(next.searchParams.get('maxresults'), '1');
    const page2 = await rawRequest(tv.vault, next.pathname + next.search, await bearer(tv.vault));
    const body2 = JSON.parse(page2.body) as { value: unknown[]; nextLink: string | null };
    assert.equal(body2.value.length, 1);
    assert.equal(body2.nextLink, null);
  });

  test('errors use the {"error":{code,message}} shape: 404 SecretNotFound, 400 for maxresults out of range', async () => {
    const auth = await bearer(tv.vault);
    const missing = await rawRequest(tv.vault, '/secrets/does-not-exist/?api-version=7.4', auth);
    assert.equal(missing.status, 404);
    const err = (JSON.parse(missing.body) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, 'SecretNotFound');
    assert.match(err.message, /does-not-exist/);
    tv.vault.setSecret('exists', 'x');
    const bad = await rawRequest(tv.vault, '/secrets/exists/versions?api-version=7.4&maxresults=26', auth);
    assert.equal(bad.status, 400);
  });

  test('PEM and PKCS#12 certificate secrets get nbf/exp from their certificate, like Key Vault', async () => {
    const { issueCertificate, toPemSecret, toPkcs12Base64 } = await import('../handler/devvault/certFactory.js');
    const leaf = issueCertificate({ subjectCn: 'nbf.example', days: 30 });
    tv.vault.setSecret('withdates-pem', toPemSecret(leaf.keyPem, [leaf.certPem]), { contentType: 'application/x-pem-file' });
    tv.vault.setSecret('withdates-pfx', toPkcs12Base64(leaf.keyPem, [leaf.certPem]), { contentType: 'application/x-pkcs12' });
    for (const name of ['withdates-pem', 'withdates-pfx']) {
      const res = await rawRequest(tv.vault, `/secrets/${name}?api-version=7.4`, await bearer(tv.vault));
      const body = JSON.parse(res.body) as Record<string, unknown> & { attributes: { nbf: number; exp: number } };
      assert.equal(body.attributes.nbf, Math.floor(Date.parse(leaf.cert.validFrom) / 1000), name);
      assert.equal(body.attributes.exp, Math.floor(Date.parse(leaf.cert.validTo) / 1000), name);
      // With nbf/exp present the key sets match the recorded bundle exactly.
      const recorded = vector('keyvault/secret-pkcs12-2022.json').body;
      assert.deepEqual(Object.keys(body), Object.keys(recorded));
      assert.deepEqual(Object.keys(body.attributes), Object.keys(recorded['attributes'] as object));
    }
  });
});

describe('dev vault IMDS endpoint', () => {
  let tv: TestVault;
  before(async () => {
    tv = await startTestVault({ identities: { systemAssigned: false, userAssigned: ['aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-000000000002'] } });
  });
  after(async () => {
    await tv.close();
  });

  test('a request without the Metadata header is refused with 400', async () => {
    const res = await fetch(`${tv.vault.imdsEndpoint}?api-version=2018-02-01&resource=https://localhost`);
    assert.equal(res.status, 400);
  });

  test('a known client id gets a token response whose fields are all strings', async () => {
    const { status, body } = await imdsToken(tv.vault, 'https://localhost', 'aaaaaaaa-0000-0000-0000-000000000002');
    assert.equal(status, 200);
    for (const k of ['access_token', 'expires_in', 'expires_on', 'not_before', 'resource', 'token_type']) {
      assert.equal(typeof body[k], 'string', k);
    }
    assert.equal(body['resource'], 'https://localhost');
  });

  test('an unknown client id is "Identity not found" and no client id with several identities is ambiguous', async () => {
    const unknown = await imdsToken(tv.vault, 'https://localhost', 'bbbbbbbb-0000-0000-0000-000000000000');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body['error_description'], 'Identity not found');
    const none = await imdsToken(tv.vault);
    assert.equal(none.status, 400);
    assert.match(String(none.body['error_description']), /Multiple user assigned identities/);
  });
});

describe('dev vault limits and persistence', () => {
  test('requests above the rate limit get 429 with Retry-After and are counted', async () => {
    const tv = await startTestVault({ rateLimit: { requests: 3, windowMs: 60_000 } });
    try {
      tv.vault.setSecret('busy', 'x');
      const auth = await bearer(tv.vault);
      const statuses: number[] = [];
      const retryAfters: (string | string[] | undefined)[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await rawRequest(tv.vault, '/secrets/busy?api-version=7.4', auth);
        statuses.push(res.status);
        if (res.status === 429) retryAfters.push(res.headers['retry-after']);
      }
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      for (const ra of retryAfters) assert.ok(Number(ra) >= 1 && Number(ra) <= 60, `Retry-After ${String(ra)}`);
      assert.equal(tv.vault.stats().vault.throttled, 2);
    } finally {
      await tv.close();
    }
  });

  test('a restarted vault with the same state dir keeps its secrets and its CA', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvvm-devvault-test-'));
    try {
      const a = await startDevVault({ stateDir: dir });
      const version = a.setSecret('kept', 'persisted-value', { contentType: 'application/x-pem-file' });
      const ca = a.caCertPem;
      await a.close();
      const b = await startDevVault({ stateDir: dir });
      try {
        assert.equal(b.caCertPem, ca);
        const tv = { vault: b, env: { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' }, caPem: b.caCertPem } as unknown as TestVault;
        const got = await sdkClient(tv).getSecret('kept');
        assert.equal(got.value, 'persisted-value');
        assert.equal(got.properties.version, version);
      } finally {
        await b.close();
      }
      // A caller-supplied state dir survives close().
      assert.ok(readFileSync(join(dir, 'ca.pem'), 'utf8').includes('BEGIN CERTIFICATE'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the TLS certificate is issued by the published CA for localhost names', async () => {
    const tv = await startTestVault();
    try {
      const tls = new X509Certificate(readFileSync(join(tv.vault.stateDir, 'tls.pem')));
      assert.ok(tls.checkIssued(new X509Certificate(tv.caPem)));
      assert.ok(tls.checkHost('kvvm.localhost'));
      assert.ok(tls.checkIP('127.0.0.1'));
    } finally {
      await tv.close();
    }
  });
});

describe('kvvm dev-vault command', () => {
  test('--help prints usage and exits 0', async () => {
    const { runDevVaultCommand } = await import('../handler/devvault/command.js');
    let out = '';
    // The CLI host passes writer functions; streams work too (see the invalid-option test).
    const code = await runDevVaultCommand(['--help'], { stdout: (s: string) => (out += s), stderr: () => true, env: {} });
    assert.equal(code, 0);
    assert.match(out, /Usage: kvvm dev-vault/);
  });

  test('an invalid option exits 2 with a message', async () => {
    const { runDevVaultCommand } = await import('../handler/devvault/command.js');
    let err = '';
    const code = await runDevVaultCommand(['--fault-rate', '2'], { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) }, env: {} });
    assert.equal(code, 2);
    assert.match(err, /--fault-rate/);
  });

  test('in-process: one JSON line when ready, then a clean close when the signal aborts', async () => {
    const { runDevVaultCommand } = await import('../handler/devvault/command.js');
    const controller = new AbortController();
    const lines: string[] = [];
    let ready: (line: string) => void = () => {};
    const firstLine = new Promise<string>((resolve) => (ready = resolve));
    const done = runDevVaultCommand(['--latency-ms', '0'], {
      stdout: (s: string) => {
        lines.push(s);
        ready(s);
      },
      stderr: () => true,
      env: {},
      signal: controller.signal,
    });
    const info = JSON.parse(await firstLine) as { vaultUrl: string; caCertFile: string };
    const res = await rawRequest({ vaultUrl: info.vaultUrl, caCertPem: readFileSync(info.caCertFile, 'utf8') } as DevVault, '/secrets/x?api-version=7.4');
    assert.equal(res.status, 401);
    controller.abort();
    assert.equal(await done, 0);
    assert.equal(lines.length, 1);
    // The default (temp) state dir is removed on close.
    assert.throws(() => readFileSync(info.caCertFile));
  });

  test('the standalone entry prints exactly one JSON line, serves, and exits 0 on SIGTERM', async () => {
    const entry = join(process.cwd(), 'lib', 'handler', 'devvault', 'command-main.js');
    const child = execFile(process.execPath, [entry, '--rate', '100']);
    let stdout = '';
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')));
      });
      child.on('exit', (code) => reject(new Error(`exited early with ${String(code)}`)));
    });
    const info = JSON.parse(line) as { vaultUrl: string; imdsEndpoint: string; caCertFile: string };
    assert.deepEqual(Object.keys(info), ['vaultUrl', 'imdsEndpoint', 'caCertFile', 'hostsLine', 'resolvesHere']);
    // It really serves: the challenge comes back over TLS trusted through the printed CA file.
    const vaultLike = { vaultUrl: info.vaultUrl, caCertPem: readFileSync(info.caCertFile, 'utf8') } as DevVault;
    const res = await rawRequest(vaultLike, '/secrets/x?api-version=7.4');
    assert.equal(res.status, 401);
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exit, 0);
    assert.equal(stdout.trim().split('\n').length, 1);
  });
});
