/**
 * Benchmark figures, the table, bench/results.json and the quick-mode regression check.
 *
 * Every figure is a ratio against a floor measured in the same run: ratio = value / floor, target = the
 * largest acceptable ratio. Counts (failures, 429s) use floor 1 and ratio = 1 + count, so target 1 means
 * "none" and a count can still be compared against its recorded baseline.
 *
 * bench/results.json is ONE array of such objects: the full run's entries under their plain names and the
 * quick run's under "quick: <name>". A full run replaces the plain entries, a quick run with --json the quick
 * ones; each keeps the other's. Quick mode compares its ratios with the "quick: " entries.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface BenchEntry {
  name: string;
  value: number;
  floor: number;
  ratio: number;
  /** Largest acceptable ratio; null when the figure is informational (no target in the issue). */
  target: number | null;
  unit: string;
  /** What was measured and with which parameters (concurrency, parameters of the scenario, ...). */
  note?: string;
}

export const QUICK_PREFIX = 'quick: ';
/** Quick mode fails when a ratio is more than this many times its recorded quick baseline. */
export const REGRESSION_FACTOR = 2;

function round(n: number, digits = 3): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function timing(name: string, value: number, floor: number, target: number | null, unit: string, note?: string): BenchEntry {
  const e: BenchEntry = { name, value: round(value), floor: round(floor), ratio: round(floor > 0 ? value / floor : Number.POSITIVE_INFINITY), target, unit };
  if (note !== undefined) e.note = note;
  return e;
}

export function count(name: string, n: number, target: number | null, note?: string): BenchEntry {
  const e: BenchEntry = { name, value: n, floor: 1, ratio: 1 + n, target, unit: 'count' };
  if (note !== undefined) e.note = note;
  return e;
}

export function meets(e: BenchEntry): boolean | undefined {
  return e.target === null ? undefined : e.ratio <= e.target;
}

export function formatTable(entries: readonly BenchEntry[]): string {
  const rows = entries.map((e) => {
    const m = meets(e);
    return [e.name, `${e.value} ${e.unit}`, `${e.floor} ${e.unit === 'count' ? '' : e.unit}`.trim(), e.ratio.toFixed(2), e.target === null ? '-' : `<= ${e.target}`, m === undefined ? 'info' : m ? 'met' : 'NOT MET'];
  });
  const head = ['figure', 'value', 'floor', 'ratio', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function readResults(file: string): BenchEntry[] {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return Array.isArray(parsed) ? (parsed as BenchEntry[]) : [];
  } catch {
    return [];
  }
}

/** Replaces the entries of one mode (quick or full) and keeps the other's; full entries first. */
export function mergeResults(previous: readonly BenchEntry[], current: readonly BenchEntry[], quick: boolean): BenchEntry[] {
  const isQuick = (e: BenchEntry): boolean => e.name.startsWith(QUICK_PREFIX);
  const named = quick ? current.map((e) => ({ ...e, name: QUICK_PREFIX + e.name })) : [...current];
  const kept = previous.filter((e) => isQuick(e) !== quick);
  const full = quick ? kept : named;
  const quickEntries = quick ? named : kept;
  return [...full, ...quickEntries];
}

export function writeResults(file: string, entries: readonly BenchEntry[]): void {
  writeFileSync(file, `${JSON.stringify(entries, null, 2)}\n`);
}

export interface Regression {
  name: string;
  ratio: number;
  baseline: number;
}

/** Figures of this run whose ratio exceeds REGRESSION_FACTOR × the recorded ratio of the same mode. */
export function findRegressions(baseline: readonly BenchEntry[], current: readonly BenchEntry[], quick: boolean): { regressions: Regression[]; missing: string[] } {
  const byName = new Map(baseline.map((e) => [e.name, e]));
  const regressions: Regression[] = [];
  const missing: string[] = [];
  for (const e of current) {
    const recorded = byName.get(quick ? QUICK_PREFIX + e.name : e.name);
    if (!recorded) {
      missing.push(e.name);
      continue;
    }
    // Informational counts (the fleet's 429s) depend on how the simulated instances' start-up lands in the
    // vault's rate window on a loaded 2-core machine (measured: 136 to 400 between runs); they are reported,
    // not gated. Targeted counts (failures) and every timing ratio are gated.
    if (e.unit === 'count' && e.target === null) continue;
    // A recorded ratio at or under the floor (e.g. idle CPU of 0 ticks) counts as 1: at the floor, noise is not a regression.
    if (e.ratio > REGRESSION_FACTOR * Math.max(1, recorded.ratio)) regressions.push({ name: e.name, ratio: e.ratio, baseline: recorded.ratio });
  }
  return { regressions, missing };
}
