import { readlinkSync, statSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { finalNameOfTemp } from './pemFiles.js';
import type { DirEffect } from './safeWrite.js';
import { readDirectoryNames } from './storeDirectory.js';

/**
 * What a shared PEM store directory holds, grouped by certificate, so that one certificate's list or install
 * costs the same in a directory of ten entries and in one of twenty thousand (issue 12's scaling curve: reading a
 * 20,000-entry directory takes ~30 ms, and reading it per install made installing N certificates quadratic).
 *
 * The index comes from one readdir(2) and then follows the directory in two ways:
 *  - **changes made through `change()`** (every rename, unlink, temp file and link the store makes) are applied to
 *    the index, with a stat(2) of the directory before and after: the directory's mtime/ctime before must be the
 *    index's (or some other process changed it, and the index is dropped), and after it becomes the index's. A
 *    change and its two stats are synchronous calls (safeWrite.ts says why), so no other change of this process
 *    can come between them;
 *  - **any other change** gives the directory another mtime/ctime, so the next `get()` reads it again.
 * Timestamps have a granularity (a clock tick on kernels without fine-grained "multigrain" timestamps), so an
 * index is fully trusted only when it was taken more than RACY_WINDOW after the directory's last change (git's
 * "racily clean" rule). Before that it is provisional: used for RACY_WINDOW after it was taken (the burst of a
 * cycle's own installs refreshes it with each change), and read again after at most PROVISIONAL_MAX_NS since the
 * last full read. A change by another process within the same timestamp tick as one of kvvm's therefore shows up
 * at the latest RACY_WINDOW after kvvm's changes stop or PROVISIONAL_MAX after the last full read.
 *
 * Removals never need the index to be exact: the store lstat(2)s every version file it lists.
 */

/** The names of one certificate ("<vault>.<secret>." prefix) and the kvvm temp files, at one moment. */
export interface DirIndex {
  /** Entries whose name starts with `prefix` (`<vault>.<secret>.`: version files in every format). */
  group(prefix: string): ReadonlySet<string>;
  /** `.kvvm-tmp.*` entries (temp files and links of every certificate; young ones may be in flight). */
  temps(): ReadonlySet<string>;
  /**
   * The target of the symbolic link `name` (null: none there), read once per index: a link cannot be changed in
   * place, only replaced (a change of the directory), so the index's validity covers it; a link the store put in
   * place through `change()` is known without reading it.
   */
  linkTarget(name: string): string | null;
}

export interface DirIndexes {
  /**
   * The index of `dir`, read in full (after `check()`, which must vouch that only trusted users write there) when it
   * cannot be trusted (callers at the same moment share that read); undefined when `dir` is not a directory.
   */
  get(dir: string, check: () => Promise<unknown>): Promise<DirIndex | undefined>;
  /**
   * Runs `op`, one synchronous change to the entries of `dir`, and records its effect. A full read of `dir` in
   * progress meanwhile is safe: it records the directory's times from before its readdir, so a change made during
   * the read makes the next get() read again.
   */
  change<T>(dir: string, op: () => T, effect: DirEffect): T;
  /** Drops what is known of `dir` (after changes made without `change()`). */
  forget(dir: string): void;
}

const RACY_WINDOW_NS = 1_000_000_000n;
const PROVISIONAL_MAX_NS = 30_000_000_000n;
/** Directories remembered at once (one per configured store location; bounded against odd settings). */
const MAX_DIRECTORIES = 64;

interface Index {
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** When mtimeNs/ctimeNs were taken. */
  takenAtNs: bigint;
  /** When the directory was last read in full. */
  readAtNs: bigint;
  groups: Map<string, Set<string>>;
  temps: Set<string>;
  links: Map<string, string | null>;
}

const EMPTY: ReadonlySet<string> = new Set();

export function createDirIndexes(): DirIndexes {
  const indexes = new Map<string, Index>();
  const locks = new Map<string, Promise<unknown>>();

  /** Runs `fn` after every earlier locked call for `dir` settled. */
  function locked<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    const before = locks.get(dir) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    locks.set(dir, tail);
    void tail.then(() => {
      if (locks.get(dir) === tail) locks.delete(dir);
    });
    return run;
  }

  function usable(index: Index | undefined, st: { mtimeNs: bigint; ctimeNs: bigint }): index is Index {
    if (index === undefined || index.mtimeNs !== st.mtimeNs || index.ctimeNs !== st.ctimeNs) return false;
    if (index.takenAtNs - st.mtimeNs > RACY_WINDOW_NS) return true;
    const now = nowNs();
    return now - index.takenAtNs < RACY_WINDOW_NS && now - index.readAtNs < PROVISIONAL_MAX_NS;
  }

  /** The directory's stat, or undefined when it is missing, not reachable or not a directory (listed as empty; an install reports why). */
  function statDir(dir: string): BigIntStats | undefined {
    try {
      const st = statSync(dir, { bigint: true });
      return st.isDirectory() ? st : undefined;
    } catch {
      return undefined;
    }
  }

  async function get(dir: string, check: () => Promise<unknown>): Promise<DirIndex | undefined> {
    const st = statDir(dir);
    if (st === undefined) return undefined;
    const cached = indexes.get(dir);
    if (usable(cached, st)) return view(dir, cached);
    return locked(dir, async () => {
      // Another caller may have read it (or a change refreshed it) while this one waited.
      const again = statDir(dir);
      if (again === undefined) return undefined;
      const current = indexes.get(dir);
      if (usable(current, again)) return view(dir, current);
      await check();
      const takenAtNs = nowNs();
      const names = await readDirectoryNames(dir, again.size);
      const index: Index = { mtimeNs: again.mtimeNs, ctimeNs: again.ctimeNs, takenAtNs, readAtNs: takenAtNs, groups: new Map(), temps: new Set(), links: new Map() };
      for (const name of names) add(index, name);
      if (!indexes.has(dir) && indexes.size >= MAX_DIRECTORIES) indexes.clear();
      indexes.set(dir, index);
      return view(dir, index);
    });
  }

  function change<T>(dir: string, op: () => T, effect: DirEffect): T {
    let index = indexes.get(dir);
    if (index !== undefined) {
      const before = statDir(dir);
      if (before === undefined || before.mtimeNs !== index.mtimeNs || before.ctimeNs !== index.ctimeNs) {
        indexes.delete(dir); // changed by someone else since: read again when next needed
        index = undefined;
      }
    }
    let result: T;
    try {
      result = op();
    } catch (err) {
      indexes.delete(dir); // what a failed call changed is not known
      throw err;
    }
    if (index !== undefined && indexes.get(dir) === index) {
      const after = statDir(dir);
      if (after === undefined) {
        indexes.delete(dir);
      } else {
        const { added = [], removed = [], link } = effect;
        for (const name of [...removed, ...added]) index.links.delete(name);
        for (const name of removed) remove(index, name);
        for (const name of added) add(index, name);
        if (link !== undefined) index.links.set(link.name, link.target);
        index.mtimeNs = after.mtimeNs;
        index.ctimeNs = after.ctimeNs;
        index.takenAtNs = nowNs();
      }
    }
    return result;
  }

  return { get, change, forget: (dir) => indexes.delete(dir) };
}

