import { readFileSync } from 'node:fs';
import { dirname, join, posix, resolve, win32 } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { KvvmError } from '../errors.js';
import { describeJsonError } from '../jsonError.js';
import { isNotFound } from './atomicFile.js';

/** What the agent tells the handler about its folders (HandlerEnvironment.json, element [0]). */
export interface HandlerEnvironment {
  name: string;
  version: string;
  logFolder: string;
  configFolder: string;
  statusFolder: string;
  heartbeatFile?: string;
  eventsFolder?: string;
  /** The folder holding HandlerEnvironment.json (the extension folder; mrseq lives here on Linux). */
  extensionFolder: string;
}

export interface FindHandlerEnvironmentOptions {
  env: Record<string, string | undefined>;
  execPath: string;
  /** process.argv[1]; `| undefined` so callers can pass it straight through under exactOptionalPropertyTypes. */
  scriptPath?: string | undefined;
  cwd: string;
  /** Extra attempts after the first; the agent may still be writing the file. Default 3. */
  retries?: number | undefined;
  sleep?: ((ms: number) => Promise<void>) | undefined;
}

const HANDLER_ENVIRONMENT_FILE = 'HandlerEnvironment.json';
const RETRY_DELAY_MS = 1000;

/**
 * Candidate folders, most authoritative first. The agent sets AZURE_GUEST_AGENT_EXTENSION_PATH for every command
 * and runs commands with cwd = the extension folder; the executable/script folders (and one up) cover a manual run
 * and the Windows layout. The script also gets two levels up because ours lives in <ext>/lib/handler/cli.js.
 */
function handlerEnvironmentCandidates(options: FindHandlerEnvironmentOptions): string[] {
  const folders: string[] = [];
  const extPath = options.env['AZURE_GUEST_AGENT_EXTENSION_PATH'];
  if (extPath) folders.push(resolve(extPath));
  folders.push(resolve(options.cwd));
  const execDir = dirname(resolve(options.execPath));
  folders.push(execDir, dirname(execDir));
  if (options.scriptPath) {
    const scriptDir = dirname(resolve(options.scriptPath));
    folders.push(scriptDir, dirname(scriptDir), dirname(dirname(scriptDir)));
  }
  return [...new Set(folders)];
}

type Attempt = { env: HandlerEnvironment } | { problem: string; file: string } | undefined;

/**
 * Find and parse HandlerEnvironment.json. The first candidate folder that HAS the file decides: a corrupt file
 * there is an error (after retries), not a reason to use some other folder's file.
 */
export async function findHandlerEnvironment(options: FindHandlerEnvironmentOptions): Promise<HandlerEnvironment> {
  const folders = handlerEnvironmentCandidates(options);
  const retries = options.retries ?? 3;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  let last: Attempt;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await sleep(RETRY_DELAY_MS);
    last = await tryFolders(folders);
    if (last && 'env' in last) return last.env;
  }
  if (last && 'problem' in last) {
    throw new KvvmError('handler-environment', `${last.file} is unusable: ${last.problem}. Folders searched: ${folders.join(', ')}.`, {
      fix: 'Reinstall the extension so the guest agent rewrites HandlerEnvironment.json.',
    });
  }
  throw new KvvmError('handler-environment', `${HANDLER_ENVIRONMENT_FILE} not found. Folders searched: ${folders.join(', ')}.`, {
    fix: 'Run kvvm through the Azure guest agent, or set AZURE_GUEST_AGENT_EXTENSION_PATH to the extension folder.',
  });
}

async function tryFolders(folders: string[]): Promise<Attempt> {
  for (const folder of folders) {
    const file = join(folder, HANDLER_ENVIRONMENT_FILE);
    let text: string;
    try {
      // Synchronous: a small file, read once per command; through fs/promises it is four thread-pool round trips.
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (isNotFound(err)) continue;
      return { problem: `cannot read it (${(err as Error).message})`, file };
    }
    const parsed = parseHandlerEnvironment(text, folder);
    return 'problem' in parsed ? { problem: parsed.problem, file } : parsed;
  }
  return undefined;
}

