import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KvvmError } from '../errors.js';
import { isNotFound, writeFileAtomic } from './atomicFile.js';

/** Handler-owned file (Linux: in the extension folder) holding the last sequence number enable applied. */
const MRSEQ_FILE = 'mrseq';

/** Single-config settings files only: `<digits>.settings`. The folder also holds HandlerState, HandlerStatus. */
const SETTINGS_FILE = /^(\d+)\.settings$/;
const DIGITS = /^\d+$/;

/**
 * The sequence number this command is for. The agent sets ConfigSequenceNumber for every command; without it
 * (a manual run, an old agent) the agent's own fallback applies: the settings file modified last, because
 * sequence numbers are not guaranteed to increase. Ties go to the highest number so the answer does not depend
 * on directory order. A malformed ConfigSequenceNumber is treated as absent rather than trusted.
 */
export async function resolveSequenceNumber(configFolder: string, env: Record<string, string | undefined>): Promise<number> {
  const fromEnv = env['ConfigSequenceNumber']?.trim();
  if (fromEnv !== undefined && DIGITS.test(fromEnv) && Number.isSafeInteger(Number(fromEnv))) return Number(fromEnv);

  let names: string[];
  try {
    names = await readdir(configFolder);
  } catch (err) {
    throw noSettings(configFolder, isNotFound(err) ? 'the folder does not exist' : `cannot list it (${(err as Error).message})`);
  }
  let best: { seq: number; mtimeMs: number } | undefined;
  for (const name of names) {
    const match = SETTINGS_FILE.exec(name);
    if (!match?.[1]) continue;
    const seq = Number(match[1]);
    if (!Number.isSafeInteger(seq)) continue;
    let info;
    try {
      info = await stat(join(configFolder, name));
    } catch {
      continue; // deleted between readdir and stat
    }
    if (!info.isFile()) continue;
    if (!best || info.mtimeMs > best.mtimeMs || (info.mtimeMs === best.mtimeMs && seq > best.seq)) {
      best = { seq, mtimeMs: info.mtimeMs };
    }
  }
  if (!best) throw noSettings(configFolder, 'it holds no <number>.settings file');
  return best.seq;
}

function noSettings(configFolder: string, why: string): KvvmError {
  return new KvvmError('no-settings', `No sequence number: ConfigSequenceNumber is not set and ${configFolder}: ${why}.`, {
    fix: 'Run kvvm through the Azure guest agent (it writes <seq>.settings and sets ConfigSequenceNumber), or set ConfigSequenceNumber.',
  });
}

/**
 * The last applied sequence number, or undefined when there is none or it cannot be trusted. Never throws:
 * a missing or damaged mrseq only means "apply the current settings again", which enable must tolerate anyway.
 */
export async function readMrseq(extensionFolder: string): Promise<number | undefined> {
  let text: string;
  try {
    text = readFileSync(join(extensionFolder, MRSEQ_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const trimmed = text.trim();
  if (!DIGITS.test(trimmed)) return undefined;
  const seq = Number(trimmed);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

export async function writeMrseq(extensionFolder: string, seq: number): Promise<void> {
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new KvvmError('mrseq-invalid', `Refusing to record sequence number ${String(seq)}: not a non-negative integer.`);
  }
  await writeFileAtomic(join(extensionFolder, MRSEQ_FILE), String(seq));
}

/**
 * Records `seq` as applied only if it is newer than what is recorded: mrseq never moves backwards, whoever calls
 * (enable holds the command lock around read-and-advance; this check is the last line). Returns what mrseq holds.
 */
export async function advanceMrseq(extensionFolder: string, seq: number): Promise<number> {
  const current = await readMrseq(extensionFolder);
  if (current !== undefined && current >= seq) return current;
  await writeMrseq(extensionFolder, seq);
  return seq;
}
