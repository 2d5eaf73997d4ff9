import assert from 'node:assert/strict';
import { it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { issueWineImportableCertificate, shortRsaComponents } from './helpers/wineKeys.js';

const rsaKeyPem = (bits: number): string => generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** The filter the Wine tests rely on (test/helpers/wineKeys.ts): it must see a short component, and the issuer must skip such keys. */
it('finds an RSA component with a leading zero byte, and issueWineImportableCertificate never returns one', () => {
  let found: string[] = [];
  for (let i = 0; i < 2000 && found.length === 0; i++) found = shortRsaComponents(rsaKeyPem(1024), 1024);
  assert.ok(found.length > 0, 'no key with a short component in 2,000 draws (about 1 in 40 has one)');
  assert.ok(found.every((c) => ['d', 'p', 'q', 'dp', 'dq', 'qi'].includes(c)));
  for (let i = 0; i < 40; i++) assert.deepEqual(shortRsaComponents(issueWineImportableCertificate({ subjectCn: 'k', keyBits: 1024 }).keyPem, 1024), []);
});
