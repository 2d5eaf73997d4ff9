/**
 * What consumers did after a certificate changed (onChange command, moved bindings), kept per certificate while
 * the same version stays active, so a failed reload stays in the substatus of the unchanged polls that follow
 * instead of vanishing an hour later.
 *
 * With a file (the service's state folder), it also survives the worker: a change is recorded as pending BEFORE
 * its consumers run and cleared after, so a worker that dies in between (kill -9, reboot, disable mid-command)
 * leaves it pending, and the next worker's first cycle runs the consumers of that version (its `activated` comes
 * back from the file: the same KVVM_PREVIOUS_* variables). Without that, the new certificate would stay installed
 * and unused: the next cycle sees it unchanged and never reloads the server. The outcomes survive too, so a
 * failed reload is still reported after a restart. The file holds versions, thumbprints and the outcome
 * sentences the status file shows; nothing secret.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CertificateSyncResult, FollowUp, SyncLogger } from '../engine/certificateSync.js';
import type { ObservedCertificate } from '../settings/config.js';
import { isNotFound, writeFileAtomic } from '../protocol/atomicFile.js';

export interface FollowUpMemory {
  /**
   * Forgets what earlier changes of the certificates that changed in this cycle did and records the changes as
   * pending; puts `activated` back on a certificate whose change a previous worker left pending.
   */
  begin(results: CertificateSyncResult[]): Promise<void>;
  /** Adds `followUp` to what `result`'s active version has to show. */
  record(result: CertificateSyncResult, followUp: FollowUp): void;
  /** The consumers ran: clears pending, puts every certificate's remembered follow-ups on this cycle's results. */
  finish(results: CertificateSyncResult[]): Promise<void>;
}

interface Entry {
  version: string;
  /** The change whose consumers have not run to the end yet. */
  pending?: NonNullable<CertificateSyncResult['activated']>;
  followUps: FollowUp[];
}

/** More than any real file (10,000 certificates with a few sentences each); a larger one is not read. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

export interface FollowUpFile {
  path: string;
  log: SyncLogger;
}

export function createFollowUpMemory(file?: FollowUpFile): FollowUpMemory {
  const last = new Map<string, Entry>();
  let loaded = file === undefined;
  const keyOf = ({ target: t, vaultHost, secretName }: ObservedCertificate): string =>
    [...(t.platform === 'windows' ? [t.storeLocation, t.storeName] : [t.directory, t.linkName]), vaultHost, secretName].join('|');

  const load = async (): Promise<void> => {
    if (loaded || file === undefined) return;
    loaded = true;
    try {
      const text = await readFile(file.path, 'utf8');
      if (text.length > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
      for (const [key, entry] of Object.entries(parseEntries(JSON.parse(text)))) last.set(key, entry);
    } catch (err) {
      if (isNotFound(err)) return;
      file.log.warn(`cannot read ${file.path} (what consumers did before this service started): ${(err as Error).message}; starting without it`);
    }
  };

  const save = async (): Promise<void> => {
    if (file === undefined) return;
    try {
      // The state folder is made by install (0700); a service started without it (by hand, an old install) makes it.
      await mkdir(dirname(file.path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(file.path, JSON.stringify(Object.fromEntries(last)), { mode: 0o600 });
    } catch (err) {
      // Losing this file only loses the resume after a crash; the certificates are installed either way.
      file.log.warn(`cannot write ${file.path}: ${(err as Error).message}`);
    }
  };

  return {
    async begin(results) {
      await load();
      let changed = false;
      for (const r of results) {
        const key = keyOf(r.cert);
        if (r.activated && r.activeVersion !== undefined) {
          last.set(key, { version: r.activeVersion, pending: r.activated, followUps: [] });
          changed = true;
        } else if (r.activated) {
          last.delete(key);
        } else {
          const entry = last.get(key);
          // Left pending by a worker that stopped before its consumers ran: run them now, for the same change.
          if (entry?.pending && entry.version === r.activeVersion) {
            r.activated = entry.pending;
            entry.followUps = [];
          }
        }
      }
      if (changed) await save();
    },
    record(result, followUp) {
      const key = keyOf(result.cert);
      const entry = last.get(key) ?? { version: result.activeVersion ?? '', followUps: [] };
      entry.followUps.push(followUp);
      last.set(key, entry);
    },
    async finish(results) {
      let changed = false;
      for (const r of results) {
        const key = keyOf(r.cert);
        const remembered = last.get(key);
        if (!remembered) continue;
        if (remembered.version !== r.activeVersion) {
          last.delete(key);
          changed = true;
          continue;
        }
        if (remembered.pending && r.activated) {
          delete remembered.pending;
          changed = true;
        }
        r.followUps = [...remembered.followUps];
      }
      if (changed) await save();
    },
  };
}

/** The file's entries, shape-checked: anything unexpected is dropped, never trusted. */
function parseEntries(data: unknown): Record<string, Entry> {
  const out: Record<string, Entry> = {};
  if (typeof data !== 'object' || data === null) return out;
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    const v = value as Partial<Entry> | null;
    if (typeof v !== 'object' || v === null || typeof v.version !== 'string' || !Array.isArray(v.followUps)) continue;
    const followUps = v.followUps.filter((f): f is FollowUp => typeof f === 'object' && f !== null && typeof f.ok === 'boolean' && typeof f.text === 'string');
    const p = v.pending;
    const pending =
      typeof p === 'object' && p !== null
        ? {
            ...(typeof p.previousVersion === 'string' ? { previousVersion: p.previousVersion } : {}),
            ...(typeof p.previousThumbprint === 'string' ? { previousThumbprint: p.previousThumbprint } : {}),
          }
        : undefined;
    out[key] = { version: v.version, followUps, ...(pending ? { pending } : {}) };
  }
  return out;
}
