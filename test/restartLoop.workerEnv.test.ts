/**
 * The malloc settings the supervisor gives the worker (restartLoop.ts WORKER_GLIBC_TUNABLES): the real restart
 * loop under the real /bin/sh starts a stand-in worker (a shell script that records its environment and exits 0,
 * which ends the loop), and the worker's own first step removes them again so that nothing it starts inherits them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dropWorkerTunables, restartLoopArgs, WORKER_GLIBC_TUNABLES, WORKER_TUNABLES_MARK } from '../handler/service/restartLoop.js';

const run = promisify(execFile);

/** Runs the loop once with `env`; returns the environment the worker started with. */
async function workerEnvironment(env: Record<string, string>): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'kvvm-loop-env-'));
  try {
    const worker = join(dir, 'worker.sh');
    const out = join(dir, 'env.txt');
    writeFileSync(worker, `#!/bin/sh\n[ "$1" = service ] || exit 3\nenv > '${out}'\nexit 0\n`, { mode: 0o755 });
    await run('/bin/sh', restartLoopArgs(join(dir, 'lock'), [worker]), { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } });
    const lines = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='));
    return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the worker gets kvvm's malloc settings and their mark when the operator set no GLIBC_TUNABLES", async () => {
  const env = await workerEnvironment({});
  assert.equal(env['GLIBC_TUNABLES'], WORKER_GLIBC_TUNABLES);
  assert.equal(env[WORKER_TUNABLES_MARK], '1');
});

test("an operator's GLIBC_TUNABLES reaches the worker unchanged, without the mark", async () => {
  const env = await workerEnvironment({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=4' });
  assert.equal(env['GLIBC_TUNABLES'], 'glibc.malloc.arena_max=4');
  assert.equal(env[WORKER_TUNABLES_MARK], undefined);
});

test("the worker drops the supervisor's settings from its environment, and keeps an operator's", () => {
  const added: Record<string, string | undefined> = { GLIBC_TUNABLES: WORKER_GLIBC_TUNABLES, [WORKER_TUNABLES_MARK]: '1', PATH: '/usr/bin' };
  dropWorkerTunables(added);
  assert.deepEqual(added, { PATH: '/usr/bin' });
  const operators: Record<string, string | undefined> = { GLIBC_TUNABLES: 'glibc.malloc.arena_max=4', PATH: '/usr/bin' };
  dropWorkerTunables(operators);
  assert.deepEqual(operators, { GLIBC_TUNABLES: 'glibc.malloc.arena_max=4', PATH: '/usr/bin' });
});
