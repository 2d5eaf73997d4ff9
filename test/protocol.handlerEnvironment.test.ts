import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KvvmError } from '../handler/errors.js';
import { findHandlerEnvironment, parseHandlerEnvironment } from '../handler/protocol/handlerEnvironment.js';
import { makeAgentLayout } from './helpers/agentFolder.js';

const root = mkdtempSync(join(tmpdir(), 'kvvm-he-'));
after(() => rmSync(root, { recursive: true, force: true }));

const noSleep = async () => undefined;
const elsewhere = join(root, 'nowhere');
mkdirSync(elsewhere, { recursive: true });

function folderWith(name: string, content: string | undefined): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  if (content !== undefined) writeFileSync(join(dir, 'HandlerEnvironment.json'), content);
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<KvvmError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KvvmError, `expected KvvmError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

describe('findHandlerEnvironment', () => {
  test('reads the file the Linux agent writes, found through AZURE_GUEST_AGENT_EXTENSION_PATH', async () => {
    const layout = makeAgentLayout(join(root, 'agent'));
    const he = await findHandlerEnvironment({ env: layout.env(0), execPath: '/usr/bin/node', cwd: elsewhere, sleep: noSleep });
    assert.equal(he.name, 'Microsoft.Azure.KeyVault.KeyVaultForLinux');
    assert.equal(he.version, '1.0');
    assert.equal(he.configFolder, layout.configFolder);
    assert.equal(he.statusFolder, layout.statusFolder);
    assert.equal(he.logFolder, layout.logFolder);
    assert.equal(he.eventsFolder, layout.eventsFolder);
    assert.equal(he.heartbeatFile, layout.heartbeatFile);
    assert.equal(he.extensionFolder, layout.extensionFolder);
    // The helper writes it the way Python's json.dumps does, version as the number 1.0.
    assert.match(readFileSync(join(layout.extensionFolder, 'HandlerEnvironment.json'), 'utf8'), /"version": 1\.0,/);
  });

  test('falls back to the cwd, then next to the script and up to two folders above it', async () => {
    const ext = folderWith('ext-script', JSON.stringify([{ name: 'P.T', version: 1, handlerEnvironment: { logFolder: '/l', configFolder: '/c', statusFolder: '/s' } }]));
    const he = await findHandlerEnvironment({ env: {}, execPath: '/usr/bin/node', scriptPath: join(ext, 'lib', 'handler', 'cli.js'), cwd: elsewhere, sleep: noSleep });
    assert.equal(he.extensionFolder, ext);
    const viaCwd = await findHandlerEnvironment({ env: {}, execPath: '/usr/bin/node', cwd: ext, sleep: noSleep });
    assert.equal(viaCwd.extensionFolder, ext);
  });

  test('finds the file one folder above the executable (Windows layout: bin\\kvvm.exe)', async () => {
    const ext = folderWith(
      'ext-exe',
      JSON.stringify([{ name: 'P.T', version: '1', handlerEnvironment: { logFolder: '/L', configFolder: '/C', statusFolder: '/S', deploymentid: 'x' } }]),
    );
    const he = await findHandlerEnvironment({ env: {}, execPath: join(ext, 'bin', 'kvvm.exe'), cwd: elsewhere, sleep: noSleep });
    assert.equal(he.extensionFolder, ext);
    assert.equal(he.version, '1.0');
    assert.equal(he.eventsFolder, undefined);
  });

  test('retries while the file is missing, then fails naming every folder searched', async () => {
    let sleeps = 0;
    const err = await rejection(
      findHandlerEnvironment({
        env: { AZURE_GUEST_AGENT_EXTENSION_PATH: join(root, 'absent') },
        execPath: '/opt/x/bin/node',
        cwd: elsewhere,
        retries: 2,
        sleep: async () => void sleeps++,
      }),
    );
    assert.equal(err.reason, 'handler-environment');
    assert.equal(sleeps, 2);
    for (const folder of [join(root, 'absent'), elsewhere, '/opt/x/bin', '/opt/x']) assert.ok(err.message.includes(folder), `${folder} named`);
  });

  test('a file that becomes valid between attempts is accepted (the agent was still writing it)', async () => {
    const dir = folderWith('ext-late', '[{"name": "P.T", "vers');
    const he = await findHandlerEnvironment({
      env: { AZURE_GUEST_AGENT_EXTENSION_PATH: dir },
      execPath: '/usr/bin/node',
      cwd: elsewhere,
      sleep: async () => {
        writeFileSync(
          join(dir, 'HandlerEnvironment.json'),
          JSON.stringify([{ name: 'P.T', version: 1.0, handlerEnvironment: { logFolder: '/l', configFolder: '/c', statusFolder: '/s' } }]),
        );
      },
    });
    assert.equal(he.name, 'P.T');
  });

  test('a corrupt file in the first folder is an error even if a later folder has a good one', async () => {
    const bad = folderWith('ext-bad', '{');
    const good = folderWith('ext-good', JSON.stringify([{ name: 'P.T', version: 1, handlerEnvironment: { logFolder: '/l', configFolder: '/c', statusFolder: '/s' } }]));
    const err = await rejection(findHandlerEnvironment({ env: { AZURE_GUEST_AGENT_EXTENSION_PATH: bad }, execPath: '/usr/bin/node', cwd: good, retries: 1, sleep: noSleep }));
    assert.equal(err.reason, 'handler-environment');
    assert.match(err.message, /not valid JSON/);
    assert.ok(err.message.includes(join(bad, 'HandlerEnvironment.json')));
  });
});

describe('parseHandlerEnvironment: catalogue of damaged files never crashes', () => {
  const good = { logFolder: '/l', configFolder: '/c', statusFolder: '/s' };
  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /empty/],
    ['whitespace', ' \n\t', /empty/],
    ['not JSON', 'hello', /not valid JSON/],
    ['truncated', '[{"name": "P.T", "version": 1.0, "handlerEnv', /not valid JSON/],
    ['an object instead of an array', JSON.stringify({ name: 'P.T', version: 1, handlerEnvironment: good }), /not a JSON array/],
    ['an empty array', '[]', /element \[0\]/],
    ['array of null', '[null]', /element \[0\]/],
    ['no name', JSON.stringify([{ version: 1, handlerEnvironment: good }]), /"name"/],
    ['version 2', JSON.stringify([{ name: 'P', version: 2, handlerEnvironment: good }]), /version/],
    ['version garbage', JSON.stringify([{ name: 'P', version: 'abc', handlerEnvironment: good }]), /version/],
    ['no handlerEnvironment', JSON.stringify([{ name: 'P', version: 1 }]), /handlerEnvironment/],
    ['handlerEnvironment a string', JSON.stringify([{ name: 'P', version: 1, handlerEnvironment: 'x' }]), /handlerEnvironment/],
    ['no statusFolder', JSON.stringify([{ name: 'P', version: 1, handlerEnvironment: { logFolder: '/l', configFolder: '/c' } }]), /statusFolder/],
    ['configFolder a number', JSON.stringify([{ name: 'P', version: 1, handlerEnvironment: { ...good, configFolder: 5 } }]), /configFolder/],
    ['logFolder null', JSON.stringify([{ name: 'P', version: 1, handlerEnvironment: { ...good, logFolder: null } }]), /logFolder/],
  ];
  for (const [label, text, expected] of cases) {
    test(`${label} → a problem, not an exception`, () => {
      const result = parseHandlerEnvironment(text, '/ext');
      assert.ok('problem' in result, `${label} should be rejected`);
      assert.match(result.problem, expected);
    });
  }

  test('version "1" (Windows) and a UTF-8 byte-order mark are accepted; the preview events key is used when alone', () => {
    const result = parseHandlerEnvironment(`\uFEFF${JSON.stringify([{ name: 'P', version: '1', handlerEnvironment: { ...good, eventsFolder_preview: '/ev' } }])}`, '/ext');
    assert.ok('env' in result);
    assert.equal(result.env.version, '1.0');
    assert.equal(result.env.eventsFolder, '/ev');
  });
});
