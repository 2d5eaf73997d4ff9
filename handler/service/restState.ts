/**
 * What a resting worker (pollLoop.ts, restartLoop.ts) hands to the next one: the poll loop's state and the poll
 * memory (so an unchanged certificate still costs at most one vault request after the restart), for one sequence
 * number, in a private file; then the wake record the supervisor sleeps on. No secret values: versions,
 * attributes, counts and times only (the memory's snapshot copies named fields, never a fetched value).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PollMemorySnapshot } from '../engine/pollMemory.js';
import { writeFileAtomic } from '../protocol/atomicFile.js';
import type { PollLoopState } from './pollLoop.js';

export interface RestState {
  seq: number;
  loop: PollLoopState;
  memory: PollMemorySnapshot;
  /** What the store parsed of its installed files (stores/pemStore.ts), so an unchanged file is not parsed again. */
  store?: unknown;
}

export const REST_STATE_FILE = 'service-rest.json';

/** The state saved for `seq`, or undefined (missing, unreadable, another sequence number's, or not this format). */
export async function readRestState(file: string, seq: number): Promise<RestState | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const state = parsed as Partial<RestState>;
  if (state.seq !== seq || typeof state.loop !== 'object' || state.loop === null || typeof state.memory !== 'object' || state.memory === null) return undefined;
  const loop = state.loop;
  if (!Number.isSafeInteger(loop.attempt) || typeof loop.initialDone !== 'boolean' || typeof loop.provisioned !== 'boolean') return undefined;
  if (typeof loop.lastPhase !== 'object' || loop.lastPhase === null || !['starting', 'retrying', 'gave-up', 'polling'].includes(loop.lastPhase.kind)) return undefined;
  return state as RestState;
}

/** Saves the state (private from its first byte), then the wake record `<delay ms> <ISO time>`: the record last, so a record always has its state. */
export async function saveRest(o: { stateFile: string; wakeFile: string; state: RestState; delayMs: number; now: Date }): Promise<Date> {
  await mkdir(dirname(o.stateFile), { recursive: true, mode: 0o700 });
  await writeFileAtomic(o.stateFile, JSON.stringify(o.state), { mode: 0o600 });
  const delayMs = Math.max(0, Math.round(o.delayMs));
  const at = new Date(o.now.getTime() + delayMs);
  await writeFileAtomic(o.wakeFile, `${delayMs} ${at.toISOString()}\n`, { mode: 0o644 });
  return at;
}
