/**
 * The CLI's stdout/stderr writer (commands/context.ts directWriter): write(2) on the descriptor, and Node's stream
 * for the rest once the descriptor refuses (a full non-blocking pipe gives EAGAIN; a closed descriptor, EBADF, is
 * used here to make the refusal happen for real).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directWriter } from '../handler/commands/context.js';

test('text goes to the descriptor itself, in order, multi-byte characters intact', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvvm-writer-'));
  try {
    const file = join(dir, 'out');
    const fd = openSync(file, 'w');
    const streamed: unknown[] = [];
    const write = directWriter(fd, () => ({ write: (d) => streamed.push(d) }));
    write('kvvm enable: sequence 3 applied\n');
    write('Zertifikat für café ✓\n');
    closeSync(fd);
    assert.equal(readFileSync(file, 'utf8'), 'kvvm enable: sequence 3 applied\nZertifikat für café ✓\n');
    assert.deepEqual(streamed, [], 'nothing went through the stream');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a descriptor that refuses hands this text and every later one to the stream, in order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvvm-writer-'));
  try {
    const fd = openSync(join(dir, 'out'), 'w');
    closeSync(fd); // write(2) on it now fails (EBADF)
    const streamed: string[] = [];
    const write = directWriter(fd, () => ({ write: (d) => streamed.push(Buffer.from(d).toString()) }));
    write('first ü\n');
    write('second\n');
    assert.deepEqual(streamed, ['first ü\n', 'second\n']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
