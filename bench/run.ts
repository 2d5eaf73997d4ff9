/**
 * `npm run bench [-- --quick] [-- --json] [-- --only=poll,enable,idle,fleet]`
 *
 * Runs the benchmarks of issue 5 and prints one table of ratios against floors measured in the same run
 * (bench/README.md explains every figure). --json records the figures in bench/results.json (full entries under
 * their names, quick ones under "quick: <name>"). --quick uses small parameters and exits 1 when a ratio is more
 * than 2x its recorded quick baseline, naming it.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../handler/paths.js';
import { benchEnable } from './enable.js';
import { benchFleet, FLEET_FULL, FLEET_QUICK } from './fleet.js';
import { benchIdle } from './idle.js';
import { benchPollCycle } from './pollCycle.js';
import { findRegressions, formatTable, mergeResults, meets, readResults, writeResults, type BenchEntry } from './report.js';

const SCENARIOS = ['poll', 'enable', 'idle', 'fleet'] as const;
type Scenario = (typeof SCENARIOS)[number];

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, only: { type: 'string' }, results: { type: 'string' } },
  });
  const quick = values.quick ?? false;
  const only = new Set((values.only ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()) as Scenario[]);
  for (const s of only) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario "${s}" (known: ${SCENARIOS.join(', ')})`);
  const resultsFile = values.results ?? join(packageRoot(), 'bench', 'results.json');
  const progress = (s: string): void => void process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)} s] ${s}\n`);
  const started = Date.now();
  process.env['KVVM_EXTRA_VAULT_SUFFIXES'] = 'localhost';

  const entries: BenchEntry[] = [];
  if (only.has('poll')) {
    entries.push(...(await benchPollCycle(quick ? { certificates: 100, latencyMs: 20, poolSize: 4, opensslRuns: 10 } : { certificates: 1000, latencyMs: 20, poolSize: 16, opensslRuns: 40 }, progress)));
  }
  if (only.has('enable')) entries.push(...(await benchEnable({ runs: quick ? 5 : 15 }, progress)));
  if (only.has('idle')) entries.push(...(await benchIdle({ windowS: quick ? 10 : 60, certificates: quick ? 10 : 100 }, progress)));
  if (only.has('fleet')) entries.push(...(await benchFleet(quick ? FLEET_QUICK : FLEET_FULL, progress)));

  const elapsedS = (Date.now() - started) / 1000;
  process.stdout.write(`\nkvvm benchmarks (${quick ? 'quick' : 'full'} mode, ${elapsedS.toFixed(0)} s)\n\n${formatTable(entries)}\n\n`);
  for (const e of entries) if (e.note) process.stdout.write(`- ${e.name}: ${e.note}\n`);
  const notMet = entries.filter((e) => meets(e) === false);
  process.stdout.write(`\n${notMet.length === 0 ? 'every target met' : `targets not met: ${notMet.map((e) => e.name).join('; ')}`}\n`);

  let exit = 0;
  const recorded = readResults(resultsFile);
  if (quick) {
    const { regressions, missing } = findRegressions(recorded, entries, true);
    if (missing.length > 0) process.stdout.write(`no recorded quick baseline for: ${missing.join('; ')}\n`);
    for (const r of regressions) process.stdout.write(`REGRESSION: ${r.name}: ratio ${r.ratio} > 2 x recorded ${r.baseline}\n`);
    if (regressions.length > 0) exit = 1;
    else process.stdout.write('no regression beyond 2x the recorded quick ratios\n');
  }
  if (values.json) {
    writeResults(resultsFile, mergeResults(recorded, entries, quick));
    process.stdout.write(`recorded in ${resultsFile}\n`);
  }
  return exit;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
