/**
 * The vault's secret listing bounds a poll (its pages are a chain), so it goes first: with the poll memory
 * (handler/engine/pollMemory.ts) and a listing running, no other request of the cycle to that vault leaves before the
 * listing's first page is in; the certificates listed in full beside it run on a few workers of their own (pace), not
 * on all of the cycle's at once; and a listing that fails still lets them sync. The real SDK-backed reader against the
 * dev vault, the real engine and PEM store; the reader is wrapped only to record when each call starts and ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCa, issueCertificate, toPemSecret } from '../handler/devvault/certFactory.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { makeChainCheck } from '../handler/commands/service.js';
import type { CertificateSyncDeps, SyncLogger } from '../handler/engine/certificateSync.js';
import { VERSIONS_KEPT } from '../handler/engine/planner.js';
import { createPollMemory } from '../handler/engine/pollMemory.js';
import { runSyncCycle } from '../handler/engine/syncCycle.js';
import { parseSettings } from '../handler/settings/index.js';
import type { ObservedCertificate } from '../handler/settings/config.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import type { VaultReader } from '../handler/vault/types.js';
import { startTestVault, type TestVault } from './helpers/devVault.js';

let tv: TestVault;
let root: string;
let pem: string;

const quiet: SyncLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const CONCURRENCY = 8;

before(async () => {
  tv = await startTestVault();
  root = mkdtempSync(join(tmpdir(), 'kvvm-listingfirst-'));
  const ca = createCa('listing first root');
  const leaf = issueCertificate({ issuer: ca, subjectCn: 'listing.test', serverAuth: false });
  pem = toPemSecret(leaf.keyPem, [leaf.certPem]);
  // 60 secrets known from an earlier poll and 12 new ones: 72 secrets, three pages of the listing.
  for (let i = 0; i < 60; i++) tv.vault.setSecret(`known-${String(i).padStart(2, '0')}`, pem, { contentType: 'application/x-pem-file' });
  for (let i = 0; i < 12; i++) tv.vault.setSecret(`new-${String(i).padStart(2, '0')}`, pem, { contentType: 'application/x-pem-file' });
});

after(async () => {
  await tv.close();
  rmSync(root, { recursive: true, force: true });
});

let dirs = 0;
function observe(names: readonly string[]): ObservedCertificate[] {
  const storeDir = join(root, `store-${(dirs += 1)}`);
  const parsed = parseSettings(
    {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: names.map((n) => ({ url: `${tv.vault.vaultUrl}/secrets/${n}`, certificateStoreLocation: storeDir })),
      },
    },
    { platform: 'linux', env: tv.env },
  );
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return parsed.config.observedCertificates;
}

interface Recorded {
  reader: VaultReader;
  /** 'page' for each listing page handed to the engine, 'listing ended', and 'start <op> <name>' for other calls. */
  events: string[];
  /** The most calls other than the listing that were in progress at once. */
  mostAtOnce(): number;
}

function recording(inner: VaultReader): Recorded {
  const events: string[] = [];
  let now = 0;
  let most = 0;
  const counted = async <T>(label: string, call: () => Promise<T>): Promise<T> => {
    events.push(`start ${label}`);
    now += 1;
    most = Math.max(most, now);
    try {
      return await call();
    } finally {
      now -= 1;
    }
  };
  const reader: VaultReader = {
    getSecret: (url, name, version) => counted(`get ${name}`, () => inner.getSecret(url, name, version)),
    listVersions: (url, name) => counted(`versions ${name}`, () => inner.listVersions(url, name)),
    listSecrets: async (url, onPage, maxPages) => {
      try {
        return await (inner.listSecrets as NonNullable<VaultReader['listSecrets']>).call(
          inner,
          url,
          (entries) => {
            events.push('page');
            return onPage(entries);
          },
          maxPages,
        );
      } finally {
        events.push('listing ended');
      }
    },
  };
  return { reader, events, mostAtOnce: () => most };
}

const known = Array.from({ length: 60 }, (_, i) => `known-${String(i).padStart(2, '0')}`);
const fresh = Array.from({ length: 12 }, (_, i) => `new-${String(i).padStart(2, '0')}`);