/** Parse the file's text; pure, so the catalogue of corrupt inputs is tested without the file system. */
export function parseHandlerEnvironment(text: string, extensionFolder: string): { env: HandlerEnvironment } | { problem: string } {
  // Windows agents write UTF-8 with a byte-order mark.
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed === '') return { problem: 'the file is empty' };
  let doc: unknown;
  try {
    doc = JSON.parse(trimmed);
  } catch {
    return { problem: `not valid JSON ${describeJsonError(trimmed)}` };
  }
  const first: unknown = Array.isArray(doc) ? doc[0] : undefined;
  if (!Array.isArray(doc)) return { problem: 'the document is not a JSON array' };
  if (!isObject(first)) return { problem: 'element [0] is missing or not an object' };
  if (typeof first['name'] !== 'string' || first['name'] === '') return { problem: '"name" is missing' };
  const version = normaliseVersion(first['version']);
  if (version === undefined) return { problem: `unsupported "version" ${JSON.stringify(first['version'])} (expected 1.0)` };
  const he = first['handlerEnvironment'];
  if (!isObject(he)) return { problem: '"handlerEnvironment" is missing or not an object' };
  const env: HandlerEnvironment = {
    name: first['name'],
    version,
    logFolder: '',
    configFolder: '',
    statusFolder: '',
    extensionFolder,
  };
  for (const key of ['logFolder', 'configFolder', 'statusFolder'] as const) {
    const value = he[key];
    if (typeof value !== 'string' || value === '') return { problem: `"handlerEnvironment.${key}" is missing` };
    // A relative folder would be resolved against whatever the working directory happens to be.
    if (!posix.isAbsolute(value) && !win32.isAbsolute(value)) return { problem: `"handlerEnvironment.${key}" ${JSON.stringify(value)} is not an absolute path` };
    env[key] = value;
  }
  if (typeof he['heartbeatFile'] === 'string' && he['heartbeatFile'] !== '') env.heartbeatFile = he['heartbeatFile'];
  // Older Linux agents only wrote the preview key.
  const events = typeof he['eventsFolder'] === 'string' && he['eventsFolder'] !== '' ? he['eventsFolder'] : he['eventsFolder_preview'];
  if (typeof events === 'string' && events !== '') env.eventsFolder = events;
  return { env };
}

/** The Linux agent writes the number 1.0 (serialised by Python as 1.0); Windows has been seen writing "1". */
function normaliseVersion(value: unknown): string | undefined {
  if (typeof value === 'number' && value >= 1 && value < 2) return '1.0';
  if (typeof value === 'string' && /^1(\.\d+)?$/.test(value.trim())) return '1.0';
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface HandlerVersion {
  version: string;
  source: 'environment' | 'folder' | 'package';
}

const VERSION_TEXT = /^\d{1,6}(?:\.\d{1,9}){0,3}$/;

/**
 * The handler's own version, as the agent gives it: AZURE_GUEST_AGENT_EXTENSION_VERSION (set for every command),
 * else the extension folder name — `<Publisher>.<Type>-<version>` on Linux (/var/lib/waagent/...),
 * `<Publisher>.<Type>\<version>` on Windows (C:\Packages\Plugins\...) — else the version the package was
 * stamped with. A value that is not a dotted version is skipped, not guessed at.
 */
export function detectHandlerVersion(input: { env: Record<string, string | undefined>; extensionFolder: string; packagedVersion: () => string }): HandlerVersion {
  const fromEnv = input.env['AZURE_GUEST_AGENT_EXTENSION_VERSION']?.trim();
  if (fromEnv !== undefined && VERSION_TEXT.test(fromEnv)) return { version: fromEnv, source: 'environment' };
  const fromFolder = versionFromExtensionFolder(input.extensionFolder);
  if (fromFolder !== undefined) return { version: fromFolder, source: 'folder' };
  return { version: input.packagedVersion(), source: 'package' };
}

/** Both layouts, whatever the separator: the path may be a Windows one read on Linux (tests) or the reverse. */
export function versionFromExtensionFolder(folder: string): string | undefined {
  const parts = folder.split(/[\\/]+/).filter((p) => p !== '');
  const last = parts[parts.length - 1] ?? '';
  const linux = /^[A-Za-z][\w]*(?:\.[\w]+)+-(\d{1,6}(?:\.\d{1,9}){0,3})$/.exec(last);
  if (linux?.[1] !== undefined) return linux[1];
  const parent = parts[parts.length - 2] ?? '';
  if (VERSION_TEXT.test(last) && /^[A-Za-z][\w]*(?:\.[\w]+)+$/.test(parent)) return last;
  return undefined;
}
