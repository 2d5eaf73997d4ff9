/**
 * Every KVVM_* environment variable kvvm reads, in one place: each is named, validated and turned into a typed
 * field of `Overrides` here, and nothing else in handler/ reads a KVVM_* variable (code that needs one is handed
 * the typed object). Two kinds:
 * - operator settings that have no place in the extension settings (extra vault DNS suffixes, another ARM endpoint);
 * - development/test overrides (a short poll interval, no jitter, ...) that the demo, tests and benchmarks use.
 * Commands log every variable that is set at start-up (name and value) so an override is never mistaken for a
 * setting, and `kvvm` refuses to start with one that does not parse (invalidOverrides).
 */
import { KvvmError } from './errors.js';

export type EnvLike = Readonly<Record<string, string | undefined>>;

export interface Overrides {
  /** KVVM_EXTRA_VAULT_SUFFIXES: more vault DNS suffixes tokens may go to, lower case ("localhost" = that host). */
  extraVaultSuffixes: string[];
  /** KVVM_ARM_ENDPOINT: another Resource Manager for `kvvm deploy/status` (validated there: https only). */
  armEndpoint: string | undefined;
  /** KVVM_ARM_CA_FILE: a PEM CA added to the trusted roots for the ARM endpoint. */
  armCaFile: string | undefined;
  /** KVVM_WAAGENT_DIR: where <THUMB>.crt/.prv of protected settings live (default: the extension folder's parent). */
  waagentDir: string | undefined;
  /** KVVM_DEV_POLL_INTERVAL_S: poll every N s instead of the settings' clamped 300-3600 s. */
  devPollIntervalS: number | undefined;
  /** KVVM_DEV_REST_MIN_S: the shortest wait between cycles that the POSIX worker rests through (exits) instead of sleeping. */
  devRestMinS: number | undefined;
  /** KVVM_NO_JITTER=1: no start-up/poll jitter. */
  noJitter: boolean;
  /** KVVM_RETRY_BASE_MS: a shorter initial-sync retry base. */
  retryBaseMs: number | undefined;
  /** KVVM_LOG_CONSOLE=1: the service also logs to stderr. */
  logConsole: boolean;
  /** KVVM_RESTART_BASE_MS: a shorter first restart delay after a crash (the restart policy scales with it). */
  restartBaseMs: number | undefined;
  /** KVVM_INIT=none: start the service supervisor detached even where systemd is PID 1. */
  initNone: boolean;
}

type Kind = 'operator' | 'development';

interface Variable {
  name: string;
  kind: Kind;
  /** Whether the Windows service needs it (carried into its launch file when set; see windowsServiceConfig.ts). */
  service: boolean;
  /** Returns an error sentence for a bad value, or applies it. */
  apply: (value: string, into: Overrides) => string | undefined;
}

const MAX_POLL_S = 86_400;
const MAX_RETRY_BASE_MS = 600_000;

function positiveNumber(value: string, max: number, unit: string): number | string {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > max) return `must be a number of ${unit} above 0 and at most ${max}`;
  return n;
}

function flag(value: string): boolean | string {
  if (value === '1') return true;
  if (value === '0' || value === '') return false;
  return 'must be 1 (on) or 0 (off)';
}

const OVERRIDE_VARIABLES: readonly Variable[] = [
  {
    name: 'KVVM_EXTRA_VAULT_SUFFIXES',
    kind: 'operator',
    service: true,
    apply: (v, o) => {
      const suffixes = v
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter((s) => s.length > 0);
      const bad = suffixes.find((s) => !/^\.?[a-z0-9-]+(?:\.[a-z0-9-]+)*$/.test(s));
      if (bad !== undefined) return `has "${bad}", which is not a DNS suffix (comma-separated, e.g. ".vault.local.azurestack.external,localhost")`;
      o.extraVaultSuffixes = suffixes;
      return undefined;
    },
  },
  { name: 'KVVM_ARM_ENDPOINT', kind: 'operator', service: false, apply: (v, o) => void (o.armEndpoint = v) },
  { name: 'KVVM_ARM_CA_FILE', kind: 'operator', service: false, apply: (v, o) => void (o.armCaFile = v) },
  { name: 'KVVM_WAAGENT_DIR', kind: 'development', service: true, apply: (v, o) => (v.trim() === '' ? 'must be a folder path' : void (o.waagentDir = v)) },
  {
    name: 'KVVM_DEV_POLL_INTERVAL_S',
    kind: 'development',
    service: true,
    apply: (v, o) => {
      const n = positiveNumber(v, MAX_POLL_S, 'seconds');
      return typeof n === 'string' ? n : void (o.devPollIntervalS = n);
    },
  },
  {
    name: 'KVVM_DEV_REST_MIN_S',
    kind: 'development',
    service: true,
    apply: (v, o) => {
      const n = positiveNumber(v, MAX_POLL_S, 'seconds');
      return typeof n === 'string' ? n : void (o.devRestMinS = n);
    },
  },
  {
    name: 'KVVM_RETRY_BASE_MS',
    kind: 'development',
    service: true,
    apply: (v, o) => {
      const n = positiveNumber(v, MAX_RETRY_BASE_MS, 'milliseconds');
      return typeof n === 'string' ? n : void (o.retryBaseMs = n);
    },
  },
  {
    name: 'KVVM_NO_JITTER',
    kind: 'development',
    service: true,
    apply: (v, o) => {
      const f = flag(v);
      return typeof f === 'string' ? f : void (o.noJitter = f);
    },
  },
  {
    name: 'KVVM_LOG_CONSOLE',
    kind: 'development',
    service: true,
    apply: (v, o) => {
      const f = flag(v);
      return typeof f === 'string' ? f : void (o.logConsole = f);
    },
  },
  {
    name: 'KVVM_RESTART_BASE_MS',
    kind: 'development',
    service: false,
    apply: (v, o) => {
      const n = positiveNumber(v, MAX_RETRY_BASE_MS, 'milliseconds');
      return typeof n === 'string' ? n : Number.isSafeInteger(n) ? void (o.restartBaseMs = n) : 'must be a whole number of milliseconds';
    },
  },
  { name: 'KVVM_INIT', kind: 'development', service: false, apply: (v, o) => (v === 'none' ? void (o.initNone = true) : 'must be "none" (or unset)') },
];

