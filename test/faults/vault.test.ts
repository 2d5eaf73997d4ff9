/**
 * Vault and identity faults against the real engine: runSyncCycle with the real SDK-backed reader talking HTTPS to
 * the dev vault, the real PEM store, the real parser and a real winston log. Each scenario rotates certificate
 * "a", injects one kind of fault, runs one cycle and checks: "a" either recovered (new version active) or failed
 * with a stable reason while its installed version stays active; "b" and "c" are untouched; the store is intact;
 * a cycle without faults then converges. The reader's retry sleeps are recorded instead of waited.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createCa, issueCertificate, toPemSecret, toPkcs12Base64, type IssuedCertificate } from '../../handler/devvault/certFactory.js';
import type { FaultSpec } from '../../handler/devvault/faults.js';
import { parseCertificateSecret } from '../../handler/certs/parse.js';
import { makeChainCheck } from '../../handler/commands/service.js';
import type { CertificateSyncDeps, CertificateSyncResult } from '../../handler/engine/certificateSync.js';
import { runSyncCycle } from '../../handler/engine/syncCycle.js';
import { createLogger, type KvvmLogger } from '../../handler/service/logger.js';
import { parseSettings } from '../../handler/settings/index.js';
import type { ObservedCertificate } from '../../handler/settings/config.js';
import { createPemStore } from '../../handler/stores/pemStore.js';
import { createVaultReader, type CreateVaultReaderOptions } from '../../handler/vault/secretsClient.js';
import type { VaultReader } from '../../handler/vault/types.js';
import { startTestVault, type TestVault } from '../helpers/devVault.js';
import { checkStoreIntegrity, faultWorkDir, registerSecrets } from '../helpers/faults.js';

let tv: TestVault;
let work: string;
let storeDir: string;
let log: KvvmLogger;
let certs: ObservedCertificate[];
const pool: IssuedCertificate[] = [];
let rotation = 0;
const REQUEST_TIMEOUT_MS = 400;

function register(issued: IssuedCertificate, value: string): void {
  registerSecrets('vault', { secrets: [issued.keyPem, value] });
}

before(async () => {
  work = await faultWorkDir('vault');
  storeDir = join(work, 'store');
  tv = await startTestVault();
  log = createLogger({ logFolder: join(work, 'log'), name: 'service' });
  const ca = createCa('faults root');
  for (let i = 0; i < 3; i++) pool.push(issueCertificate({ issuer: ca, subjectCn: `a${i}.test`, serverAuth: false }));
  const b = issueCertificate({ issuer: ca, subjectCn: 'b.test', serverAuth: false });
  const c = issueCertificate({ issuer: ca, subjectCn: 'c.test', serverAuth: false });
  const aValue = toPemSecret(pool[0]!.keyPem, [pool[0]!.certPem, ca.certPem]);
  const bValue = toPkcs12Base64(b.keyPem, [b.certPem, ca.certPem]);
  const cValue = toPemSecret(c.keyPem, [c.certPem]);
  register(pool[0]!, aValue);
  register(b, bValue);
  register(c, cValue);
  tv.vault.setSecret('a', aValue, { contentType: 'application/x-pem-file' });
  tv.vault.setSecret('b', bValue, { contentType: 'application/x-pkcs12' });
  tv.vault.setSecret('c', cValue, { contentType: 'application/x-pem-file' });
  const parsed = parseSettings(
    {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: ['a', 'b', 'c'].map((n) => ({ url: `${tv.vault.vaultUrl}/secrets/${n}`, certificateStoreLocation: storeDir })),
      },
    },
    { platform: 'linux', env: tv.env },
  );
  assert.ok(parsed.ok, JSON.stringify(parsed));
  certs = parsed.config.observedCertificates;
});

after(async () => {
  registerSecrets('vault', { tokens: tv.vault.issuedTokens() });
  await log.close();
  await tv.close();
  // `work` stays for zz-secretScan.
});

function makeDeps(extra: Partial<CreateVaultReaderOptions> = {}, wrap?: (r: VaultReader) => VaultReader): CertificateSyncDeps {
  const reader = createVaultReader(
    tv.readerOptions({
      retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 40 },
      identityRetry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 40 },
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      ...extra,
    }),
  );
  return {
    vault: wrap ? wrap(reader) : reader,
    store: createPemStore({}),
    parse: parseCertificateSecret,
    checkChain: makeChainCheck([]),
    now: () => new Date(),
    log,
  };
}

/** A new version of "a" (a fresh version id; the content cycles through a small pool of real certificates). */
function rotateA(contentType = 'application/x-pem-file'): string {
  rotation += 1;
  const issued = pool[rotation % pool.length]!;
  const value = contentType === 'application/x-pkcs12' ? toPkcs12Base64(issued.keyPem, [issued.certPem]) : toPemSecret(issued.keyPem, [issued.certPem]);
  register(issued, value);
  return tv.vault.setSecret('a', value, { contentType });
}

function byName(results: readonly CertificateSyncResult[]): Map<string, CertificateSyncResult> {
  assert.equal(results.length, 3, 'one result per certificate');
  return new Map(results.map((r) => [r.cert.secretName, r]));
}

