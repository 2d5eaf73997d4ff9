/**
 * What earlier cycles learnt about each observed certificate's versions, so that a poll in which nothing changed
 * costs at most one vault request per certificate whatever its version history, and less where one request of the
 * vault's secret listing (GET /secrets, 25 secrets a page, no values) answers for several certificates.
 *
 * Per certificate (not pinned), each cycle:
 * - no memory (first sight, a restart) or its periodic refresh is due: the full versions
 *   listing, exactly as without memory (certificateSync.ts), and what it saw is remembered;
 * - otherwise the vault is asked whether the current version is still the one remembered, by whichever is fewer
 *   requests for the vault: its secret listing (pages learnt from the last listing) or one GET of the latest version
 *   per certificate. Unchanged: the remembered versions are planned against `now` (so a not-before or an expiry that
 *   is reached changes the wanted set without a request); changed or unknown: the full listing for that certificate.
 *
 * The memory is of the vault as last listed, whatever became of applying it: a cycle that failed to download or
 * install a version retries that at the next one without listing again (the planner compares with the store).
 *
 * What no cheap request shows: a change to an OLDER version (disabled, enabled again), or a new version whose every
 * attribute (created and updated to the second, not-before, expiry, enabled, content type) equals the current one's.
 * Without memory every poll listed every version, so such a change was acted on at the next poll; here it is acted on
 * at the certificate's next full refresh, every FULL_REFRESH_CYCLES cycles (staggered per certificate so a cycle's
 * cost stays level). An identity that may `get` but not `list` gets the latest version only, as before, and is asked
 * to list again at each refresh (a permission granted since then takes effect there).
 */
import { KvvmError } from '../errors.js';
import type { ObservedCertificate } from '../settings/config.js';
import type { FetchedSecret, SecretListEntry, SecretVersionInfo, VaultReader } from '../vault/types.js';

/** Every certificate's versions are listed in full at least once in this many cycles (bench/README.md, figure 1b). */
export const FULL_REFRESH_CYCLES = 12;

/**
 * A vault's listing size (and a refused listing) is learnt again this often. A size that grew is noticed at once (the
 * listing stops at its budget); only a vault that shrank, or a `list` permission granted, waits for this.
 */
const VAULT_RELEARN_CYCLES = 10 * FULL_REFRESH_CYCLES;

/** Secrets per page of Key Vault's secret listing (its default and largest `maxresults`). */
const LISTING_PAGE_SIZE = 25;

type Attributes = Omit<SecretVersionInfo, 'version'>;

/** What the secret listing shows of a secret's current version. */
function fingerprint(a: Attributes): string {
  const t = (d: Date | undefined): string => (d === undefined ? '-' : String(d.getTime()));
  return `${a.enabled}|${t(a.createdOn)}|${t(a.updatedOn)}|${t(a.notBefore)}|${t(a.expiresOn)}|${a.contentType ?? ''}`;
}

interface Remembered {
  /** The enabled versions that can still be wanted, newest first (see `stillWantable`). */
  candidates: SecretVersionInfo[];
  /** The current version (the newest created; several when their creation times tie). */
  current: { version: string; print: string; enabled: boolean }[];
  /** The identity may not list: only the latest version is fetched (certificateSync.ts's fallback). */
  listForbidden: boolean;
  /** The cycle at which the versions are listed in full again. */
  refreshAt: number;
}

interface VaultMemo {
  /** Pages of the vault's secret listing, learnt from the last one (a lower bound when it stopped early). */
  pages?: number;
  listForbidden?: boolean;
}

/** How a certificate's versions are known this cycle. */
type KnownVersions =
  | { kind: 'unchanged'; list: SecretVersionInfo[]; prefetched?: FetchedSecret }
  | { kind: 'latest-only'; latest: FetchedSecret }
  | { kind: 'list-in-full'; prefetched?: FetchedSecret };