const BY_NAME = new Map(OVERRIDE_VARIABLES.map((v) => [v.name, v]));

const NO_OVERRIDES: Readonly<Overrides> = Object.freeze({
  extraVaultSuffixes: [],
  armEndpoint: undefined,
  armCaFile: undefined,
  waagentDir: undefined,
  devPollIntervalS: undefined,
  devRestMinS: undefined,
  noJitter: false,
  retryBaseMs: undefined,
  logConsole: false,
  restartBaseMs: undefined,
  initNone: false,
});

export interface OverrideReading {
  overrides: Overrides;
  /** Known variables that are set, in table order: what start-up logs. */
  set: Array<{ name: string; value: string; kind: Kind }>;
  /** KVVM_* variables kvvm does not know (ignored; a typo shows up here). */
  unknown: string[];
  /** Known variables whose value does not parse (the value is ignored). */
  invalid: Array<{ name: string; value: string; message: string }>;
}

export function readOverrides(env: EnvLike): OverrideReading {
  const overrides: Overrides = { ...NO_OVERRIDES, extraVaultSuffixes: [] };
  const set: OverrideReading['set'] = [];
  const invalid: OverrideReading['invalid'] = [];
  for (const variable of OVERRIDE_VARIABLES) {
    const value = env[variable.name];
    if (value === undefined) continue;
    set.push({ name: variable.name, value, kind: variable.kind });
    const problem = variable.apply(value, overrides);
    if (problem !== undefined) invalid.push({ name: variable.name, value, message: `${variable.name}="${value}" ${problem}.` });
  }
  const unknown = Object.keys(env)
    .filter((k) => /^KVVM_/i.test(k) && !BY_NAME.has(k) && env[k] !== undefined)
    .sort();
  return { overrides, set, unknown, invalid };
}

/** The typed overrides of `env`; a value that does not parse is left at its default (the CLI refuses it first). */
export function overridesFrom(env: EnvLike): Overrides {
  return readOverrides(env).overrides;
}

/** Thrown by the CLI before any command runs when a KVVM_* variable does not parse. */
export function invalidOverridesError(reading: OverrideReading): KvvmError | undefined {
  if (reading.invalid.length === 0) return undefined;
  return new KvvmError('invalid-override', reading.invalid.map((i) => i.message).join(' '), {
    fix: `Correct or unset ${reading.invalid.map((i) => i.name).join(', ')} (README: Environment variables).`,
    code: 2,
  });
}

/**
 * Set by kvvm's own POSIX supervisor (restartLoop.ts) for the worker it starts, never by people: where the worker
 * may rest between cycles and write its wake record, and (1) that this start ends a rest. Taken out of the
 * worker's environment before anything else reads it, so nothing the worker starts inherits them; not overrides.
 */
export const WAKE_FILE_ENV = 'KVVM_WORKER_WAKE_FILE';
export const WAKING_ENV = 'KVVM_WORKER_WAKING';

export interface RestArrangement {
  wakeFile: string;
  waking: boolean;
}

/** True in a worker whose supervisor lets it rest between cycles (read before takeRestArrangement removes the variable). */
export function restsBetweenCycles(env: EnvLike): boolean {
  return (env[WAKE_FILE_ENV] ?? '') !== '';
}

export function takeRestArrangement(env: Record<string, string | undefined>): RestArrangement | undefined {
  const wakeFile = env[WAKE_FILE_ENV];
  const waking = env[WAKING_ENV] === '1';
  delete env[WAKE_FILE_ENV];
  delete env[WAKING_ENV];
  return wakeFile ? { wakeFile, waking } : undefined;
}

/** One log line per variable that is set, and one for unknown KVVM_* names: what every command logs at start. */
export function overrideLogLines(reading: OverrideReading): Array<{ level: 'info' | 'warn'; message: string }> {
  const lines = reading.set.map((s) => ({
    level: s.kind === 'development' ? ('warn' as const) : ('info' as const),
    message: `${s.kind === 'development' ? 'development override' : 'environment'}: ${s.name}=${s.value}`,
  }));
  if (reading.unknown.length > 0) lines.push({ level: 'warn', message: `ignored unknown environment variables: ${reading.unknown.join(', ')}` });
  return lines;
}

/**
 * The known KVVM_* variables the service reads that are set in `env` (name to value): what the Windows service's
 * launch file carries. Unknown KVVM_* names and the `kvvm deploy` ones are never carried.
 */
export function serviceOverrideVariables(env: EnvLike): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of OVERRIDE_VARIABLES) {
    const value = env[v.name];
    if (v.service && value !== undefined) out[v.name] = value;
  }
  return out;
}