function view(dir: string, index: Index): DirIndex {
  return {
    group: (prefix) => index.groups.get(prefix) ?? EMPTY,
    temps: () => index.temps,
    linkTarget(name) {
      let target = index.links.get(name);
      if (target === undefined) {
        try {
          target = readlinkSync(join(dir, name));
        } catch {
          target = null;
        }
        index.links.set(name, target);
      }
      return target;
    },
  };
}

/** `<vault>.<secret>.` of a name (vault and secret names hold no dot), or undefined for names of no certificate. */
function groupOf(name: string): string | undefined {
  const first = name.indexOf('.');
  if (first <= 0) return undefined;
  const second = name.indexOf('.', first + 1);
  return second < 0 ? undefined : name.slice(0, second + 1);
}

function add(index: Index, name: string): void {
  if (finalNameOfTemp(name) !== undefined) {
    index.temps.add(name);
    return;
  }
  const group = groupOf(name);
  if (group === undefined) return;
  let names = index.groups.get(group);
  if (names === undefined) index.groups.set(group, (names = new Set()));
  names.add(name);
}

function remove(index: Index, name: string): void {
  if (index.temps.delete(name)) return;
  const group = groupOf(name);
  if (group === undefined) return;
  const names = index.groups.get(group);
  names?.delete(name);
  if (names?.size === 0) index.groups.delete(group);
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