/** One cycle's view of the memory (certificateSync.ts). */
export interface PollCycleMemory {
  /** True when this cycle lists the certificate's versions in full whatever the vault's listing says (first sight, refresh due, pinned). */
  listsInFull(cert: ObservedCertificate): boolean;
  /**
   * Resolves when the certificate's work may send its own requests: at once, unless its vault's secret listing runs
   * this cycle and is expected to take several pages, then once that listing's first page is in (or the listing has
   * ended). See `startListing`.
   */
  ready(cert: ObservedCertificate): Promise<void>;
  /**
   * For a certificate that lists in full (`listsInFull`) in a vault whose secret listing runs this cycle: how many
   * such certificates of that vault should be synced at once, so that their requests are spread over the listing's
   * pages instead of arriving together beside its first pages (the listing bounds the cycle either way); undefined
   * when no listing of several pages runs in its vault.
   */
  pace(cert: ObservedCertificate): number | undefined;
  check(cert: ObservedCertificate): Promise<KnownVersions>;
  /** After a full listing (or the latest-only fallback): what the vault holds now. */
  remember(cert: ObservedCertificate, versions: readonly SecretVersionInfo[], listForbidden: boolean): void;
}

export interface PollMemory {
  beginCycle(certs: readonly ObservedCertificate[], vault: VaultReader, now: Date): PollCycleMemory;
  /** Everything the memory holds, as plain JSON: a worker that exits between cycles hands it to the next one. */
  snapshot(): PollMemorySnapshot;
}

/** Dates as milliseconds; no secret values (versions, attributes and content types only). */
export interface PollMemorySnapshot {
  cycle: number;
  certificates: Array<{ key: string; candidates: SnapshotVersion[]; current: Remembered['current']; listForbidden: boolean; refreshAt: number }>;
  vaults: Array<{ key: string; pages?: number; listForbidden?: boolean }>;
}

type SnapshotVersion = Omit<SecretVersionInfo, 'createdOn' | 'updatedOn' | 'notBefore' | 'expiresOn'> & {
  createdOn?: number;
  updatedOn?: number;
  notBefore?: number;
  expiresOn?: number;
};

const DATE_FIELDS = ['createdOn', 'updatedOn', 'notBefore', 'expiresOn'] as const;

function versionToSnapshot(v: SecretVersionInfo): SnapshotVersion {
  const out: SnapshotVersion = { version: v.version, enabled: v.enabled, contentType: v.contentType, managed: v.managed };
  for (const f of DATE_FIELDS) {
    const d = v[f];
    if (d !== undefined) out[f] = d.getTime();
  }
  return out;
}

function versionFromSnapshot(v: SnapshotVersion): SecretVersionInfo {
  const date = (ms: unknown): Date | undefined => (typeof ms === 'number' && Number.isFinite(ms) ? new Date(ms) : undefined);
  if (typeof v.version !== 'string' || typeof v.enabled !== 'boolean') throw new TypeError('bad version in the poll memory snapshot');
  return {
    version: v.version,
    enabled: v.enabled,
    contentType: typeof v.contentType === 'string' ? v.contentType : undefined,
    managed: v.managed === true,
    createdOn: date(v.createdOn),
    updatedOn: date(v.updatedOn),
    notBefore: date(v.notBefore),
    expiresOn: date(v.expiresOn),
  };
}

function certKey(cert: ObservedCertificate): string {
  return `${cert.vaultUrl.toLowerCase()}|${cert.secretName.toLowerCase()}`;
}

/** Spreads first refreshes over the period, so certificates first seen together are not refreshed together. */
function stagger(name: string): number {
  let h = 0;
  for (const ch of name.toLowerCase()) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % FULL_REFRESH_CYCLES;
}

/**
 * The enabled versions newest first, up to and including the `keep`-th one already valid: a version behind that
 * can never be wanted again (validity only begins), unless an older version is enabled, which a refresh sees.
 */
