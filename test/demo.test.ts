/**
 * `kvvm demo` (npm start) as a user runs it, in a child process: the rotation's onChange command reloads the
 * demo's HTTPS server, and the live table shows the served thumbprint move to the new version's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../handler/paths.js';

test('the demo serves the rotated certificate after its onChange command reloaded the HTTPS server', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-demo-test-'));
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [join(packageRoot(), 'lib', 'handler', 'cli.js'), 'demo', '--dir', dir], { maxBuffer: 16 * 1024 * 1024 });
    const served = [...stdout.matchAll(/serves thumbprint ([0-9A-F]{40}) \(reloads: (\d+)\)/g)].map((m) => ({ thumbprint: m[1]!, reloads: Number(m[2]) }));
    const webRows = [...stdout.matchAll(/^kvvm\/web\s+([0-9a-f]{32})\s+([0-9A-F]{40})/gm)].map((m) => ({ version: m[1]!, thumbprint: m[2]! }));
    assert.ok(served.length >= 2, stdout);
    const first = served[0]!;
    const last = served.at(-1)!;
    assert.notEqual(first.thumbprint, last.thumbprint, 'the served certificate changed');
    assert.equal(last.thumbprint, webRows.at(-1)!.thumbprint, 'it is the rotated version the store made active');
    assert.ok(last.reloads > first.reloads, 'through a reload');
    assert.match(stdout, /the onChange command reloaded the HTTPS server/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
