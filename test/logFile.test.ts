/**
 * kvvm-handler.log as the agent commands write it without winston (service/logFile.ts): the same records as the
 * winston logger writes (one JSON line, keys sorted, redacted) and the same rotation as its `tailable` File
 * transport, checked against winston itself where they must agree.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { appendLogRecord, logFilePath } from '../handler/service/logFile.js';
import { createLogger } from '../handler/service/logger.js';

async function withFolder(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-logfile-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a record is one JSON line with the same fields, in the same order, as the winston logger writes', () =>
  withFolder(async (dir) => {
    const time = new Date('2026-01-02T03:04:05.678Z');
    await appendLogRecord(join(dir, 'direct'), 'handler', { level: 'info', message: 'Enable (sequence 3): service started', time });
    const winston = createLogger({ logFolder: join(dir, 'winston'), name: 'handler' });
    winston.info('Enable (sequence 3): service started');
    await winston.close();

    const direct = (await readFile(logFilePath(join(dir, 'direct'), 'handler'), 'utf8')).split('\n');
    const viaWinston = (await readFile(logFilePath(join(dir, 'winston'), 'handler'), 'utf8')).split('\n');
    assert.equal(direct.length, 2, 'one line, newline-terminated');
    assert.equal(direct[1], '');
    const a = JSON.parse(direct[0]!) as Record<string, unknown>;
    const b = JSON.parse(viaWinston[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(a), Object.keys(b));
    assert.deepEqual({ ...a, timestamp: undefined }, { ...b, timestamp: undefined });
    assert.equal(a['timestamp'], time.toISOString());
    assert.equal(a['pid'], process.pid);
  }));

test('secrets and protected values never reach the line', () =>
  withFolder(async (dir) => {
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';
    await appendLogRecord(
      dir,
      'handler',
      { level: 'error', message: `failed with ${pem} for client-secret-value`, time: new Date() },
      { redact: (t) => t.replaceAll('client-secret-value', '[protected setting]') },
    );
    const line = await readFile(logFilePath(dir, 'handler'), 'utf8');
    assert.ok(!line.includes('MIIEvQ') && !line.includes('client-secret-value'), line);
    assert.match(line, /\[redacted PEM\] for \[protected setting\]/);
    assert.match(line, /"level":"error"/);
  }));

test('a full file is rotated first, as winston rotates a tailable log: newest in kvvm-<name>.log, at most maxFiles files', () =>
  withFolder(async (dir) => {
    const write = (n: number): Promise<void> => appendLogRecord(dir, 'handler', { level: 'info', message: `record ${n}`, time: new Date() }, { maxSize: 10, maxFiles: 3 });
    for (let n = 1; n <= 5; n++) await write(n);
    assert.deepEqual((await readdir(dir)).sort(), ['kvvm-handler.log', 'kvvm-handler1.log', 'kvvm-handler2.log']);
    const message = async (index: number): Promise<unknown> => (JSON.parse(await readFile(logFilePath(dir, 'handler', index), 'utf8')) as { message: unknown }).message;
    assert.equal(await message(0), 'record 5');
    assert.equal(await message(1), 'record 4');
    assert.equal(await message(2), 'record 3');
  }));

test('a log that cannot be written does not fail the command', () =>
  withFolder(async (dir) => {
    const notAFolder = join(dir, 'file');
    await writeFile(notAFolder, 'x');
    await appendLogRecord(notAFolder, 'handler', { level: 'info', message: 'lost', time: new Date() });
    assert.equal(await readFile(notAFolder, 'utf8'), 'x');
  }));