/** Syncs the known certificates once (so the memory has them), then returns deps for a cycle over known + new ones. */
async function afterFirstPoll(
  knownNames: readonly string[] = known,
  freshNames: readonly string[] = fresh,
): Promise<{ deps: CertificateSyncDeps; recorded: Recorded; certs: ObservedCertificate[] }> {
  const certs = observe([...knownNames, ...freshNames]);
  const deps: CertificateSyncDeps = {
    vault: createVaultReader(tv.readerOptions()),
    store: createPemStore({}),
    parse: parseCertificateSecret,
    checkChain: makeChainCheck([]),
    now: () => new Date(),
    log: quiet,
    memory: createPollMemory(VERSIONS_KEPT),
  };
  const first = await runSyncCycle(certs.slice(0, knownNames.length), deps, { concurrency: CONCURRENCY });
  assert.ok(
    first.every((r) => r.state === 'installed'),
    first.map((r) => r.message ?? r.state).join('; '),
  );
  const recorded = recording(deps.vault);
  return { deps: { ...deps, vault: recorded.reader }, recorded, certs };
}

describe('the secret listing goes first', () => {
  test('no other request to the vault leaves before its first page; those listed in full run on half the workers at most', async () => {
    const { deps, recorded, certs } = await afterFirstPoll();
    const results = await runSyncCycle(certs, deps, { concurrency: CONCURRENCY });
    assert.equal(results.length, certs.length);
    assert.ok(
      results.every((r) => r.state === (fresh.includes(r.cert.secretName) ? 'installed' : 'unchanged')),
      results.map((r) => `${r.cert.secretName}:${r.state}`).join(' '),
    );
    const firstPage = recorded.events.indexOf('page');
    const firstOwn = recorded.events.findIndex((e) => e.startsWith('start '));
    assert.ok(firstPage >= 0, `the listing ran: ${recorded.events.join(', ')}`);
    assert.ok(firstOwn > firstPage, `first own request after the first page: ${recorded.events.slice(0, 6).join(', ')}`);
    // Every new certificate lists its versions in full (first sight), beside the listing, on its own workers.
    for (const name of fresh) assert.ok(recorded.events.includes(`start versions ${name}`), name);
    assert.ok(recorded.mostAtOnce() <= CONCURRENCY / 2, `at most ${CONCURRENCY / 2} at once, saw ${recorded.mostAtOnce()}`);
  });

  test('a listing expected to take one page is no chain: the others go beside it', async () => {
    // Three known certificates: one page is all the listing is expected to need (the vault's size is not known yet).
    const { deps, recorded, certs } = await afterFirstPoll(known.slice(0, 3), fresh.slice(0, 1));
    const results = await runSyncCycle(certs, deps, { concurrency: CONCURRENCY });
    assert.ok(
      results.every((r) => r.state === (r.cert.secretName === fresh[0] ? 'installed' : 'unchanged')),
      results.map((r) => `${r.cert.secretName}:${r.state}`).join(' '),
    );
    const firstPage = recorded.events.indexOf('page');
    assert.ok(firstPage >= 0, recorded.events.join(', '));
    assert.ok(recorded.events.indexOf(`start versions ${fresh[0]}`) < firstPage, recorded.events.slice(0, 4).join(', '));
  });

  test('a listing that fails lets the others go: every certificate syncs by its own requests', { timeout: 60_000 }, async () => {
    const { deps, recorded, certs } = await afterFirstPoll();
    // Every attempt of the listing's first page fails (the reader's retries included; its sleeps are not waited).
    tv.vault.injectFaults({ kind: 'status', status: 500, route: 'listSecrets', count: 1000 });
    try {
      const results = await runSyncCycle(certs, deps, { concurrency: CONCURRENCY });
      assert.ok(
        results.every((r) => r.state === (fresh.includes(r.cert.secretName) ? 'installed' : 'unchanged')),
        results.map((r) => `${r.cert.secretName}:${r.state}:${r.message ?? ''}`).join(' '),
      );
      assert.ok(!recorded.events.includes('page'));
      const ended = recorded.events.indexOf('listing ended');
      assert.ok(ended >= 0 && ended < recorded.events.findIndex((e) => e.startsWith('start ')), recorded.events.slice(0, 4).join(', '));
      // The known certificates ask the vault themselves: one GET of the latest version each (or the full listing, for
      // those whose periodic refresh falls in this cycle).
      for (const name of known) assert.ok(recorded.events.includes(`start get ${name}`) || recorded.events.includes(`start versions ${name}`), name);
      assert.ok(known.filter((name) => recorded.events.includes(`start get ${name}`)).length > known.length / 2);
    } finally {
      tv.vault.clearFaults();
    }
  });
});
