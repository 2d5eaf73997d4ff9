/**
 * writeFileAtomic's temporary names (handler/protocol/atomicFile.ts): the process id and a per-process counter,
 * created with O_EXCL. A name already taken (a crashed process that had this id, another thread of this one, or a
 * symlink planted there) is skipped, never opened or followed; the file lands whole, with its mode from the first byte.
 * Its own file: the counter is module state, and this process has written no atomic file before these tests.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../handler/protocol/atomicFile.js';

const root = mkdtempSync(join(tmpdir(), 'kvvm-atomic-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  test('skips temporary names already taken (files and symlinks), leaves them as they were, and writes the file whole', async () => {
    const target = join(root, '0.status');
    // The first names this process would use: counters 0..11, base 36.
    const taken = Array.from({ length: 12 }, (_, n) => join(root, `.0.status.${process.pid}.${n.toString(36)}.tmp`));
    const decoy = join(root, 'decoy');
    writeFileSync(decoy, 'decoy');
    taken.forEach((t, i) => (i % 2 === 0 ? writeFileSync(t, `stale ${i}`) : symlinkSync(decoy, t)));
    await writeFileAtomic(target, '[{"status":"success"}]', { mode: 0o600 });
    assert.equal(readFileSync(target, 'utf8'), '[{"status":"success"}]');
    assert.equal(statSync(target).mode & 0o777, 0o600);
    assert.equal(readFileSync(decoy, 'utf8'), 'decoy', 'a planted symlink is not followed');
    taken.forEach((t, i) => {
      if (i % 2 === 0) assert.equal(readFileSync(t, 'utf8'), `stale ${i}`);
      else assert.equal(readlinkSync(t), decoy);
    });
    // Nothing of its own left behind: the taken names and the decoy, the target.
    assert.equal(readdirSync(root).length, taken.length + 2);
  });

  test('consecutive writes use fresh names and replace the file', async () => {
    const target = join(root, 'mrseq');
    for (let i = 0; i < 5; i++) await writeFileAtomic(target, String(i));
    assert.equal(readFileSync(target, 'utf8'), '4');
    assert.ok(lstatSync(target).isFile());
    assert.deepEqual(
      readdirSync(root).filter((f) => f.startsWith('.mrseq.')),
      [],
    );
  });
});
