/**
 * Builds a PKCS#12 the way Key Vault does (see /work/shared/KEYVAULT.md and vectors/keyvault/README.md):
 * - password-less, meaning the NULL password (zero-length BMPString), NOT the empty string "" (which is a
 *   two-byte terminator). OpenSSL's `-passin pass:` tries both, node-forge needs `null`.
 * - a pkcs8ShroudedKeyBag and an EncryptedData cert bag, both pbeWithSHAAnd3-KeyTripleDES-CBC, 2000 iterations;
 * - SHA-1 HMAC, 2000 iterations, 20-byte salt;
 * - bag attributes localKeyID 01000000, a GUID friendlyName and the "Microsoft CSP Name" on the key.
 *
 * node-forge's toPkcs12Asn1 cannot produce this: with a null password it writes an UNencrypted key bag and it
 * never encrypts certificate bags. So we assemble the ASN.1 here from forge's primitives.
 */
import { randomUUID } from 'node:crypto';
import forge from 'node-forge';
import { dataContentInfo, oid, octets, PKCS12_ITERATIONS as ITERATIONS, seq, set, wrapPfx } from '../certs/pkcs12Writer.js';

const { asn1, pki } = forge;
const U = asn1.Class.UNIVERSAL;
const CTX = asn1.Class.CONTEXT_SPECIFIC;

/** szOID_LOCAL_MACHINE_KEYSET's sibling: the CSP name Windows PFXImportCertStore reads. */
const OID_MS_CSP_NAME = '1.3.6.1.4.1.311.17.1';
const MS_CSP_NAME = 'Microsoft Enhanced RSA and AES Cryptographic Provider';

function attribute(attrOid: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(attrOid), set([value])]);
}

/**
 * ContentInfo of type encryptedData (PKCS#7) holding `inner` encrypted with 3DES under the NULL password.
 * forge's encryptPrivateKeyInfo does exactly the PKCS#12 PBE we need on any ASN.1 value and returns
 * SEQUENCE { AlgorithmIdentifier, OCTET STRING }; we re-wrap those two parts as an EncryptedContentInfo.
 */
function encryptedContentInfo(inner: forge.asn1.Asn1): forge.asn1.Asn1 {
  const enc = pki.encryptPrivateKeyInfo(inner, null as unknown as string, { algorithm: '3des', count: ITERATIONS });
  const parts = enc.value as forge.asn1.Asn1[];
  const algorithm = parts[0];
  const cipherText = parts[1];
  if (!algorithm || !cipherText) throw new Error('kvvm: unexpected EncryptedPrivateKeyInfo shape from node-forge');
  return asn1.create(U, asn1.Type.SEQUENCE, true, [
    oid(pki.oids['encryptedData'] as string),
    asn1.create(CTX, 0, true, [
      asn1.create(U, asn1.Type.SEQUENCE, true, [
        asn1.create(U, asn1.Type.INTEGER, false, asn1.integerToDer(0).getBytes()),
        asn1.create(U, asn1.Type.SEQUENCE, true, [
          oid(pki.oids['data'] as string),
          algorithm,
          // encryptedContent [0] IMPLICIT OCTET STRING
          asn1.create(CTX, 0, false, cipherText.value),
        ]),
      ]),
    ]),
  ]);
}

/** DER bytes of a password-less PKCS#12. `keyPem` undefined models a non-exportable key (certificates only). */
export function buildPasswordlessPkcs12(keyPem: string | undefined, certPems: string[]): Buffer {
  const localKeyId = attribute(pki.oids['localKeyId'] as string, octets('\x01\x00\x00\x00'));

  const certBags = certPems.map((pem, i) =>
    asn1.create(U, asn1.Type.SEQUENCE, true, [
      oid(pki.oids['certBag'] as string),
      asn1.create(CTX, 0, true, [
        asn1.create(U, asn1.Type.SEQUENCE, true, [
          oid(pki.oids['x509Certificate'] as string),
          asn1.create(CTX, 0, true, [octets(asn1.toDer(pki.certificateToAsn1(pki.certificateFromPem(pem))).getBytes())]),
        ]),
      ]),
      // Only the leaf (first) carries the localKeyID that ties it to the key, like Key Vault's files.
      ...(i === 0 && keyPem !== undefined ? [asn1.create(U, asn1.Type.SET, true, [localKeyId])] : []),
    ]),
  );

  const contents: forge.asn1.Asn1[] = [];
  if (keyPem !== undefined) {
    const keyInfo = asn1.fromDer(forge.pem.decode(keyPem)[0]?.body ?? '');
    const shrouded = pki.encryptPrivateKeyInfo(keyInfo, null as unknown as string, { algorithm: '3des', count: ITERATIONS });
    const keyBag = asn1.create(U, asn1.Type.SEQUENCE, true, [
      oid(pki.oids['pkcs8ShroudedKeyBag'] as string),
      asn1.create(CTX, 0, true, [shrouded]),
      asn1.create(U, asn1.Type.SET, true, [
        localKeyId,
        attribute(pki.oids['friendlyName'] as string, asn1.create(U, asn1.Type.BMPSTRING, false, randomUUID())),
        attribute(OID_MS_CSP_NAME, asn1.create(U, asn1.Type.BMPSTRING, false, MS_CSP_NAME)),
      ]),
    ]);
    contents.push(dataContentInfo(asn1.create(U, asn1.Type.SEQUENCE, true, [keyBag])));
  }
  if (certBags.length > 0) contents.push(encryptedContentInfo(asn1.create(U, asn1.Type.SEQUENCE, true, certBags)));

  const authSafeDer = asn1.toDer(seq(contents)).getBytes();
  // MAC under the NULL password (forge treats null as "no password bytes", the PKCS#12 NULL password).
  return wrapPfx(authSafeDer, null);
}
