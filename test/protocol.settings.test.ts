import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KvvmError } from '../handler/errors.js';
import { readHandlerSettings } from '../handler/protocol/settingsFile.js';
import { cmsEncrypt, makeAgentLayout, makeCertificate, type AgentLayout } from './helpers/agentFolder.js';

const root = mkdtempSync(join(tmpdir(), 'kvvm-settings-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SECRET = 'S3cr3t-never-in-messages';
const protectedValue = { authenticationSettings: { msiClientId: SECRET }, secretsManagementSettings: { extra: SECRET } };
const publicValue = { secretsManagementSettings: { pollingIntervalInS: '3600', observedCertificates: ['https://v.vault.azure.net/secrets/c'] } };

let counter = 0;
function layout(): AgentLayout {
  return makeAgentLayout(join(root, `agent-${counter++}`));
}
function read(l: AgentLayout, seq: number, opts: { openssl?: string | false } = {}) {
  return readHandlerSettings(l.configFolder, seq, { protectedSettingsKeyDir: l.waagentDir, ...opts });
}
async function failure(p: Promise<unknown>): Promise<KvvmError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KvvmError, `expected KvvmError, got ${String(err)}`);
    assert.ok(!err.message.includes(SECRET) && !(err.fix ?? '').includes(SECRET), 'no protected value in the error');
    return err;
  }
  assert.fail('expected a rejection');
}