function stillWantable(versions: readonly SecretVersionInfo[], keep: number, now: Date): SecretVersionInfo[] {
  const sorted = versions.filter((v) => v.enabled).sort((a, b) => (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0));
  const out: SecretVersionInfo[] = [];
  let valid = 0;
  for (const v of sorted) {
    if (valid >= keep) break;
    out.push(v);
    if (v.notBefore === undefined || v.notBefore.getTime() <= now.getTime()) valid += 1;
  }
  return out;
}

type ListingAnswer = { entry: SecretListEntry } | { absent: true } | { unavailable: true };

interface Listing {
  /** A certificate's entry, as soon as the page holding it is in (certificates wait for their own entry, not for the whole listing). */
  entryFor(name: string): Promise<ListingAnswer>;
  /**
   * Resolves once the first page is in, or the listing has ended (failed, refused, stopped): until then the cycle's
   * other requests to this vault wait. The pages are a chain, so the listing bounds the cycle, and its first request
   * is the one that must not queue: a poll starts with no open connection to the vault (it comes minutes after the
   * last), so every request sent at once opens its own TLS connection, and the listing's first page waited behind
   * all of those handshakes, on this machine and on the vault (bench figure 1, 16 workers, dev vault with 20 ms
   * latency, loaded 2-core machine: first page 57-270 ms after the cycle began; going first, 31-137 ms). The others
   * then open their connections while the second page is on its way, resuming the session the listing's connection
   * left. A listing that fails opens the gate when it gives up; the cycle waited for it then anyway (its certificates
   * fall back to their own requests).
   */
  headStart: Promise<void>;
}

/** One vault's secret listing in this cycle. */
function startListing(vault: VaultReader, vaultUrl: string, wanted: ReadonlySet<string>, memo: VaultMemo): Listing {
  const seen = new Map<string, SecretListEntry>();
  const waiting = new Map<string, ((a: ListingAnswer) => void)[]>();
  let outcome: 'running' | 'complete' | 'stopped' = 'running';
  let openGate: () => void = () => undefined;
  const headStart = new Promise<void>((resolve) => (openGate = resolve));
  const settle = (): void => {
    openGate();
    for (const [name, resolvers] of waiting) {
      const entry = seen.get(name);
      const answer: ListingAnswer = entry ? { entry } : outcome === 'complete' ? { absent: true } : { unavailable: true };
      for (const resolve of resolvers) resolve(answer);
    }
    waiting.clear();
  };
  const budget = wanted.size;
  // Wanted names not seen yet (counted down as pages come: each page's check is the chain's critical path).
  let missing = wanted.size;
  const listing = vault.listSecrets;
  if (!listing) {
    outcome = 'stopped';
  } else {
    listing
      .call(
        vault,
        vaultUrl,
        (entries) => {
          const ready: (() => void)[] = [];
          for (const e of entries) {
            const name = e.name.toLowerCase();
            if (!seen.has(name) && wanted.has(name)) missing -= 1;
            seen.set(name, e);
            for (const resolve of waiting.get(name) ?? []) ready.push(() => resolve({ entry: e }));
            waiting.delete(name);
          }
          // The pages are a chain (each names the next): the next page's request goes out first, and the certificates
          // this page answers continue after it (resolved at once, their work ran before the request was sent); so do
          // the cycle's other requests to this vault after the first page (headStart).
          ready.push(openGate);
          setImmediate(() => ready.forEach((go) => go()));
          return missing > 0;
        },
        budget,
      )
      .then(
        (result) => {
          outcome = result.complete ? 'complete' : 'stopped';
          // Complete: the exact count. Stopped with entries missing: the budget ran out, so there are more pages.
          memo.pages = result.complete ? result.pages : missing > 0 ? result.pages + 1 : Math.max(memo.pages ?? 0, result.pages);
          settle();
        },
        (err: unknown) => {
          if (err instanceof KvvmError && err.reason === 'forbidden') memo.listForbidden = true;
          outcome = 'stopped';
          settle();
        },
      );
  }
  return {
    headStart,
    entryFor(name) {
      const key = name.toLowerCase();
      const entry = seen.get(key);
      if (entry) return Promise.resolve({ entry });
      if (outcome !== 'running') return Promise.resolve(outcome === 'complete' ? { absent: true } : { unavailable: true });
      return new Promise((resolve) => waiting.set(key, [...(waiting.get(key) ?? []), resolve]));
    },
  };
}

