/** `kvvm validate`, driven through runValidateCommand with captured output (no child processes). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runValidateCommand, type ValidateIo } from '../handler/settings/validateCommand.js';
import { fixturePath, sms, URL1 } from './fixtures/settings/helpers.js';

function capture(files: Record<string, string> = {}, platform = 'linux'): { io: ValidateIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const io: ValidateIo = {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    env: {},
    platform,
    readFile: async (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT: no such file, open '${p}'`);
      return text;
    },
  };
  return { io, out: () => out, err: () => err };
}

describe('kvvm validate', () => {
  it('valid public settings: exit 0, OK and a summary of each certificate', async () => {
    const c = capture({ 's.json': JSON.stringify(sms([URL1], { pollingIntervalInS: '60' })) });
    assert.equal(await runValidateCommand(['s.json'], c.io), 0);
    assert.match(c.out(), /OK: settings generation 1\.0, 1 certificate, polling every 300 s/);
    assert.match(c.out(), /https:\/\/myvault\.vault\.azure\.net\/secrets\/cert1 -> \/var\/lib\/waagent\/Microsoft\.Azure\.KeyVault\.Store\/myvault\.cert1/);
    assert.match(c.out(), /1 warning:\n {2}\/secretsManagementSettings\/pollingIntervalInS: /);
  });
  it('invalid settings: exit 1, each problem with its path and fix', async () => {
    const c = capture({ 's.json': JSON.stringify(sms(['https://myvault.vault.azure.net/keys/cert1'], { requireInitialSync: 'yes' })) });
    assert.equal(await runValidateCommand(['s.json'], c.io), 1);
    assert.match(c.out(), /INVALID: 2 problems/);
    assert.match(c.out(), /\/secretsManagementSettings\/observedCertificates\/0: .*\/keys\/.*\n {4}Fix: Observe the certificate through its secret/);
    assert.match(c.out(), /\/secretsManagementSettings\/requireInitialSync: /);
  });
  it('--json prints the problems machine-readably', async () => {
    const c = capture({ 's.json': JSON.stringify(sms([])) });
    assert.equal(await runValidateCommand(['--json', 's.json'], c.io), 1);
    const doc = JSON.parse(c.out()) as { ok: boolean; problems: Array<{ reason: string; path: string }> };
    assert.equal(doc.ok, false);
    assert.deepEqual(
      doc.problems.map((p) => [p.reason, p.path]),
      [['nothing-to-observe', '/secretsManagementSettings/observedCertificates']],
    );
  });
  it('--platform win32 applies the Windows rules', async () => {
    const settings = JSON.stringify(sms([{ url: URL1, certificateStoreLocation: 'localMachine' }]));
    const onLinux = capture({ s: settings });
    assert.equal(await runValidateCommand(['s'], onLinux.io), 0);
    const onWindows = capture({ s: settings });
    assert.equal(await runValidateCommand(['s', '--platform', 'win32'], onWindows.io), 1);
    assert.match(onWindows.out(), /case-sensitive/);
  });
  it('reads a guest-agent .settings file and notes that protected settings were not checked', async () => {
    const c = capture();
    delete c.io.readFile;
    assert.equal(await runValidateCommand([fixturePath('agent-0.settings')], c.io), 0);
    assert.match(c.out(), /guest-agent \.settings file/);
    assert.match(c.out(), /protectedSettings are encrypted/);
  });
  it('reads an ARM extension resource and checks it under the profile of its typeHandlerVersion', async () => {
    const resource = { type: 'Microsoft.Compute/virtualMachines/extensions', properties: { typeHandlerVersion: '4.0', settings: sms([URL1], { requireInitialSync: true }) } };
    const c = capture({ 'arm.json': JSON.stringify(resource) }, 'win32');
    assert.equal(await runValidateCommand(['arm.json'], c.io), 0);
    assert.match(c.out(), /ARM extension resource, checked for win32/);
    assert.match(c.out(), /4\.x profile \(KeyVaultForWindows 4\.0 rules; handler version 4\.0/);
    assert.match(c.out(), /requireInitialSync: requireInitialSync was removed in 4\.0 and is ignored/);
  });
  it('an ARM resource with protectedSettings has them merged over the public settings', async () => {
    const resource = { properties: { settings: sms([URL1]), protectedSettings: { authenticationSettings: { msiClientId: 'not-a-guid' } } } };
    const c = capture({ 'arm.json': JSON.stringify(resource) });
    assert.equal(await runValidateCommand(['arm.json'], c.io), 1);
    assert.match(c.out(), /\/authenticationSettings\/msiClientId/);
  });
  it('a real file on disk with a UTF-8 BOM (PowerShell Set-Content) is read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvvm-validate-'));
    try {
      const file = join(dir, 'settings.json');
      writeFileSync(file, '\uFEFF' + JSON.stringify(sms([URL1])));
      const c = capture();
      delete c.io.readFile;
      assert.equal(await runValidateCommand([file], c.io), 0);
      assert.match(c.out(), /^.*settings\.json \(public settings, checked for linux, 4\.x profile .*no handler version given\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('an empty file is an empty settings file: invalid, not a crash', async () => {
    const c = capture({ 'empty.settings': '' });
    assert.equal(await runValidateCommand(['empty.settings'], c.io), 1);
    assert.match(c.out(), /\(settings\): The extension has no settings/);
  });
  it('a file that is not JSON: invalid, with the parser position', async () => {
    const c = capture({ 'bad.json': '{"secretsManagementSettings": ' });
    assert.equal(await runValidateCommand(['bad.json'], c.io), 1);
    assert.match(c.out(), /bad\.json is not valid JSON/);
  });
  it('usage errors exit 2: no file, two files, unknown option, bad platform, unreadable file', async () => {
    for (const argv of [[], ['a', 'b'], ['--fast', 'a'], ['a', '--platform', 'macos'], ['missing.json']]) {
      const c = capture({ a: '{}', b: '{}' });
      assert.equal(await runValidateCommand(argv, c.io), 2, argv.join(' '));
      assert.ok(c.err().length > 0, `no stderr for ${argv.join(' ')}`);
      assert.equal(c.out(), '');
    }
  });
  it('--help prints usage and exits 0', async () => {
    const c = capture();
    assert.equal(await runValidateCommand(['--help'], c.io), 0);
    assert.match(c.out(), /Usage: kvvm validate <file\.json> \[--handler-version <v>\]/);
  });
});