describe('readHandlerSettings: public settings', () => {
  test('an empty 0.settings (extension without settings) gives empty settings', async () => {
    const l = layout();
    l.writeSettings(0, null);
    assert.deepEqual(await read(l, 0), { settings: {}, publicSettings: undefined, hadProtectedSettings: false });
    l.writeSettingsText(1, '  \n\t ');
    assert.deepEqual((await read(l, 1)).settings, {});
  });

  test('public settings are returned as written, null protected settings are absent', async () => {
    const l = layout();
    l.writeSettings(3, publicValue);
    assert.deepEqual(await read(l, 3), { settings: publicValue, publicSettings: publicValue, hadProtectedSettings: false });
  });

  test('handlerSettings null and publicSettings null both give empty settings', async () => {
    const l = layout();
    l.writeSettingsText(1, '{"runtimeSettings":[{"handlerSettings":null}]}');
    assert.deepEqual((await read(l, 1)).settings, {});
    l.writeSettingsText(2, '{"runtimeSettings":[{"handlerSettings":{"publicSettings":null,"protectedSettings":null,"protectedSettingsCertThumbprint":null}}]}');
    assert.deepEqual(await read(l, 2), { settings: {}, publicSettings: undefined, hadProtectedSettings: false });
  });

  test('double-encoded public settings (a JSON string) are passed through untouched for validation to decode', async () => {
    const l = layout();
    const encoded = JSON.stringify(publicValue);
    l.writeSettings(4, encoded);
    const result = await read(l, 4);
    assert.equal(result.publicSettings, encoded);
    assert.equal(result.settings, encoded);
  });

  const corrupt: Array<[string, string, RegExp]> = [
    ['invalid JSON', '{"runtimeSettings": [}', /4\.settings is corrupt: not valid JSON/],
    ['truncated JSON', '{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"a"', /at character 61: the text ends too early/],
    ['JSON error on line 3', '{\n"runtimeSettings":\n[{ "x" }]}', /line 3, column 8/],
    ['unexpected token (V8 gives no position, kvvm finds it)', '{"runtimeSettings": [{"a": }]}', /not valid JSON at character 27 \(line 1, column 28\): unexpected character/],
    ['runtimeSettings empty', '{"runtimeSettings":[]}', /runtimeSettings" is missing or empty/],
    ['runtimeSettings missing', '{}', /runtimeSettings" is missing or empty/],
    ['top level array', '[1]', /runtimeSettings/],
    ['runtimeSettings[0] a string', '{"runtimeSettings":["x"]}', /runtimeSettings\[0\]/],
    ['handlerSettings an array', '{"runtimeSettings":[{"handlerSettings":[]}]}', /handlerSettings" is not an object/],
    ['protectedSettings a number', '{"runtimeSettings":[{"handlerSettings":{"protectedSettings":5,"protectedSettingsCertThumbprint":"AB"}}]}', /not a base64 string/],
    ['protected settings without a thumbprint', '{"runtimeSettings":[{"handlerSettings":{"protectedSettings":"MIIB"}}]}', /Thumbprint" is missing/],
    ['a thumbprint that is a path', `{"runtimeSettings":[{"handlerSettings":{"protectedSettings":"MIIB","protectedSettingsCertThumbprint":"../../etc/passwd"}}]}`, /not a SHA-1/],
  ];
  for (const [label, text, expected] of corrupt) {
    test(`${label} → settings-corrupt naming the file`, async () => {
      const l = layout();
      l.writeSettingsText(4, text);
      const err = await failure(read(l, 4));
      assert.equal(err.reason, 'settings-corrupt');
      assert.ok(err.message.includes(join(l.configFolder, '4.settings')));
      assert.match(err.message, expected);
    });
  }

  test('a settings file that does not exist is no-settings', async () => {
    const err = await failure(read(layout(), 9));
    assert.equal(err.reason, 'no-settings');
  });
});

describe('readHandlerSettings: protected settings (real openssl cms envelopes)', () => {
  for (const cipher of ['aes256', 'aes128', 'des3'] as const) {
    test(`decrypts a ${cipher} envelope and deep-merges it over the public settings`, async () => {
      const l = layout();
      l.writeSettings(1, publicValue, protectedValue, { cipher });
      const result = await read(l, 1, { openssl: false }); // node-forge alone must handle the agent's ciphers
      assert.equal(result.hadProtectedSettings, true);
      assert.deepEqual(result.publicSettings, publicValue);
      assert.deepEqual(result.settings, {
        secretsManagementSettings: { ...publicValue.secretsManagementSettings, extra: SECRET },
        authenticationSettings: { msiClientId: SECRET },
      });
    });
  }

  test('a PKCS#1 ("BEGIN RSA PRIVATE KEY") .prv works as well as PKCS#8', async () => {
    const l = layout();
    const cert = makeCertificate(l.waagentDir, 'pkcs1', { traditional: true });
    l.writeSettings(1, null, protectedValue, { encryptTo: cert });
    assert.deepEqual((await read(l, 1, { openssl: false })).settings, protectedValue);
  });

  test('protected settings are merged over double-encoded public settings instead of being lost', async () => {
    const l = layout();
    l.writeSettings(1, JSON.stringify({ a: 1, authenticationSettings: { msiEndpoint: 'x' } }), protectedValue);
    const result = await read(l, 1);
    assert.deepEqual(result.settings, { a: 1, authenticationSettings: { msiEndpoint: 'x', msiClientId: SECRET }, secretsManagementSettings: { extra: SECRET } });
  });

  for (const [label, options] of [
    ['subject-key-identifier recipient (-keyid)', { keyid: true }],
    ['AES-256-GCM AuthEnvelopedData', { cipher: 'aes-256-gcm' as const }],
  ] as const) {
    test(`an envelope node-forge cannot read (${label}) is decrypted by openssl cms instead`, async () => {
      const l = layout();
      l.writeSettings(1, null, protectedValue, options);
      assert.deepEqual((await read(l, 1)).settings, protectedValue);
      const err = await failure(read(l, 1, { openssl: false }));
      assert.equal(err.reason, 'protected-settings-decrypt');
      const missing = await failure(read(l, 1, { openssl: join(root, 'no-such-openssl') }));
      assert.equal(missing.reason, 'protected-settings-decrypt');
      assert.match(missing.message, /not installed/);
    });
  }

  test('a thumbprint with no certificate on disk → protected-settings-key-missing naming the thumbprint and paths', async () => {
    const l = layout();
    const thumb = 'AB'.repeat(20);
    l.writeSettings(1, null, protectedValue, { thumbprint: thumb });
    const err = await failure(read(l, 1));
    assert.equal(err.reason, 'protected-settings-key-missing');
    assert.ok(err.message.includes(thumb));
    assert.ok(err.message.includes(join(l.waagentDir, `${thumb}.crt`)));
    assert.ok(err.message.includes(join(l.waagentDir, `${thumb}.prv`)));
  });

  test('a missing .prv → protected-settings-key-missing naming the .prv only', async () => {
    const l = layout();
    l.writeSettings(1, null, protectedValue);
    unlinkSync(l.certificate().prvPath);
    const err = await failure(read(l, 1));
    assert.equal(err.reason, 'protected-settings-key-missing');
    assert.ok(err.message.includes(l.certificate().prvPath));
    assert.ok(!err.message.includes(l.certificate().crtPath));
  });

  test('a lower-case thumbprint in the settings still finds the upper-case files the agent writes', async () => {
    const l = layout();
    l.writeSettings(1, null, protectedValue, { thumbprint: l.certificate().thumbprint.toLowerCase() });
    assert.deepEqual((await read(l, 1)).settings, protectedValue);
  });

  test('an envelope encrypted to another certificate → protected-settings-decrypt', async () => {
    const l = layout();
    const other = makeCertificate(join(root, 'elsewhere'), 'other');
    l.writeSettings(1, null, protectedValue, { encryptTo: other, thumbprint: l.certificate().thumbprint });
    const err = await failure(read(l, 1));
    assert.equal(err.reason, 'protected-settings-decrypt');
    assert.match(err.message, /different certificate/);
  });

  const blobs: Array<[string, (good: string) => string]> = [
    ['not base64 at all', () => 'this is *not* base64!'],
    ['base64 of garbage', () => Buffer.from('garbage, not DER').toString('base64')],
    ['truncated envelope', (good) => good.slice(0, Math.floor(good.length / 2) & ~3)],
    ['empty after whitespace', () => '   '],
  ];
  for (const [label, mangle] of blobs) {
    test(`corrupted protectedSettings (${label}) → an error, never a crash`, async () => {
      const l = layout();
      const good = cmsEncrypt(JSON.stringify(protectedValue), l.certificate());
      const text = JSON.stringify({
        runtimeSettings: [{ handlerSettings: { publicSettings: null, protectedSettings: mangle(good), protectedSettingsCertThumbprint: l.certificate().thumbprint } }],
      });
      l.writeSettingsText(1, text);
      const err = await failure(read(l, 1));
      assert.equal(err.reason, 'protected-settings-decrypt');
    });
  }

  test('a tampered ciphertext byte fails to decrypt or to parse, without leaking anything', async () => {
    const l = layout();
    const der = Buffer.from(cmsEncrypt(JSON.stringify(protectedValue), l.certificate()), 'base64');
    der[der.length - 20] = der[der.length - 20]! ^ 0xff;
    l.writeSettingsText(
      1,
      JSON.stringify({ runtimeSettings: [{ handlerSettings: { protectedSettings: der.toString('base64'), protectedSettingsCertThumbprint: l.certificate().thumbprint } }] }),
    );
    const err = await failure(read(l, 1, { openssl: false }));
    assert.ok(['protected-settings-decrypt', 'protected-settings-corrupt'].includes(err.reason), err.reason);
  });

  for (const [label, plaintext, expected] of [
    ['not JSON', `password=${SECRET}`, /not valid JSON/],
    ['a JSON string', JSON.stringify(SECRET), /not a JSON object/],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /not UTF-8/],
  ] as const) {
    test(`decrypted content that is ${label} → protected-settings-corrupt without quoting it`, async () => {
      const l = layout();
      const blob = cmsEncrypt(plaintext, l.certificate());
      l.writeSettingsText(1, JSON.stringify({ runtimeSettings: [{ handlerSettings: { protectedSettings: blob, protectedSettingsCertThumbprint: l.certificate().thumbprint } }] }));
      const err = await failure(read(l, 1));
      assert.equal(err.reason, 'protected-settings-corrupt');
      assert.match(err.message, expected);
    });
  }
});