/**
 * `from` is a snapshot an earlier process took (a worker that rested between cycles): the memory goes on from it
 * as if the process had not changed. A snapshot that does not parse throws; the caller starts without one.
 */
export function createPollMemory(keep: number, from?: PollMemorySnapshot): PollMemory {
  const remembered = new Map<string, Remembered>();
  let vaults = new Map<string, VaultMemo>();
  let cycle = 0;
  if (from !== undefined) {
    if (!Number.isSafeInteger(from.cycle) || !Array.isArray(from.certificates) || !Array.isArray(from.vaults)) throw new TypeError('bad poll memory snapshot');
    cycle = from.cycle;
    for (const c of from.certificates) {
      if (typeof c.key !== 'string' || !Array.isArray(c.candidates) || !Array.isArray(c.current) || !Number.isSafeInteger(c.refreshAt)) {
        throw new TypeError('bad certificate in the poll memory snapshot');
      }
      const current = c.current.map((x) => {
        if (typeof x.version !== 'string' || typeof x.print !== 'string' || typeof x.enabled !== 'boolean') throw new TypeError('bad current version in the poll memory snapshot');
        return { version: x.version, print: x.print, enabled: x.enabled };
      });
      remembered.set(c.key, { candidates: c.candidates.map(versionFromSnapshot), current, listForbidden: c.listForbidden === true, refreshAt: c.refreshAt });
    }
    for (const v of from.vaults) {
      if (typeof v.key !== 'string') throw new TypeError('bad vault in the poll memory snapshot');
      const memo: VaultMemo = {};
      if (Number.isSafeInteger(v.pages)) memo.pages = v.pages as number;
      if (v.listForbidden === true) memo.listForbidden = true;
      vaults.set(v.key, memo);
    }
  }

  return {
    snapshot() {
      return {
        cycle,
        certificates: [...remembered].map(([key, m]) => ({
          key,
          candidates: m.candidates.map(versionToSnapshot),
          current: m.current.map((c) => ({ ...c })),
          listForbidden: m.listForbidden,
          refreshAt: m.refreshAt,
        })),
        vaults: [...vaults].map(([key, memo]) => ({ key, ...memo })),
      };
    },
    beginCycle(certs, vault, now) {
      cycle += 1;
      if (cycle % VAULT_RELEARN_CYCLES === 0) vaults = new Map();
      const fresh = (cert: ObservedCertificate): Remembered | undefined => {
        const m = cert.pinnedVersion === undefined ? remembered.get(certKey(cert)) : undefined;
        return m && cycle < m.refreshAt ? m : undefined;
      };
      // Per vault: the certificates whose current version can be checked, and the cheaper way to check them.
      const byVault = new Map<string, Set<string>>();
      for (const cert of certs) {
        const m = fresh(cert);
        if (!m || m.listForbidden) continue;
        const key = cert.vaultUrl.toLowerCase();
        byVault.set(key, (byVault.get(key) ?? new Set()).add(cert.secretName.toLowerCase()));
      }
      const listings = new Map<string, Listing>();
      /** The vaults whose listing is expected to take several pages (a chain that bounds the cycle): its pages. */
      const chains = new Map<string, number>();
      for (const [key, names] of byVault) {
        const memo = vaults.get(key) ?? {};
        vaults.set(key, memo);
        // An unknown size is tried (within a budget of one page per certificate); ties go to the listing, which
        // carries no secret values.
        if (vault.listSecrets && !memo.listForbidden && (memo.pages ?? 1) <= names.size) {
          const url = certs.find((c) => c.vaultUrl.toLowerCase() === key)?.vaultUrl ?? key;
          listings.set(key, startListing(vault, url, names, memo));
          // Not known before its first listing: at least one page per LISTING_PAGE_SIZE observed names.
          const pages = Math.max(memo.pages ?? 1, Math.ceil(names.size / LISTING_PAGE_SIZE));
          // A listing of one page is no chain: the others go beside it, as one round trip is all it takes.
          if (pages >= 2) chains.set(key, pages);
        }
      }
      // Per vault with a listing: its certificates that need requests of their own this cycle.
      const ownRequests = new Map<string, number>();
      for (const cert of certs) {
        const key = cert.vaultUrl.toLowerCase();
        if (chains.has(key) && !fresh(cert)) ownRequests.set(key, (ownRequests.get(key) ?? 0) + 1);
      }

      async function latestMatches(cert: ObservedCertificate, m: Remembered): Promise<KnownVersions> {
        // Key Vault refuses a GET of a disabled version: the full listing is the one request that can answer.
        if (m.current.some((c) => !c.enabled)) return { kind: 'list-in-full' };
        let latest: FetchedSecret;
        try {
          latest = await vault.getSecret(cert.vaultUrl, cert.secretName);
        } catch {
          return { kind: 'list-in-full' }; // the full listing reports what is wrong, as without memory
        }
        const same = m.current.some((c) => c.version === latest.version && c.print === fingerprint(latest));
        return same ? { kind: 'unchanged', list: m.candidates, prefetched: latest } : { kind: 'list-in-full', prefetched: latest };
      }

      const started = Promise.resolve();
      return {
        listsInFull: (cert) => fresh(cert) === undefined,
        ready(cert) {
          const key = cert.vaultUrl.toLowerCase();
          return chains.has(key) ? (listings.get(key)?.headStart ?? started) : started;
        },
        pace(cert) {
          const key = cert.vaultUrl.toLowerCase();
          const pages = chains.get(key);
          if (pages === undefined) return undefined;
          // Each takes about one round trip (a versions listing is one page for almost every certificate): spread
          // over half the listing's pages, they are done well before its last page.
          return Math.max(1, Math.ceil((2 * (ownRequests.get(key) ?? 0)) / pages));
        },
        async check(cert) {
          const m = fresh(cert);
          if (!m) return { kind: 'list-in-full' };
          if (m.listForbidden) return { kind: 'latest-only', latest: await vault.getSecret(cert.vaultUrl, cert.secretName) };
          const listing = listings.get(cert.vaultUrl.toLowerCase());
          if (!listing) return latestMatches(cert, m);
          const answer = await listing.entryFor(cert.secretName);
          if ('unavailable' in answer) return latestMatches(cert, m);
          if ('absent' in answer) return { kind: 'list-in-full' };
          const print = fingerprint(answer.entry);
          return m.current.some((c) => c.print === print) ? { kind: 'unchanged', list: m.candidates } : { kind: 'list-in-full' };
        },
        remember(cert, versions, listForbidden) {
          if (cert.pinnedVersion !== undefined) return;
          const key = certKey(cert);
          const newest = Math.max(...versions.map((v) => v.createdOn?.getTime() ?? Number.MIN_SAFE_INTEGER));
          const current = versions
            .filter((v) => (v.createdOn?.getTime() ?? Number.MIN_SAFE_INTEGER) === newest)
            .map((v) => ({ version: v.version, print: fingerprint(v), enabled: v.enabled }));
          const refreshAt = remembered.has(key) ? cycle + FULL_REFRESH_CYCLES : cycle + 1 + stagger(cert.secretName);
          remembered.set(key, { candidates: stillWantable(versions, keep, now), current, listForbidden, refreshAt });
        },
      };
    },
  };
}
