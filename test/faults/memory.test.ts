/**
 * The service's poll loop must not leak: 2,000 cycles with a virtual clock over three certificates (real reader
 * over HTTPS against the dev vault, real store, status and log; rotations every 100 cycles) in a child
 * `node --expose-gc`, sampling heapUsed after a forced GC. The last quarter's mean heap must stay within a ratio
 * of the first quarter's (after warm-up), and the fitted slope over the second half must stay small per cycle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../handler/paths.js';

const run = promisify(execFile);
const CYCLES = Number(process.env['KVVM_MEMORY_CYCLES'] ?? 2000);

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Least-squares slope of heapUsed over cycle number, bytes per cycle. */
function slope(points: { cycle: number; heapUsed: number }[]): number {
  const mx = mean(points.map((p) => p.cycle));
  const my = mean(points.map((p) => p.heapUsed));
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.cycle - mx) * (p.heapUsed - my);
    den += (p.cycle - mx) ** 2;
  }
  return num / den;
}

test(`the poll loop's heap does not grow over ${CYCLES} cycles`, { timeout: 240_000 }, async () => {
  const child = join(packageRoot(), 'lib', 'test', 'helpers', 'faultsMemoryChild.js');
  const { stdout } = await run(process.execPath, ['--expose-gc', child, String(CYCLES)], {
    env: { ...process.env, KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 230_000,
  });
  const { cycles, samples } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { cycles: number; samples: { cycle: number; heapUsed: number }[] };
  assert.equal(cycles, CYCLES);
  assert.ok(samples.length >= 40, `${samples.length} samples`);
  // Skip the first 10 % (JIT, module caches, TLS session set-up), then compare quarters of the rest.
  const steady = samples.slice(Math.floor(samples.length / 10));
  const q = Math.floor(steady.length / 4);
  const first = mean(steady.slice(0, q).map((s) => s.heapUsed));
  const last = mean(steady.slice(-q).map((s) => s.heapUsed));
  const perCycle = slope(steady.slice(Math.floor(steady.length / 2)));
  console.log(
    `memory: ${cycles} cycles, heap first quarter ${(first / 1048576).toFixed(1)} MiB, last quarter ${(last / 1048576).toFixed(1)} MiB, ratio ${(last / first).toFixed(3)}, second-half slope ${perCycle.toFixed(0)} B/cycle`,
  );
  assert.ok(last / first < 1.2, `heap grew from ${first} to ${last} bytes`);
  // 1 KiB per cycle would be 2 MiB over this run and 100 MiB over a year of 5-minute polls.
  assert.ok(perCycle < 1024, `heap grows ${perCycle.toFixed(0)} bytes per cycle`);
});
