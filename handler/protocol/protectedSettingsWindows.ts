/**
 * Protected settings on Windows: the Windows agent keeps the certificate the platform encrypts them to (with its
 * private key) in LocalMachine\My, so kvvm decrypts the CMS EnvelopedData the way the agent itself does, with
 * CryptDecryptMessage over that store. crypt32 finds the recipient (issuer + serial or subject key id) and its key,
 * RSA key transport and any content cipher Windows supports included: no key ever leaves the store, and the key need
 * not be exportable.
 *
 * The arguments are a pure function (decryptArgs) so tests check them on Linux (test/windows/pure/service.test.ts).
 * Wine 8 has no CryptDecryptMessage, so the Wine test (test/windows/wine/protectedSettings.test.ts) covers what runs
 * before it: the store lookup by thumbprint and its errors; the decryption itself is checked on real Windows
 * (docs/windows.md).
 */
import { KvvmError } from '../errors.js';
import { ENCODING, findBySha1, freeContext, systemStoreFlags, withSystemStore } from '../platform/win32/certStore.js';
import { win32Failure } from '../platform/win32/errors.js';
import type { StoreLocation } from '../platform/win32/certStore.js';
import { CRYPT_MESSAGE_SILENT_KEYSET_FLAG, loadNative } from '../platform/win32/native.js';
import { decryptError, parsePlaintext } from './protectedSettings.js';

const PROTECTED_SETTINGS_STORE = 'MY';

export interface DecryptArgs {
  location: StoreLocation;
  storeName: string;
  /** CertOpenStore flags (read-only, existing store). */
  openFlags: number;
  /** CRYPT_DECRYPT_MESSAGE_PARA without the store array (built at call time). */
  para: { dwMsgAndCertEncodingType: number; cCertStore: number; dwFlags: number };
}

export function decryptArgs(location: StoreLocation = 'LocalMachine', storeName = PROTECTED_SETTINGS_STORE): DecryptArgs {
  return {
    location,
    storeName,
    openFlags: systemStoreFlags(location, 'read'),
    // SILENT: a service has no desktop; a key that would need a UI prompt must fail, not hang.
    para: { dwMsgAndCertEncodingType: ENCODING, cCertStore: 1, dwFlags: CRYPT_MESSAGE_SILENT_KEYSET_FLAG },
  };
}

export interface WindowsDecryptOptions {
  /** Default LocalMachine (where the agent puts the certificate). */
  location?: StoreLocation;
  /** Default MY. Tests use a throw-away store: Wine 8's crypt32 asserts (context.c:94) adding to CurrentUser\My. */
  storeName?: string;
}

export async function decryptProtectedSettingsWindows(base64: string, thumbprint: string, options: WindowsDecryptOptions = {}): Promise<Record<string, unknown>> {
  const args = decryptArgs(options.location, options.storeName);
  const compact = base64.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 === 1) {
    throw decryptError(thumbprint, 'the protectedSettings value is not base64');
  }
  const der = Buffer.from(compact, 'base64');
  const n = loadNative();
  const plaintext = withSystemStore(n, args.location, args.storeName, 'read', (store) => {
    const where = `${args.location}\\${args.storeName}`;
    const cert = store === undefined ? undefined : findBySha1(n, store, thumbprint);
    if (store === undefined || cert === undefined) {
      throw new KvvmError('protected-settings-key-missing', `The protected settings are encrypted to certificate ${thumbprint.toUpperCase()}, which is not in ${where}.`, {
        fix: 'Let the guest agent fetch the goal-state certificates (restart the RdAgent/WindowsAzureGuestAgent services), then reapply the extension settings.',
      });
    }
    freeContext(n, cert);
    const { koffi, types } = n;
    const stores = koffi.alloc('void *', 1);
    try {
      koffi.encode(stores, 'void *', store);
      const para = { cbSize: koffi.sizeof(types.CRYPT_DECRYPT_MESSAGE_PARA), ...args.para, rghCertStore: stores };
      const out = Buffer.alloc(der.length); // the plaintext is never longer than the envelope
      const size = [out.length];
      if (!n.CryptDecryptMessage(para, der, der.length, out, size, null)) {
        throw decryptError(thumbprint, `${win32Failure('CryptDecryptMessage', n.GetLastError())} (key of ${thumbprint.toUpperCase()} in ${where})`);
      }
      return Buffer.from(out.subarray(0, size[0] ?? 0));
    } finally {
      koffi.free(stores);
    }
  });
  return parsePlaintext(plaintext, thumbprint);
}
