/**
 * Poll cost independent of version history (issue 12, item 2): the real SDK-backed reader against the dev vault,
 * the real engine and PEM store, with the poll memory the service uses (handler/engine/pollMemory.ts). Requests are
 * counted by the vault per route. Each behaviour is also checked for parity with a memory-less sync (every poll
 * lists every version, the behaviour before the memory existed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCa, issueCertificate, toPemSecret, type IssuedCertificate } from '../handler/devvault/certFactory.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { makeChainCheck } from '../handler/commands/service.js';
import type { CertificateSyncDeps, CertificateSyncResult, SyncLogger } from '../handler/engine/certificateSync.js';
import { VERSIONS_KEPT } from '../handler/engine/planner.js';
import { createPollMemory, FULL_REFRESH_CYCLES } from '../handler/engine/pollMemory.js';
import { runSyncCycle } from '../handler/engine/syncCycle.js';
import { parseSettings } from '../handler/settings/index.js';
import type { ObservedCertificate } from '../handler/settings/config.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import { startTestVault, type TestVault } from './helpers/devVault.js';

let tv: TestVault;
let root: string;
let leaf: IssuedCertificate;
let pem: string;
let dirs = 0;

const quiet: SyncLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

before(async () => {
  tv = await startTestVault();
  root = mkdtempSync(join(tmpdir(), 'kvvm-pollcost-'));
  const ca = createCa('poll cost root');
  leaf = issueCertificate({ issuer: ca, subjectCn: 'poll.test', serverAuth: false });
  pem = toPemSecret(leaf.keyPem, [leaf.certPem]);
});

after(async () => {
  await tv.close();
  rmSync(root, { recursive: true, force: true });
});

function put(name: string, options: { notBefore?: Date } = {}): string {
  return tv.vault.setSecret(name, pem, { contentType: 'application/x-pem-file', ...options });
}

/** Observed certificates (one fresh PEM folder for the set), through the real settings parser. */
function observe(names: readonly string[]): ObservedCertificate[] {
  const storeDir = join(root, `store-${(dirs += 1)}`);
  const parsed = parseSettings(
    {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: names.map((n) => ({
          url: `${tv.vault.vaultUrl}/secrets/${n}`,
          certificateStoreLocation: storeDir,
        })),
      },
    },
    { platform: 'linux', env: tv.env },
  );
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return parsed.config.observedCertificates;
}

function deps(withMemory: boolean, now: () => Date = () => new Date()): CertificateSyncDeps {
  return {
    vault: createVaultReader(tv.readerOptions()),
    store: createPemStore({}),
    parse: parseCertificateSecret,
    checkChain: makeChainCheck([]),
    now,
    log: quiet,
    ...(withMemory ? { memory: createPollMemory(VERSIONS_KEPT) } : {}),
  };
}

interface Counted {
  results: CertificateSyncResult[];
  requests: number;
  byRoute: Record<string, number>;
}

/** One cycle; the vault's authenticated requests during it, in all and per route. */
async function cycle(certs: readonly ObservedCertificate[], d: CertificateSyncDeps): Promise<Counted> {
  tv.vault.resetStats();
  const results = await runSyncCycle(certs, d, { concurrency: 4 });
  const s = tv.vault.stats().vault;
  const byRoute = { ...s.byRoute };
  return { results, requests: s.requests - s.unauthorized, byRoute };
}

async function installedVersions(certs: readonly ObservedCertificate[], d: CertificateSyncDeps): Promise<string[][]> {
  return Promise.all(certs.map(async (c) => (await d.store.list(c)).map((i) => `${i.version}${i.active ? '*' : ''}`).sort()));
}

function states(c: Counted): string[] {
  return c.results.map((r) => `${r.cert.secretName}:${r.state}`);
}

describe('an unchanged certificate costs at most one request per poll, whatever its history', () => {
  for (const history of [1, 30, 100]) {
    test(`${history} version(s): one listing request per steady poll, its full listing once per refresh period`, async () => {
      const name = `hist-${history}`;
      for (let i = 0; i < history; i++) put(name);
      const certs = observe([name]);
      const d = deps(true);
      const first = await cycle(certs, d);
      assert.deepEqual(states(first), [`${name}:installed`]);
      const pages = Math.ceil(history / 25);
      assert.equal(first.requests, pages + Math.min(history, 2), 'first sight lists every version page and fetches the two newest');
      const perCycle: number[] = [];
      for (let i = 0; i < FULL_REFRESH_CYCLES; i++) {
        const c = await cycle(certs, d);
        assert.deepEqual(states(c), [`${name}:unchanged`]);
        assert.equal(c.byRoute['getSecret'] ?? 0, 0, 'nothing changed: no request carries the secret value');
        perCycle.push(c.requests);
      }
      // One cycle of the period is the refresh (the whole versions listing, no secret listing); every other is one
      // page of the secret listing.
      assert.equal(
        perCycle.reduce((a, b) => a + b, 0),
        FULL_REFRESH_CYCLES - 1 + pages,
        `requests per cycle: ${perCycle.join(', ')}`,
      );
      assert.ok(
        perCycle.every((n) => n === 1 || n === pages),
        `requests per cycle: ${perCycle.join(', ')}`,
      );
    });
  }
});