async function activeVersions(deps: CertificateSyncDeps): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const c of certs) out.set(c.secretName, (await deps.store.list(c)).find((i) => i.active)?.version);
  return out;
}

/** A cycle without faults brings every certificate to its newest version. */
async function converge(expectA?: string): Promise<void> {
  tv.vault.clearFaults();
  const deps = makeDeps();
  const results = byName(await runSyncCycle(certs, deps, { concurrency: 3 }));
  for (const r of results.values()) assert.ok(r.state === 'installed' || r.state === 'unchanged', `${r.cert.secretName}: ${r.state} ${r.reason ?? ''}`);
  if (expectA !== undefined) assert.equal(results.get('a')!.activeVersion, expectA);
  await checkStoreIntegrity(storeDir);
}

type Expect = { recover: true } | { reason: string | RegExp; state?: 'error' | 'skipped' };

/** Rotate "a", inject, run one cycle with a fresh reader (fresh token cache), check, converge. */
async function scenario(inject: () => void, expect: Expect, options: { rotate?: () => string; wrap?: (r: VaultReader) => VaultReader } = {}): Promise<CertificateSyncResult> {
  const baseline = await activeVersions(makeDeps());
  const newA = (options.rotate ?? rotateA)();
  const deps = makeDeps({}, options.wrap);
  inject();
  const results = byName(await runSyncCycle(certs, deps, { concurrency: 3 }));
  tv.vault.clearFaults();
  const a = results.get('a')!;
  if ('recover' in expect) {
    assert.equal(a.state, 'installed', `a: ${a.state} ${a.reason ?? ''} ${a.message ?? ''}`);
    assert.equal(a.activeVersion, newA);
  } else {
    assert.equal(a.state, expect.state ?? 'error', `a: ${a.state} ${a.message ?? ''}`);
    if (typeof expect.reason === 'string') assert.equal(a.reason, expect.reason, a.message);
    else assert.match(a.reason ?? '', expect.reason, a.message);
    assert.ok((a.message ?? '').length > 20, 'an operator-facing message');
    assert.equal(a.activeVersion, baseline.get('a'), 'the installed version of a stays active');
  }
  for (const name of ['b', 'c']) {
    const r = results.get(name)!;
    assert.equal(r.state, 'unchanged', `${name}: ${r.state} ${r.message ?? ''}`);
    assert.equal(r.activeVersion, baseline.get(name));
  }
  const snap = await checkStoreIntegrity(storeDir);
  assert.equal(snap.links.size, 3, 'every certificate still has its link');
  // A failed newest version stays bad in the vault: publish a good one, then a clean cycle converges to it.
  await converge('recover' in expect ? newA : rotateA());
  return a;
}

const getA =
  (spec: FaultSpec): (() => void) =>
  () =>
    tv.vault.injectFaults({ route: 'getSecret', ...spec });

test('the first cycle installs all three certificates', async () => {
  await converge();
  const active = await activeVersions(makeDeps());
  assert.ok([...active.values()].every((v) => v !== undefined));
});

test('a burst of 500s shorter than the retry budget is retried and the new version installed', async () => {
  await scenario(getA({ kind: 'status', status: 500, count: 3 }), { recover: true });
});

test('503s outlasting the retries fail only that certificate, with reason vault-server-error', async () => {
  await scenario(getA({ kind: 'status', status: 503, count: 50 }), { reason: 'vault-server-error' });
});

test('429 with Retry-After is retried after the advertised delay', async () => {
  tv.sleeps.length = 0;
  await scenario(getA({ kind: 'status', status: 429, retryAfterS: 3, count: 2 }), { recover: true });
  assert.ok(tv.sleeps.filter((ms) => ms === 3000).length >= 2, `sleeps: ${tv.sleeps.join(',')}`);
});

test('429 without Retry-After is retried with kvvm backoff', async () => {
  await scenario(getA({ kind: 'status', status: 429, count: 2 }), { recover: true });
});

test('throttling that never stops reports reason throttled', async () => {
  await scenario(getA({ kind: 'status', status: 429, count: 50 }), { reason: 'throttled' });
});

test('a vault that does not answer in time is retried (request timeout)', async () => {
  await scenario(getA({ kind: 'delay', delayMs: REQUEST_TIMEOUT_MS * 4, count: 1 }), { recover: true });
});

test('a vault that never answers in time reports vault-unreachable instead of hanging', async () => {
  await scenario(getA({ kind: 'delay', delayMs: REQUEST_TIMEOUT_MS * 4, count: 50 }), { reason: 'vault-unreachable' });
});

test('connection resets are retried', async () => {
  await scenario(getA({ kind: 'reset', count: 2 }), { recover: true });
});

test('connection resets on every attempt report vault-unreachable', async () => {
  await scenario(getA({ kind: 'reset', count: 50 }), { reason: 'vault-unreachable' });
});

test('a truncated response body is retried', async () => {
  await scenario(getA({ kind: 'truncated', count: 2 }), { recover: true });
});

