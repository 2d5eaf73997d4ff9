/**
 * The supervisor's side of resting (restartLoop.ts), under the real /bin/sh with a stand-in worker (a shell script):
 * a worker that exits with EXIT_RESTING after writing its wake record is started again after the record's delay,
 * told that it wakes; one whose record does not read is a crash like any other exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WAKE_FILE_ENV, WAKING_ENV } from '../handler/overrides.js';
import { EXIT_RESTING, restartLoopArgs, restartPolicyFor, wakeFileFor } from '../handler/service/restartLoop.js';

const run = promisify(execFile);

/**
 * Runs the loop with a worker whose Nth start (1-based) runs `steps[N-1]` (shell text), then exits 0 (which ends the
 * loop). Each start appends "<start> waking=<WAKING> file=<WAKE FILE>" to a log, which is returned with the loop's output.
 */
async function loop(steps: string[]): Promise<{ starts: string[]; out: string; wakeFile: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'kvvm-loop-rest-'));
  try {
    const worker = join(dir, 'worker.sh');
    const starts = join(dir, 'starts');
    writeFileSync(starts, '');
    const cases = steps.map((s, i) => `  ${i + 1}) ${s} ;;`).join('\n');
    writeFileSync(
      worker,
      `#!/bin/sh\n[ "$1" = service ] || exit 3\nn=$(($(wc -l < '${starts}') + 1))\necho "$n waking=\${${WAKING_ENV}:-} file=\${${WAKE_FILE_ENV}:-}" >> '${starts}'\ncase $n in\n${cases}\nesac\nexit 0\n`,
      { mode: 0o755 },
    );
    const lock = join(dir, 'kvvm-service.lock');
    const { stdout } = await run('/bin/sh', restartLoopArgs(lock, [worker], restartPolicyFor(50)), { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } });
    return { starts: readFileSync(starts, 'utf8').trim().split('\n'), out: stdout, wakeFile: wakeFileFor(lock) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a worker that rests is started again after its recorded delay, told that it wakes; the one after a crash is not', async () => {
  const rest = `echo "300 2026-01-01T00:00:00.300Z" > "$${WAKE_FILE_ENV}"; exit ${EXIT_RESTING}`;
  const { starts, out, wakeFile } = await loop([rest, rest, 'exit 1']);
  assert.deepEqual(starts, [`1 waking= file=${wakeFile}`, `2 waking=1 file=${wakeFile}`, `3 waking=1 file=${wakeFile}`, `4 waking= file=${wakeFile}`]);
  assert.equal((out.match(/service crashed/g) ?? []).length, 1, `only the exit 1 is a crash: ${out}`);
});

test('a resting exit without a readable wake record is a crash', async () => {
  for (const record of ['', 'soon 2026-01-01T00:00:00Z', '-5 x']) {
    const { starts, out } = await loop([`printf '%s' '${record}' > "$${WAKE_FILE_ENV}"; exit ${EXIT_RESTING}`]);
    assert.equal(starts.length, 2, `record "${record}": ${starts.join(' | ')}`);
    assert.match(out, new RegExp(`service crashed \\(exit code ${EXIT_RESTING}\\)`), `record "${record}"`);
    assert.match(starts[1] ?? '', /waking= /, 'a restart after a crash starts afresh');
  }
});
