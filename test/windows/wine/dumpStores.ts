/**
 * Not a test: run by fixture.dumpInFreshProcess in a separate Windows node process. Reads the given system
 * stores back through crypt32 and writes what it finds as JSON to argv[2].
 * Usage: node dumpStores.js <out.json> LocalMachine\MY CurrentUser\CA ...
 */
import { writeFileSync } from 'node:fs';
import { certificateOf, forEachCertificate, getProperty, getStringProperty, openSystemStore, thumbprintOfContext } from '../../../handler/platform/win32/certStore.js';
import type { StoreLocation } from '../../../handler/platform/win32/certStore.js';
import { keyOf } from '../../../handler/platform/win32/certStore.js';
import {
  CERT_DESCRIPTION_PROP_ID,
  CERT_FRIENDLY_NAME_PROP_ID,
  CERT_RENEWAL_PROP_ID,
  CRYPT_ACQUIRE_SILENT_FLAG,
  CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG,
  CERT_NCRYPT_KEY_SPEC,
  loadNative,
} from '../../../handler/platform/win32/native.js';
import type { Dump, DumpedCertificate } from './fixture.js';

const [out, ...stores] = process.argv.slice(2);
const n = loadNative();
const dump: Dump = {};
for (const spec of stores) {
  const [location, name] = spec.split('\\') as [StoreLocation, string];
  const found: DumpedCertificate[] = [];
  const store = openSystemStore(n, location, name, 'read');
  if (store !== undefined) {
    forEachCertificate(n, store, (ctx) => {
      const key = [0n];
      const keySpec = [0];
      const callerFree = [0];
      const usable = n.CryptAcquireCertificatePrivateKey(ctx, CRYPT_ACQUIRE_SILENT_FLAG | CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG, null, key, keySpec, callerFree) !== 0;
      if (usable && callerFree[0]) {
        if (keySpec[0] === CERT_NCRYPT_KEY_SPEC) n.NCryptFreeObject(key[0]);
        else n.CryptReleaseContext(key[0], 0);
      }
      const friendlyName = getStringProperty(n, ctx, CERT_FRIENDLY_NAME_PROP_ID);
      const description = getStringProperty(n, ctx, CERT_DESCRIPTION_PROP_ID);
      const renewal = getProperty(n, ctx, CERT_RENEWAL_PROP_ID)?.toString('hex').toUpperCase();
      const prov = keyOf(n, ctx);
      const container = prov?.container;
      found.push({
        thumbprint: thumbprintOfContext(n, ctx),
        subject: certificateOf(n, ctx).subject,
        privateKeyUsable: usable,
        ...(friendlyName === undefined ? {} : { friendlyName }),
        ...(description === undefined ? {} : { description }),
        ...(renewal === undefined ? {} : { renewal }),
        ...(container === undefined ? {} : { keyContainer: container }),
        ...(prov?.provider == null ? {} : { keyProvider: prov.provider, keyProvType: prov.info.dwProvType }),
      });
    });
    n.CertCloseStore(store, 0);
  }
  dump[spec] = found;
}
writeFileSync(out ?? 'dump.json', JSON.stringify(dump, null, 2));
