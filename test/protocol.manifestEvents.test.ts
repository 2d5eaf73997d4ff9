import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KvvmError } from '../handler/errors.js';
import { EVENT_LIMITS, writeEvent } from '../handler/protocol/events.js';
import { validateHandlerManifest } from '../handler/protocol/manifest.js';
import { guestAgentVectorsDir } from './helpers/vectors.js';

function manifestVectors(): string {
  return join(guestAgentVectorsDir(), 'handler_manifest');
}
const load = (file: string): unknown => JSON.parse(readFileSync(join(manifestVectors(), file), 'utf8'));

describe('validateHandlerManifest', () => {
  test("the agent's valid manifests are accepted, with the booleans it would read", () => {
    const expected: Record<string, boolean> = {
      'valid_manifest.json': true,
      'manifest_boolean_fields_strings.json': true, // "true" and "True"
      'manifest_boolean_fields_false.json': false,
      'manifest_no_optional_fields.json': false,
    };
    for (const [file, flag] of Object.entries(expected)) {
      const result = validateHandlerManifest(load(file));
      assert.ok(result.ok, `${file}: ${result.ok ? '' : result.reason}`);
      assert.equal(result.manifest.reportHeartbeat, flag, file);
      assert.equal(result.manifest.supportsMultipleExtensions, flag, file);
      assert.equal(result.manifest.commands.enableCommand, 'enable_cmd');
      assert.equal(result.manifest.updateWithInstall, true);
    }
  });

  test('manifest_boolean_fields_invalid.json is rejected, naming each bad field', () => {
    const result = validateHandlerManifest(load('manifest_boolean_fields_invalid.json'));
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    for (const key of ['reportHeartbeat', 'continueOnUpdateFailure', 'supportsMultipleExtensions']) assert.ok(result.reason.includes(key), key);
  });

  test('the KeyVaultForWindows manifest from PROTOCOL.md is accepted, updateMode honoured', () => {
    const doc = [
      {
        name: 'KeyVaultForWindows',
        version: 1.0,
        handlerManifest: {
          installCommand: 'bin\\kvvm.exe install',
          uninstallCommand: 'bin\\kvvm.exe uninstall',
          updateCommand: 'bin\\kvvm.exe update',
          enableCommand: 'bin\\kvvm.exe enable',
          disableCommand: 'bin\\kvvm.exe disable',
          rebootAfterInstall: false,
          reportHeartbeat: false,
          updateMode: 'UpdateWithoutInstall',
          continueOnUpdateFailure: false,
          supportsMultipleExtensions: false,
        },
      },
    ];
    const result = validateHandlerManifest(doc);
    assert.ok(result.ok);
    assert.equal(result.manifest.updateWithInstall, false);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an array', {}, /array/],
    ['empty array', [], /array/],
    ['no handlerManifest', [{ name: 'x' }], /handlerManifest/],
    ['a missing command', [{ handlerManifest: { installCommand: 'i', uninstallCommand: 'u', updateCommand: 'p', enableCommand: 'e' } }], /disableCommand/],
    ['an empty command', [{ handlerManifest: { installCommand: ' ', uninstallCommand: 'u', updateCommand: 'p', enableCommand: 'e', disableCommand: 'd' } }], /installCommand/],
    [
      'a bad updateMode',
      [{ handlerManifest: { installCommand: 'i', uninstallCommand: 'u', updateCommand: 'p', enableCommand: 'e', disableCommand: 'd', updateMode: 'Sometimes' } }],
      /updateMode/,
    ],
  ];
  for (const [label, doc, expected] of bad) {
    test(`${label} → rejected`, () => {
      const result = validateHandlerManifest(doc);
      assert.ok(!result.ok);
      assert.match(result.reason, expected);
    });
  }
});

describe('writeEvent', () => {
  const root = mkdtempSync(join(tmpdir(), 'kvvm-events-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const now = new Date('2026-01-01T00:00:00.123Z');

  test('writes one <digits>.json event with the agent keys, every value a string', async () => {
    const folder = join(root, 'a');
    const file = await writeEvent(folder, { level: 'Warning', taskName: 'Sync', message: 'certificate renewed', operationId: 'op-1', version: '3.0.0' }, now);
    assert.match(file, /\/\d+\.json$/);
    assert.deepEqual(readdirSync(folder), [file.split('/').at(-1)]);
    const event = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(event).sort(), ['EventLevel', 'EventPid', 'EventTid', 'Message', 'OperationId', 'TaskName', 'Timestamp', 'Version']);
    for (const value of Object.values(event)) assert.equal(typeof value, 'string');
    assert.equal(event['Timestamp'], '2026-01-01T00:00:00.123Z');
    assert.equal(event['EventPid'], String(process.pid));
    assert.equal(event['Message'], 'certificate renewed');
  });

  test('long and multi-byte messages are cut to 3072 characters and 6 KiB per event', async () => {
    const folder = join(root, 'b');
    for (const message of ['x'.repeat(10_000), '😀'.repeat(5000), '\u0001'.repeat(5000)]) {
      const file = await writeEvent(folder, { level: 'Error', taskName: 'Sync', message, operationId: 'op' }, now);
      const text = readFileSync(file, 'utf8');
      const event = JSON.parse(text) as { Message: string };
      assert.ok(event.Message.length <= EVENT_LIMITS.messageChars && event.Message.length > 0);
      assert.ok(Buffer.byteLength(text) <= EVENT_LIMITS.eventBytes, `${Buffer.byteLength(text)} bytes`);
    }
  });

  test('concurrent events get distinct files and leave no temporary files', async () => {
    const folder = join(root, 'c');
    const files = await Promise.all(Array.from({ length: 50 }, (_, i) => writeEvent(folder, { level: 'Informational', taskName: 't', message: `m${i}`, operationId: 'o' }, now)));
    assert.equal(new Set(files).size, 50);
    assert.equal(readdirSync(folder).filter((f) => /^\d+\.json$/.test(f)).length, 50);
    assert.equal(readdirSync(folder).length, 50);
  });

  test('an empty message is refused (the agent would drop it)', async () => {
    await assert.rejects(
      writeEvent(join(root, 'd'), { level: 'Error', taskName: 't', message: '  ', operationId: 'o' }, now),
      (err: unknown) => err instanceof KvvmError && err.reason === 'event-invalid',
    );
  });
});