test('a memory handed to a new process (its JSON snapshot, a new vault client: a worker that rested) costs what the same memory kept in one process costs', async () => {
  const history = 30;
  const name = 'rested-30';
  for (let i = 0; i < history; i++) put(name);
  const certs = observe([name]);
  let d = deps(true);
  const first = await cycle(certs, d);
  assert.deepEqual(states(first), [`${name}:installed`]);
  const pages = Math.ceil(history / 25);
  const perCycle: number[] = [];
  for (let i = 0; i < FULL_REFRESH_CYCLES; i++) {
    // Each cycle in a new "process": the snapshot through JSON (as saved to disk), a new reader and store.
    const snapshot = JSON.parse(JSON.stringify(d.memory!.snapshot())) as Parameters<typeof createPollMemory>[1];
    d = { ...deps(false), memory: createPollMemory(VERSIONS_KEPT, snapshot) };
    const c = await cycle(certs, d);
    assert.deepEqual(states(c), [`${name}:unchanged`]);
    assert.equal(c.byRoute['getSecret'] ?? 0, 0, 'nothing changed: no request carries the secret value');
    perCycle.push(c.requests);
  }
  assert.equal(
    perCycle.reduce((a, b) => a + b, 0),
    FULL_REFRESH_CYCLES - 1 + pages,
    `requests per cycle: ${perCycle.join(', ')}`,
  );
  assert.ok(
    perCycle.every((n) => n === 1 || n === pages),
    `requests per cycle: ${perCycle.join(', ')}`,
  );
  assert.throws(() => createPollMemory(VERSIONS_KEPT, { cycle: 1, certificates: [{ key: 'x' }], vaults: [] } as never), /poll memory snapshot/);
});