test('truncated bodies on every attempt fail that certificate with a clear reason', async () => {
  const a = await scenario(getA({ kind: 'truncated', count: 50 }), { reason: 'vault-unreachable' });
  assert.match(a.message ?? '', /connection closed early|ECONNRESET|reach/i);
});

test('a new version with a non-certificate content type is skipped and the old one kept', async () => {
  await scenario(() => undefined, { reason: 'not-a-certificate', state: 'skipped' }, { rotate: () => rotateA('text/plain') });
});

test('a PFX labelled as PEM fails to parse with a named KvvmError reason and the old version stays', async () => {
  // Any named reason from the parser, not 'unexpected' (which would mean a non-KvvmError escaped it).
  await scenario(
    () => undefined,
    { reason: /^(?!unexpected$)[a-z][a-z-]+$/ },
    {
      rotate: () => {
        const issued = pool[0]!;
        const value = toPkcs12Base64(issued.keyPem, [issued.certPem]);
        register(issued, value);
        return tv.vault.setSecret('a', value, { contentType: 'application/x-pem-file' });
      },
    },
  );
});

test('a secret deleted between the versions list and the get reports secret-not-found and keeps the installed version', async () => {
  let deleted = false;
  const a = await scenario(
    () => undefined,
    { reason: 'secret-not-found' },
    {
      wrap: (r) => ({
        getSecret: (u, n, v) => r.getSecret(u, n, v),
        listVersions: async (u, n) => {
          const list = await r.listVersions(u, n);
          if (n === 'a' && !deleted) {
            deleted = tv.vault.deleteSecret('a');
          }
          return list;
        },
      }),
    },
  );
  assert.ok(deleted);
  assert.equal(a.state, 'error');
});

test('a version disabled between the versions list and the get reports secret-disabled', async () => {
  let newA = '';
  await scenario(
    () => undefined,
    { reason: 'secret-disabled' },
    {
      rotate: () => (newA = rotateA()),
      wrap: (r) => ({
        getSecret: (u, n, v) => r.getSecret(u, n, v),
        listVersions: async (u, n) => {
          const list = await r.listVersions(u, n);
          if (n === 'a') tv.vault.setVersionEnabled('a', newA, false);
          return list;
        },
      }),
    },
  );
});

test('failed version listings cost only the certificate that exhausted its retries; nothing is removed', async () => {
  const deps = makeDeps();
  const baseline = await activeVersions(deps);
  // Concurrency 1 makes the order a, b, c: a takes four 503s (its whole budget), b two (then succeeds), c none.
  tv.vault.injectFaults({ route: 'listVersions', kind: 'status', status: 503, count: 6 });
  const results = byName(await runSyncCycle(certs, deps, { concurrency: 1 }));
  tv.vault.clearFaults();
  assert.equal(results.get('a')!.state, 'error');
  assert.equal(results.get('a')!.reason, 'vault-server-error');
  assert.equal(results.get('b')!.state, 'unchanged');
  assert.equal(results.get('c')!.state, 'unchanged');
  for (const r of results.values()) assert.equal(r.activeVersion, baseline.get(r.cert.secretName));
  await converge();
});

// ---- identity endpoint ----

async function identityScenario(spec: FaultSpec, expect: { recover: true } | { reason: string }): Promise<void> {
  const deps = makeDeps();
  const baseline = await activeVersions(deps);
  const newA = rotateA();
  tv.vault.injectFaults({ target: 'imds', ...spec });
  const results = byName(await runSyncCycle(certs, deps, { concurrency: 3 }));
  tv.vault.clearFaults();
  for (const r of results.values()) {
    if ('recover' in expect) {
      assert.notEqual(r.state, 'error', `${r.cert.secretName}: ${r.message ?? ''}`);
      if (r.cert.secretName === 'a') assert.equal(r.activeVersion, newA);
    } else {
      assert.equal(r.state, 'error', `${r.cert.secretName}: ${r.state}`);
      assert.equal(r.reason, expect.reason, r.message);
      assert.match(r.message ?? '', /identity/i);
      assert.equal(r.activeVersion, baseline.get(r.cert.secretName), 'installed certificates stay');
    }
  }
  await checkStoreIntegrity(storeDir);
  await converge(newA);
}

test('identity endpoint 500s within the retry budget are retried', async () => {
  await identityScenario({ kind: 'status', status: 500, count: 2 }, { recover: true });
});

test('identity endpoint 500s beyond the retry budget fail every certificate with an identity reason, removing nothing', async () => {
  await identityScenario({ kind: 'status', status: 500, count: 50 }, { reason: 'identity-unavailable' });
});

test('identity endpoint 429 is retried', async () => {
  await identityScenario({ kind: 'status', status: 429, retryAfterS: 1, count: 2 }, { recover: true });
});

test('a slow identity endpoint times out and is retried', async () => {
  await identityScenario({ kind: 'delay', delayMs: REQUEST_TIMEOUT_MS * 4, count: 1 }, { recover: true });
});

test('an identity endpoint answering non-JSON fails with an identity reason and the next cycle recovers', async () => {
  await identityScenario({ kind: 'bad-json', count: 50 }, { reason: 'identity-unavailable' });
});
