import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KvvmError } from '../handler/errors.js';
import { readMrseq, resolveSequenceNumber, writeMrseq } from '../handler/protocol/sequence.js';

const root = mkdtempSync(join(tmpdir(), 'kvvm-seq-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function configWith(files: Record<string, number /* mtime, seconds */>): string {
  const dir = join(root, `config-${n++}`);
  mkdirSync(dir);
  for (const [name, mtime] of Object.entries(files)) {
    writeFileSync(join(dir, name), '');
    utimesSync(join(dir, name), mtime, mtime);
  }
  return dir;
}

describe('resolveSequenceNumber', () => {
  test('ConfigSequenceNumber from the agent wins over the files', async () => {
    const dir = configWith({ '7.settings': 2000 });
    assert.equal(await resolveSequenceNumber(dir, { ConfigSequenceNumber: '3' }), 3);
  });

  test('without the variable the most recently modified settings file wins, not the highest number', async () => {
    const dir = configWith({ '5.settings': 1000, '2.settings': 3000, '9.settings': 2000 });
    assert.equal(await resolveSequenceNumber(dir, {}), 2);
  });

  test('equal modification times go to the highest number', async () => {
    const dir = configWith({ '4.settings': 1000, '11.settings': 1000, '6.settings': 1000 });
    assert.equal(await resolveSequenceNumber(dir, {}), 11);
  });

  test('agent files and names that are not <digits>.settings are ignored, however new', async () => {
    const dir = configWith({
      '1.settings': 1000,
      HandlerState: 9000,
      HandlerStatus: 9000,
      'abc.settings': 9000,
      'ext.3.settings': 9000,
      '4.settings.bak': 9000,
      '-2.settings': 9000,
    });
    assert.equal(await resolveSequenceNumber(dir, {}), 1);
  });

  test('a malformed ConfigSequenceNumber is not trusted: the files decide', async () => {
    const dir = configWith({ '8.settings': 1000 });
    assert.equal(await resolveSequenceNumber(dir, { ConfigSequenceNumber: '3; rm -rf /' }), 8);
    assert.equal(await resolveSequenceNumber(dir, { ConfigSequenceNumber: '' }), 8);
  });

  test('no settings file at all, or no folder, is the no-settings error', async () => {
    for (const dir of [configWith({ HandlerState: 1000 }), join(root, 'missing-folder')]) {
      await assert.rejects(resolveSequenceNumber(dir, {}), (err: unknown) => err instanceof KvvmError && err.reason === 'no-settings');
    }
  });
});

describe('mrseq', () => {
  test('round-trips and leaves no temporary file behind', async () => {
    const dir = join(root, 'ext-mrseq');
    mkdirSync(dir);
    assert.equal(await readMrseq(dir), undefined);
    await writeMrseq(dir, 12);
    assert.equal(await readMrseq(dir), 12);
    await writeMrseq(dir, 0);
    assert.equal(await readMrseq(dir), 0);
    assert.deepEqual(readdirSync(dir), ['mrseq']);
  });

  for (const [label, content] of [
    ['empty', ''],
    ['garbage', 'x1'],
    ['negative', '-1'],
    ['fraction', '1.5'],
    ['huge', '99999999999999999999'],
    ['binary', '\u0000\u0001'],
  ] as const) {
    test(`a ${label} mrseq file reads as undefined`, async () => {
      const dir = join(root, `ext-mrseq-${label}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'mrseq'), content);
      assert.equal(await readMrseq(dir), undefined);
    });
  }

  test('mrseq that is a folder reads as undefined; writing a negative number is refused', async () => {
    const dir = join(root, 'ext-mrseq-dir');
    mkdirSync(join(dir, 'mrseq'), { recursive: true });
    assert.equal(await readMrseq(dir), undefined);
    await assert.rejects(writeMrseq(join(root), -1), (err: unknown) => err instanceof KvvmError && err.reason === 'mrseq-invalid');
  });
});