describe('what changes is seen, as without memory', () => {
  test('several certificates of one vault are answered by one page of the secret listing', async () => {
    const names = ['multi-a', 'multi-b', 'multi-c', 'multi-d', 'multi-e'];
    for (const n of names) put(n);
    const certs = observe(names);
    const d = deps(true);
    await cycle(certs, d);
    // Find a cycle in which no certificate's refresh is due (they are staggered) and check it costs one request.
    let steady: Counted | undefined;
    for (let i = 0; i < FULL_REFRESH_CYCLES && !steady; i++) {
      const c = await cycle(certs, d);
      assert.ok(c.results.every((r) => r.state === 'unchanged'));
      if ((c.byRoute['listVersions'] ?? 0) === 0) steady = c;
    }
    assert.ok(steady, 'some cycle has no refresh');
    assert.equal(steady.requests, 1, 'one secret listing page answers for five certificates');
    assert.equal(steady.byRoute['listSecrets'], 1);
  });

  test('a rotation is installed at the next poll, the previous version kept', async () => {
    const v1 = put('rot-a');
    const certs = observe(['rot-a']);
    const d = deps(true);
    await cycle(certs, d);
    await cycle(certs, d);
    const v2 = put('rot-a');
    const c = await cycle(certs, d);
    assert.deepEqual(states(c), ['rot-a:installed']);
    assert.deepEqual(await installedVersions(certs, d), [[v1, `${v2}*`].sort()]);
    assert.equal(c.byRoute['listVersions'], 1, 'the changed listing entry sends that certificate to its full listing');
  });

  test('a disabled newest version: the previous one becomes active, then the steady poll is one request again', async () => {
    const v1 = put('dis-a');
    const v2 = put('dis-a');
    const withMemory = observe(['dis-a']);
    const without = observe(['dis-a']);
    const dm = deps(true);
    const dn = deps(false);
    await cycle(withMemory, dm);
    await cycle(without, dn);
    await cycle(withMemory, dm);
    tv.vault.setVersionEnabled('dis-a', v2, false);
    const changed = await cycle(withMemory, dm);
    await cycle(without, dn);
    assert.deepEqual(states(changed), ['dis-a:installed']);
    assert.deepEqual(await installedVersions(withMemory, dm), [[`${v1}*`]]);
    assert.deepEqual(await installedVersions(withMemory, dm), await installedVersions(without, dn), 'same outcome as listing every version');
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) counts.push((await cycle(withMemory, dm)).requests);
    assert.ok(counts.includes(1), `a steady poll with the newest version disabled costs one request (saw ${counts.join(', ')})`);
  });

  test('a not-yet-valid newest version is installed once its not-before passes, with no request but the listing', async () => {
    let nowMs = Date.now();
    const v1 = put('nbf-a');
    const v2 = put('nbf-a', { notBefore: new Date(nowMs + 3_600_000) });
    const certs = observe(['nbf-a']);
    const d = deps(true, () => new Date(nowMs));
    await cycle(certs, d);
    assert.deepEqual(await installedVersions(certs, d), [[`${v1}*`]]);
    // Two cycles, so this certificate's full listing (first sight) is behind and its memory is checked.
    const steady = await cycle(certs, d);
    assert.deepEqual(states(steady), ['nbf-a:unchanged']);
    nowMs += 3_700_000;
    const reached = await cycle(certs, d);
    assert.deepEqual(states(reached), ['nbf-a:installed']);
    assert.deepEqual(await installedVersions(certs, d), [[v1, `${v2}*`].sort()]);
  });

  test('an older version disabled is acted on by the periodic full listing, with the outcome of listing every poll', async () => {
    const v1 = put('old-a');
    const v2 = put('old-a');
    const v3 = put('old-a');
    const withMemory = observe(['old-a']);
    const without = observe(['old-a']);
    const dm = deps(true);
    const dn = deps(false);
    await cycle(withMemory, dm);
    await cycle(without, dn);
    tv.vault.setVersionEnabled('old-a', v2, false);
    await cycle(without, dn);
    assert.deepEqual(await installedVersions(without, dn), [[v1, `${v3}*`].sort()]);
    for (let i = 0; i < FULL_REFRESH_CYCLES; i++) await cycle(withMemory, dm);
    assert.deepEqual(await installedVersions(withMemory, dm), [[v1, `${v3}*`].sort()]);
  });

  test('a pinned version is fetched as before: one request, no listing', async () => {
    put('pin-a');
    const v2 = put('pin-a');
    put('pin-a');
    // A versioned URL is a 3.x setting (its settings shape is covered elsewhere); the engine sees this field.
    const certs = observe(['pin-a']).map((c) => ({ ...c, pinnedVersion: v2 }));
    const d = deps(true);
    await cycle(certs, d);
    const c = await cycle(certs, d);
    assert.deepEqual(states(c), ['pin-a:unchanged']);
    assert.equal(c.requests, 1);
    assert.equal(c.byRoute['getSecret'], 1);
    assert.deepEqual(await installedVersions(certs, d), [[`${v2}*`]]);
  });

  test('an identity that may get but not list: the latest version only, one request per steady poll', async () => {
    put('nolist-a');
    const v2 = put('nolist-a');
    const certs = observe(['nolist-a']);
    const d = deps(true);
    const forbidden = { kind: 'status' as const, status: 403, code: 'Forbidden', innerCode: 'ForbiddenByRbac', count: 1000 };
    tv.vault.injectFaults({ ...forbidden, route: 'listVersions' });
    tv.vault.injectFaults({ ...forbidden, route: 'listSecrets' });
    try {
      const first = await cycle(certs, d);
      assert.deepEqual(states(first), ['nolist-a:installed']);
      assert.deepEqual(await installedVersions(certs, d), [[`${v2}*`]]);
      const steady = await cycle(certs, d);
      assert.deepEqual(states(steady), ['nolist-a:unchanged']);
      assert.ok(steady.requests <= 2);
      const counts: number[] = [steady.requests];
      for (let i = 0; i < 3; i++) counts.push((await cycle(certs, d)).requests);
      assert.ok(counts.includes(1), `the latest version alone is asked for (saw ${counts.join(', ')})`);
      const v3 = put('nolist-a');
      const rotated = await cycle(certs, d);
      assert.deepEqual(states(rotated), ['nolist-a:installed']);
      assert.deepEqual(await installedVersions(certs, d), [[`${v3}*`]]);
    } finally {
      tv.vault.clearFaults();
    }
  });

  test('a vault whose listing is longer than its observed certificates is asked per certificate', async () => {
    // 60 other secrets first, so the observed ones are on the listing's last page.
    for (let i = 0; i < 60; i++) put(`other-${i}`);
    // The listing is in name order (as Key Vault's): these names come after every other secret of this file.
    const names = ['zz-big-a', 'zz-big-b'];
    for (const n of names) put(n);
    const certs = observe(names);
    const d = deps(true);
    await cycle(certs, d);
    const seen: Counted[] = [];
    for (let i = 0; i < 4; i++) seen.push(await cycle(certs, d));
    const last = seen[seen.length - 1]!;
    assert.ok(last.results.every((r) => r.state === 'unchanged'));
    // Learnt: 3 listing pages > 2 certificates, so one GET of each latest version (no listing pages any more).
    const steady = seen.filter((c) => (c.byRoute['listVersions'] ?? 0) === 0 && (c.byRoute['listSecrets'] ?? 0) === 0);
    assert.ok(steady.length > 0, `cycles: ${seen.map((c) => JSON.stringify(c.byRoute)).join(' ')}`);
    for (const c of steady) assert.equal(c.requests, 2);
  });
});
