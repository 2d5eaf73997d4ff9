/**
 * A small, strict argv parser for the operator tools (deploy, status, doctor): `--name value`, `--name=value`,
 * boolean switches, and positionals. Unknown options are an error (a typo must not silently deploy defaults).
 */
import { KvvmError } from '../errors.js';

export interface FlagSpec {
  /** Options that take a value. */
  values: readonly string[];
  /** Switches without a value. */
  switches: readonly string[];
}

export interface ParsedFlags {
  positionals: string[];
  values: Map<string, string>;
  switches: Set<string>;
}

export function usageError(message: string, usage: string): KvvmError {
  return new KvvmError('usage', message, { fix: `Usage: ${usage}` });
}

export function parseFlags(argv: readonly string[], spec: FlagSpec, usage: string): ParsedFlags {
  const out: ParsedFlags = { positionals: [], values: new Map(), switches: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) {
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = (eq >= 0 ? arg.slice(2, eq) : arg.slice(2)).toLowerCase();
    if (spec.switches.includes(name)) {
      if (eq >= 0) throw usageError(`--${name} takes no value.`, usage);
      out.switches.add(name);
      continue;
    }
    if (!spec.values.includes(name)) throw usageError(`Unknown option --${name}.`, usage);
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i += 1;
    }
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw usageError(`--${name} needs a value.`, usage);
    out.values.set(name, value);
  }
  return out;
}

export function requireValue(flags: ParsedFlags, name: string, usage: string): string {
  const v = flags.values.get(name);
  if (v === undefined) throw usageError(`--${name} is required.`, usage);
  return v;
}

/** Comma-separated list option → trimmed, non-empty names. */
export function listValue(flags: ParsedFlags, name: string): string[] {
  const v = flags.values.get(name);
  if (v === undefined) return [];
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
