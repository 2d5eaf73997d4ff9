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
  /**
   * The floor was measured in this run, on this machine (node -e 0, a bare process, openssl), so load moves value
   * and floor together. A computed floor (N x latency / concurrency, the vault rate) does not move with load.
   */
  floorMeasured?: boolean;
}

export const QUICK_PREFIX = 'quick: ';
/** A gated ratio fails only above max(its target, HEADROOM × its recorded quick ratio): noise on a busy machine does not move a ratio 3-fold. */
export const HEADROOM = 3;

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

/** Marks a figure whose floor was measured in the same run (see BenchEntry.floorMeasured). */
export function measuredFloor(e: BenchEntry): BenchEntry {
  return { ...e, floorMeasured: true };
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
    return [
      e.name,
      `${e.value} ${e.unit}`,
      `${e.floor} ${e.unit === 'count' ? '' : e.unit}`.trim(),
      e.ratio.toFixed(2),
      e.target === null ? '-' : `<= ${e.target}`,
      m === undefined ? 'info' : m ? 'met' : 'NOT MET',
    ];
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

/** The scenario a figure belongs to: the first word of its name (`poll 1000 rotated: …` → `poll`). */
function scenarioOfFigure(name: string): string {
  const plain = name.startsWith(QUICK_PREFIX) ? name.slice(QUICK_PREFIX.length) : name;
  return plain.split(/[\s:(]/, 1)[0] ?? plain;
}

/**
 * Records a run: the entries of its mode (quick or full) from the scenarios it ran replace the recorded ones; the
 * other mode's entries, and this mode's entries of scenarios it did not run (`--only`), are kept. Full entries first.
 */
export function mergeResults(previous: readonly BenchEntry[], current: readonly BenchEntry[], quick: boolean, ran: ReadonlySet<string>): BenchEntry[] {
  const isQuick = (e: BenchEntry): boolean => e.name.startsWith(QUICK_PREFIX);
  const named = quick ? current.map((e) => ({ ...e, name: QUICK_PREFIX + e.name })) : [...current];
  const kept = previous.filter((e) => isQuick(e) !== quick || !ran.has(scenarioOfFigure(e.name)));
  return [...kept.filter((e) => !isQuick(e)), ...(quick ? [] : named), ...kept.filter(isQuick), ...(quick ? named : [])];
}

export function writeResults(file: string, entries: readonly BenchEntry[]): void {
  writeFileSync(file, `${JSON.stringify(entries, null, 2)}\n`);
}

/**
 * What CI's quick benchmark does with one figure:
 * - 'info': informational (no target), or a ratio with no recorded quick baseline: reported, never fails;
 * - 'count': a count with a target (failures, 429s, requests per certificate): noise does not change how many
 *   requests or failures a run makes, so it fails as soon as the count exceeds its target;
 * - 'ratio': a ratio against a floor MEASURED in the same run, with a target: fails only above
 *   max(target, HEADROOM × recorded ratio), so a run on a loaded machine cannot fail it while a real 3-fold
 *   regression (or a target missed by more than the noise) does. A ratio against a computed floor is
 *   informational: measured on a loaded 2-core machine, "poll 100 unchanged: wall" went from 0.78 to 21.9 x its
 *   computed floor, while every measured-floor ratio stayed within 1.5 x its recorded value.
 */
type GateKind = 'info' | 'count' | 'ratio';

export interface GateVerdict {
  name: string;
  kind: GateKind;
  ratio: number;
  /** The ratio above which the figure fails (counts: their target); undefined for 'info'. */
  limit: number | undefined;
  /** The recorded quick ratio it was compared with, when there is one. */
  recorded: number | undefined;
  failed: boolean;
}

export function gateFigure(e: BenchEntry, recorded: BenchEntry | undefined): GateVerdict {
  const base = { name: e.name, ratio: e.ratio, recorded: recorded?.ratio };
  if (e.target === null) return { ...base, kind: 'info', limit: undefined, failed: false };
  // Counts and request counts have no clock in them: load cannot move them, so their target is the gate.
  if (e.unit === 'count' || e.unit === 'requests') return { ...base, kind: 'count', limit: e.target, failed: !(e.ratio <= e.target) };
  if (recorded === undefined || e.floorMeasured !== true) return { ...base, kind: 'info', limit: undefined, failed: false };
  // A recorded ratio under the floor (idle CPU of 0 ticks) counts as 1: at the floor, noise is not a regression.
  const limit = round(Math.max(e.target, HEADROOM * Math.max(1, recorded.ratio)));
  return { ...base, kind: 'ratio', limit, failed: !(e.ratio <= limit) };
}

/** The verdict for every figure of this quick run, against the recorded "quick: " entries. */
export function gateFigures(baseline: readonly BenchEntry[], current: readonly BenchEntry[]): GateVerdict[] {
  const byName = new Map(baseline.map((e) => [e.name, e]));
  return current.map((e) => gateFigure(e, byName.get(QUICK_PREFIX + e.name)));
}

export function describeVerdict(v: GateVerdict): string {
  if (v.kind === 'info') return `${v.name}: ratio ${v.ratio} (informational)`;
  const what = v.kind === 'count' ? `count ratio ${v.ratio}, target ${v.limit}` : `ratio ${v.ratio}, limit ${v.limit} = max(target, ${HEADROOM} x recorded ${v.recorded})`;
  return `${v.name}: ${what}`;
}
