/**
 * createVaultReader end to end: real SecretClient, real HTTPS to the dev vault, real IMDS-shaped token endpoint.
 * Sleeps are recorded instead of waited (retry counts are asserted, never wall-clock time).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import type { TokenCredential } from '@azure/identity';
import { KvvmError } from '../handler/errors.js';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import { resolveIdentitySource } from '../handler/vault/identity.js';
import { transportFor, trustedCas } from '../handler/vault/transport.js';
import { startTestVault, type TestVault } from './helpers/devVault.js';

const run = promisify(execFile);
const FAST = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
const USER_ID = 'aaaaaaaa-1111-2222-3333-444444444444';

function hasReason(reason: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof KvvmError, `expected KvvmError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.describe());
    assert.ok(err.fix && err.fix.length > 0, 'an operator fix is given');
    return true;
  };
}

describe('vault reader: host allow-list', () => {
  let tv: TestVault;
  before(async () => {
    tv = await startTestVault();
    tv.vault.setSecret('c', 'x');
  });
  after(async () => {
    await tv.close();
  });

  const refused = [
    'http://kvvm.vault.azure.net',
    'https://evil.com',
    'https://vault.azure.net.evil.com',
    'https://vault.azure.net',
    'https://1.2.3.4',
    'https://[::1]',
    'https://user:pw@kvvm.vault.azure.net',
    'https://kvvm.vault.azure.net.',
    'not a url',
  ];
  for (const url of refused) {
    test(`refuses ${url} before any token is requested`, async () => {
      let tokenRequests = 0;
      const counting: TokenCredential = {
        getToken: async () => {
          tokenRequests += 1;
          return null;
        },
      };
      const reader = createVaultReader(tv.readerOptions({ env: {}, credential: counting }));
      await assert.rejects(reader.getSecret(url, 'c'), hasReason('vault-host-not-allowed'));
      await assert.rejects(reader.listVersions(url, 'c'), hasReason('vault-host-not-allowed'));
      assert.equal(tokenRequests, 0);
    });
  }

  test('the dev vault itself is refused unless KVVM_EXTRA_VAULT_SUFFIXES allows localhost, and nothing is sent', async () => {
    const before = tv.vault.stats();
    const reader = createVaultReader(tv.readerOptions({ env: {} }));
    await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'c'), (err: unknown) => {
      hasReason('vault-host-not-allowed')(err);
      const e = err as KvvmError;
      assert.match(e.message, /kvvm\.localhost/);
      assert.match(e.message, /\.vault\.azure\.net/);
      assert.match(e.fix ?? '', /KVVM_EXTRA_VAULT_SUFFIXES/);
      return true;
    });
    assert.equal(tv.vault.stats().vault.requests, before.vault.requests);
    assert.equal(tv.vault.stats().imds.requests, before.imds.requests);
  });
});

describe('vault reader against the dev vault', () => {
  let tv: TestVault;
  before(async () => {
    tv = await startTestVault({ identities: { systemAssigned: true, userAssigned: [USER_ID] } });
  });
  after(async () => {
    await tv.close();
  });

  test('reads the latest version with its properties and caches the identity token', async () => {
    tv.vault.setSecret('web', 'old', { contentType: 'application/x-pem-file' });
    const latest = tv.vault.setSecret('web', 'new', { contentType: 'application/x-pem-file' });
    const issuedBefore = tv.vault.stats().imds.tokensIssued;
    const reader = createVaultReader(tv.readerOptions({ retry: FAST }));
    const s = await reader.getSecret(tv.vault.vaultUrl, 'web');
    assert.equal(s.value, 'new');
    assert.equal(s.version, latest);
    assert.equal(s.contentType, 'application/x-pem-file');
    assert.equal(s.managed, true);
    assert.equal(s.keyId, `${tv.vault.vaultUrl}/keys/web/${latest}`);
    assert.ok(s.createdOn instanceof Date);
    await reader.getSecret(tv.vault.vaultUrl, 'web');
    await reader.listVersions(tv.vault.vaultUrl, 'web');
    assert.equal(tv.vault.stats().imds.tokensIssued - issuedBefore, 1);
  });

  test('lists versions newest first and flags disabled ones', async () => {
    const v1 = tv.vault.setSecret('rot', 'a');
    const v2 = tv.vault.setSecret('rot', 'b');
    const v3 = tv.vault.setSecret('rot', 'c');
    tv.vault.setVersionEnabled('rot', v2, false);
    const reader = createVaultReader(tv.readerOptions({ retry: FAST }));
    const versions = await reader.listVersions(tv.vault.vaultUrl, 'rot');
    assert.deepEqual(
      versions.map((v) => v.version),
      [v3, v2, v1],
    );
    assert.deepEqual(
      versions.map((v) => v.enabled),
      [true, false, true],
    );
    await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'rot', v2), hasReason('secret-disabled'));
  });

  test('connectionsPerVault holds the reader to that many connections; without it each request in flight opens one', async () => {
    tv.vault.setSecret('conn', 'v');
    const connectionsFor = async (limit: number | undefined): Promise<number> => {
      const reader = createVaultReader({ ...tv.readerOptions({ retry: FAST }), ...(limit === undefined ? {} : { connectionsPerVault: () => limit }) });
      await reader.getSecret(tv.vault.vaultUrl, 'conn'); // the challenge and the token, on a connection of its own
      const before = tv.vault.stats().vault.connections;
      const values = await Promise.all(Array.from({ length: 6 }, () => reader.getSecret(tv.vault.vaultUrl, 'conn')));
      assert.deepEqual(new Set(values.map((v) => v.value)), new Set(['v']));
      return tv.vault.stats().vault.connections - before;
    };
    assert.equal(await connectionsFor(1), 0, 'six requests at once wait for the one open connection');
    assert.equal(await connectionsFor(2), 1);
    assert.equal(await connectionsFor(undefined), 5, 'one connection per request in flight, the open one reused');
  });

  test('a missing secret is secret-not-found with a fix naming the secret URL', async () => {
    const reader = createVaultReader(tv.readerOptions({ retry: FAST }));
    await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'no-such-cert'), (err: unknown) => {
      hasReason('secret-not-found')(err);
      assert.match((err as KvvmError).fix ?? '', /\/secrets\//);
      return true;
    });
    await assert.rejects(reader.listVersions(tv.vault.vaultUrl, 'no-such-cert'), hasReason('secret-not-found'));
    assert.equal(reader.stats.vault.retries, 0);
  });

  test('429 without Retry-After is retried with growing, capped, jittered backoff and then succeeds', async () => {
    tv.vault.setSecret('throttled', 'v');
    const reader = createVaultReader(tv.readerOptions({ retry: FAST, random: () => 1 }));
    await reader.getSecret(tv.vault.vaultUrl, 'throttled'); // warm up: challenge + token
    tv.sleeps.length = 0;
    tv.vault.injectFaults({ status: 429, count: 3 });
    const s = await reader.getSecret(tv.vault.vaultUrl, 'throttled');
    assert.equal(s.value, 'v');
    assert.equal(reader.stats.vault.retries, 3);
    assert.equal(reader.stats.vault.byKind.throttled, 3);
    // random()=1 gives the top of each jitter range: 100, 200, 400 ms.
    assert.deepEqual(tv.sleeps, [100, 200, 400]);
  });

  test('a Retry-After from the vault is honoured instead of the computed backoff', async () => {
    tv.vault.setSecret('ra', 'v');
    const reader = createVaultReader(tv.readerOptions({ retry: FAST }));
    await reader.getSecret(tv.vault.vaultUrl, 'ra');
    tv.sleeps.length = 0;
    tv.vault.injectFaults({ status: 429, retryAfterS: 7, count: 1 });
    await reader.getSecret(tv.vault.vaultUrl, 'ra');
    assert.deepEqual(tv.sleeps, [7000]);
  });

  test('a burst of 503s, a connection reset and a truncated body are retried and the read succeeds', async () => {
    tv.vault.setSecret('flaky', 'v');
    const reader = createVaultReader(tv.readerOptions({ retry: { maxAttempts: 6, baseDelayMs: 10, maxDelayMs: 100 } }));
    await reader.listVersions(tv.vault.vaultUrl, 'flaky');
    tv.vault.injectFaults({ status: 503, count: 2 });
    tv.vault.injectFaults({ kind: 'reset', count: 1 });
    tv.vault.injectFaults({ kind: 'truncated', count: 1 });
    const s = await reader.getSecret(tv.vault.vaultUrl, 'flaky');
    assert.equal(s.value, 'v');
    assert.equal(reader.stats.vault.retries, 4);
    assert.equal(reader.stats.vault.byKind.server, 2);
    assert.equal(reader.stats.vault.byKind.network, 2);
  });

  test('a persistent 500 fails with vault-server-error after exactly maxAttempts requests', async () => {
    tv.vault.setSecret('down', 'v');
    const reader = createVaultReader(tv.readerOptions({ retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 50 } }));
    await reader.getSecret(tv.vault.vaultUrl, 'down');
    const before = tv.vault.stats().vault.byStatus['500'] ?? 0;
    tv.vault.injectFaults({ status: 500, count: 50 });
    try {
      await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'down'), hasReason('vault-server-error'));
    } finally {
      tv.vault.clearFaults();
    }
    assert.equal((tv.vault.stats().vault.byStatus['500'] ?? 0) - before, 4);
    assert.equal(reader.stats.vault.retries, 3);
    assert.equal(reader.stats.vault.exhausted, 1);
  });

  test('a throttled page of a version listing is retried and the full list is returned', async () => {
    for (let i = 0; i < 27; i++) tv.vault.setSecret('many', `v${i}`);
    const reader = createVaultReader(tv.readerOptions({ retry: FAST }));
    await reader.getSecret(tv.vault.vaultUrl, 'many');
    // The first page is served, the nextLink request is throttled.
    tv.vault.injectFaults({ status: 429, count: 1, route: 'listVersions', skip: 1 });
    const versions = await reader.listVersions(tv.vault.vaultUrl, 'many');
    assert.equal(versions.length, 27);
    assert.equal(new Set(versions.map((v) => v.version)).size, 27);
    assert.equal(reader.stats.vault.retries, 1);
  });

  test('403 ForbiddenByRbac and ForbiddenByFirewall become forbidden with the matching fix, without retries', async () => {
    tv.vault.setSecret('locked', 'v');
    const reader = createVaultReader(tv.readerOptions({ retry: FAST, authentication: { msiEndpoint: tv.vault.imdsEndpoint, msiClientId: USER_ID } }));
    tv.vault.denyAccess(USER_ID, 'ForbiddenByRbac');
    try {
      await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'locked'), (err: unknown) => {
        hasReason('forbidden')(err);
        assert.match((err as KvvmError).fix ?? '', /Key Vault Secrets User/);
        assert.match((err as KvvmError).fix ?? '', new RegExp(USER_ID));
        return true;
      });
      tv.vault.denyAccess(USER_ID, 'ForbiddenByFirewall');
      await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'locked'), (err: unknown) => {
        hasReason('forbidden')(err);
        assert.match((err as KvvmError).fix ?? '', /network rules/);
        return true;
      });
    } finally {
      tv.vault.allowAccess(USER_ID);
    }
    assert.equal(reader.stats.vault.retries, 0);
  });

  test('a token the vault does not accept is reported as forbidden (401)', async () => {
    tv.vault.setSecret('t', 'v');
    // Deliberately foreign token: the real credential cannot produce one.
    const foreign: TokenCredential = { getToken: async () => ({ token: 'not-from-this-imds', expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const reader = createVaultReader(tv.readerOptions({ retry: FAST, credential: foreign }));
    await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 't'), (err: unknown) => {
      hasReason('forbidden')(err);
      assert.doesNotMatch((err as KvvmError).message, /not-from-this-imds/);
      return true;
    });
  });

  test('plain https://localhost is refused by the SDK challenge check and reported as vault-challenge-mismatch', async () => {
    tv.vault.setSecret('alias', 'v');
    const port = new URL(tv.vault.vaultUrl).port;
    const reader = createVaultReader(tv.readerOptions({ retry: FAST }));
    await assert.rejects(reader.getSecret(`https://localhost:${port}`, 'alias'), hasReason('vault-challenge-mismatch'));
  });

  test('a vault that refuses connections is vault-unreachable after bounded retries', async () => {
    const gone = await startTestVault();
    const url = gone.vault.vaultUrl;
    await gone.close();
    const reader = createVaultReader(tv.readerOptions({ retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } }));
    await assert.rejects(reader.getSecret(url, 'x'), hasReason('vault-unreachable'));
    assert.equal(reader.stats.vault.attempts, 3);
    assert.equal(reader.stats.vault.byKind.network, 2);
  });

  test('without the dev CA the TLS handshake fails as tls-failure, verification is not bypassed', async () => {
    tv.vault.setSecret('tls', 'v');
    const reader = createVaultReader(tv.readerOptions({ retry: FAST, tlsCa: [] }));
    await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'tls'), hasReason('tls-failure'));
    assert.equal(reader.stats.vault.retries, 0);
  });

  test('the clients of a process share one TLS secure context per CA set, and each still verifies the vault', async () => {
    const withCa = trustedCas([tv.caPem], {});
    const a = transportFor('kvvm.localhost', withCa);
    const b = transportFor('other.localhost', trustedCas([tv.caPem], {}));
    assert.ok(a.agent && b.agent && a.agent !== b.agent, 'each client has its own agent (its own connections)');
    assert.equal(a.agent.options.secureContext, b.agent.options.secureContext);
    const plain = transportFor('kvvm.localhost', undefined).agent?.options.secureContext;
    assert.notEqual(plain, a.agent.options.secureContext, 'another CA set, another context');
    // A real vault host keeps the SDK's agent (and its proxy handling) and gets the same context through its TLS settings.
    assert.deepEqual(transportFor('myvault.vault.azure.net', undefined), { tlsOptions: { secureContext: plain, timeout: 30_000 } });
    // Two readers trusting the dev CA read; one without it still fails the handshake with the shared default context.
    tv.vault.setSecret('shared', 'v');
    for (let i = 0; i < 2; i++) assert.equal((await createVaultReader(tv.readerOptions({ retry: FAST })).getSecret(tv.vault.vaultUrl, 'shared')).value, 'v');
    await assert.rejects(createVaultReader(tv.readerOptions({ retry: FAST, tlsCa: [] })).getSecret(tv.vault.vaultUrl, 'shared'), hasReason('tls-failure'));
  });
});

describe('vault reader identity', () => {
  let tv: TestVault;
  before(async () => {
    tv = await startTestVault({ identities: { systemAssigned: false, userAssigned: [USER_ID, 'aaaaaaaa-1111-2222-3333-000000000002'] } });
    tv.vault.setSecret('id', 'v');
  });
  after(async () => {
    await tv.close();
  });

  test('the right msiClientId is sent as client_id and gets a token', async () => {
    const reader = createVaultReader(tv.readerOptions({ authentication: { msiEndpoint: tv.vault.imdsEndpoint, msiClientId: USER_ID } }));
    assert.equal((await reader.getSecret(tv.vault.vaultUrl, 'id')).value, 'v');
  });

  test('the Linux spelling of msiEndpoint (.../metadata/identity) reaches the same token endpoint', async () => {
    const linuxForm = `${tv.vault.imdsHost}/metadata/identity`;
    const reader = createVaultReader(tv.readerOptions({ authentication: { msiEndpoint: linuxForm, msiClientId: USER_ID } }));
    assert.equal((await reader.getSecret(tv.vault.vaultUrl, 'id')).value, 'v');
  });

  test('an unknown msiClientId is identity-not-found with a fix about msiClientId', async () => {
    const reader = createVaultReader(tv.readerOptions({ authentication: { msiEndpoint: tv.vault.imdsEndpoint, msiClientId: 'ffffffff-0000-0000-0000-000000000000' } }));
    await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'id'), (err: unknown) => {
      hasReason('identity-not-found')(err);
      assert.match((err as KvvmError).fix ?? '', /msiClientId/);
      return true;
    });
    assert.equal(reader.stats.identity.retries, 0);
  });

  test('no msiClientId on a VM with several user-assigned identities is identity-ambiguous', async () => {
    const reader = createVaultReader(tv.readerOptions());
    await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'id'), hasReason('identity-ambiguous'));
  });

  test('IMDS 500s and 429s are retried; a body that is not a token fails as identity-unavailable', async () => {
    const ok = createVaultReader(tv.readerOptions({ authentication: { msiEndpoint: tv.vault.imdsEndpoint, msiClientId: USER_ID } }));
    tv.vault.injectFaults({ target: 'imds', status: 500, count: 1 });
    tv.vault.injectFaults({ target: 'imds', status: 429, count: 1 });
    assert.equal((await ok.getSecret(tv.vault.vaultUrl, 'id')).value, 'v');
    assert.equal(ok.stats.identity.retries, 2);

    const bad = createVaultReader(tv.readerOptions({ authentication: { msiEndpoint: tv.vault.imdsEndpoint, msiClientId: USER_ID } }));
    tv.vault.injectFaults({ target: 'imds', kind: 'bad-json', count: 1 });
    await assert.rejects(bad.getSecret(tv.vault.vaultUrl, 'id'), hasReason('identity-unavailable'));
  });

  test('an unreachable identity endpoint is identity-unavailable after bounded retries', async () => {
    const other = await startTestVault();
    const deadEndpoint = other.vault.imdsEndpoint;
    await other.close();
    const reader = createVaultReader(tv.readerOptions({ authentication: { msiEndpoint: deadEndpoint }, identityRetry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } }));
    await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'id'), hasReason('identity-unavailable'));
    assert.equal(reader.stats.identity.attempts, 3);
  });

  test("msiEndpoint spellings: standard IMDS goes to the library, others to kvvm's client, junk is refused", () => {
    assert.deepEqual(resolveIdentitySource(undefined), { kind: 'library' });
    assert.deepEqual(resolveIdentitySource('http://169.254.169.254/metadata/identity/oauth2/token'), { kind: 'library' });
    assert.deepEqual(resolveIdentitySource('http://169.254.169.254/metadata/identity'), { kind: 'library' });
    assert.deepEqual(resolveIdentitySource('http://localhost:40342/metadata/identity'), { kind: 'endpoint', tokenUrl: 'http://localhost:40342/metadata/identity/oauth2/token' });
    for (const junk of ['169.254.169.254', 'ftp://x/metadata', 'http://', 'http://u:p@host/metadata/identity']) {
      assert.throws(
        () => resolveIdentitySource(junk),
        (err: unknown) => err instanceof KvvmError && err.reason === 'invalid-msi-endpoint',
        junk,
      );
    }
  });
});

describe('vault reader with an Azure Arc style identity endpoint', () => {
  let tv: TestVault;
  let keyDir: string;
  before(async () => {
    keyDir = mkdtempSync(join(tmpdir(), 'kvvm-arc-keys-'));
    tv = await startTestVault({ arcChallengeDir: keyDir });
    tv.vault.setSecret('arc', 'via-arc');
  });
  after(async () => {
    await tv.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  test('answers the Basic realm challenge with the key file from the agent folder', async () => {
    const reader = createVaultReader(tv.readerOptions({ arcKeyDirs: [keyDir] }));
    assert.equal((await reader.getSecret(tv.vault.vaultUrl, 'arc')).value, 'via-arc');
    assert.equal(reader.stats.identity.retries, 0);
  });

  test('refuses a challenge that points outside the agent folder, without reading it', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'kvvm-arc-other-'));
    try {
      const reader = createVaultReader(tv.readerOptions({ arcKeyDirs: [otherDir] }));
      await assert.rejects(reader.getSecret(tv.vault.vaultUrl, 'arc'), (err: unknown) => {
        hasReason('identity-unavailable')(err);
        assert.match((err as KvvmError).message, /not an Azure Arc token key file/);
        return true;
      });
      assert.equal(reader.stats.identity.retries, 0);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });
});

describe('vault reader with the library ManagedIdentityCredential', () => {
  // @azure/identity reads its IMDS host from process.env and caches it process-wide, so this runs in a child
  // process whose env points AZURE_POD_IDENTITY_AUTHORITY_HOST at the dev IMDS (no msiEndpoint setting).
  const child = `
    import { createVaultReader } from ${JSON.stringify(new URL('../handler/vault/secretsClient.js', import.meta.url).href)};
    const reader = createVaultReader({ authentication: process.argv[1] ? { msiClientId: process.argv[1] } : {}, env: process.env, sleep: async () => {} });
    try { const s = await reader.getSecret(process.env.TEST_VAULT_URL, 'lib'); console.log(JSON.stringify({ value: s.value })); }
    catch (e) { console.log(JSON.stringify({ reason: e.reason, fix: e.fix })); }
  `;
  let tv: TestVault;
  before(async () => {
    tv = await startTestVault({ identities: { systemAssigned: false, userAssigned: [USER_ID] } });
    tv.vault.setSecret('lib', 'from-library-path');
  });
  after(async () => {
    await tv.close();
  });

  async function runChild(clientId: string): Promise<Record<string, string>> {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', child, clientId], {
      env: tv.childEnv({ TEST_VAULT_URL: tv.vault.vaultUrl, AZURE_POD_IDENTITY_AUTHORITY_HOST: tv.vault.imdsHost }),
    });
    return JSON.parse(stdout.trim()) as Record<string, string>;
  }

  test('reads a secret through ManagedIdentityCredential with the client id', async () => {
    assert.deepEqual(await runChild(USER_ID), { value: 'from-library-path' });
  });

  test('maps the library\'s "Identity not found" to identity-not-found', async () => {
    const out = await runChild('ffffffff-0000-0000-0000-000000000000');
    assert.equal(out['reason'], 'identity-not-found');
  });
});
