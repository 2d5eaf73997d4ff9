import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCertificateSecret } from '../../../handler/certs/parse.js';
import { KvvmError } from '../../../handler/errors.js';
import { decryptProtectedSettingsWindows } from '../../../handler/protocol/protectedSettingsWindows.js';
import { createWindowsStore } from '../../../handler/stores/windows/windowsStore.js';
import { deleteSystemStore, dumpInFreshProcess, observed, uniqueStoreName } from './fixture.js';

/**
 * Protected settings on Windows, inside Windows Node: the transport certificate and key (made by openssl on the
 * Linux side) are imported into CurrentUser\My, the envelopes were made by `openssl cms -encrypt`.
 * Wine 8 has no CryptDecryptMessage (measured: "Call ... to unimplemented function crypt32.dll.CryptDecryptMessage,
 * aborting" — the whole process dies) and its CryptMsgControl(CMSG_CTRL_DECRYPT) rejects enveloped messages, so the
 * decryption itself is covered by the argument test (pure/service.test.ts) and the PowerShell check in
 * docs/windows.md; what runs here is everything before that call: the store lookup by thumbprint and its errors.
 */
interface ProtectedFixture {
  thumbprint: string;
  secret: string;
  payload: unknown;
  aes256: string;
  des3: string;
  toOther: string;
  otherThumbprint: string;
}

function fixture(): ProtectedFixture {
  const dir = process.env['KVVM_WINE_FIXTURES'];
  if (!dir) throw new Error('KVVM_WINE_FIXTURES is not set: run these tests through `npm run test:windows`');
  return JSON.parse(readFileSync(join(dir, 'protected.json'), 'utf8')) as ProtectedFixture;
}

describe('protected settings: the transport certificate looked up in a CurrentUser store', () => {
  const f = fixture();
  const store = createWindowsStore();
  // A throw-away store, not My: Wine 8's crypt32 asserts (context.c:94 "!context->ref") when kvvm adds to CurrentUser\My.
  const storeName = uniqueStoreName();
  const where = { location: 'CurrentUser' as const, storeName };
  const target = observed('CurrentUser', storeName, 'protected-settings-cert', { keyExportable: false });
  const id = { vaultName: 'kvvmtest', secretName: target.secretName, version: 'p'.repeat(32) };
  before(async () => {
    await store.install(target, id, parseCertificateSecret(f.secret, 'application/x-pem-file'));
  });
  after(async () => {
    await store.removeAll(target);
    deleteSystemStore('CurrentUser', storeName);
  });

  it('the imported transport certificate is found in the store by its thumbprint (a fresh process reads it back)', () => {
    const dump = dumpInFreshProcess([`CurrentUser\\${storeName}`])[`CurrentUser\\${storeName}`] ?? [];
    assert.ok(
      dump.some((c) => c.thumbprint === f.thumbprint.toUpperCase() && c.privateKeyUsable),
      `${f.thumbprint} (with its key) not in ${storeName}`,
    );
  });
  it('a thumbprint that is not in the store is protected-settings-key-missing, naming the store', async () => {
    await assert.rejects(decryptProtectedSettingsWindows(f.toOther, f.otherThumbprint, where), (err: unknown) => {
      assert.ok(err instanceof KvvmError);
      assert.equal(err.reason, 'protected-settings-key-missing');
      assert.ok(err.message.includes(`CurrentUser\\${storeName}`), err.message);
      return true;
    });
  });
  it('text that is not base64 is refused before any crypt32 call', async () => {
    await assert.rejects(decryptProtectedSettingsWindows('not base64!', f.thumbprint, where), { reason: 'protected-settings-decrypt' });
  });
});
