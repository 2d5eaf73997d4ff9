/**
 * The PKCS#12 kvvm hands to PFXImportCertStore, built in JS from the parsed material, for PFX and PEM secrets
 * alike (one import path). It holds the leaf and its key only; intermediates go into the CA store separately.
 *
 * Protected by a random one-time password rather than Key Vault's NULL password: Wine's PFX decoder (GnuTLS)
 * cannot decrypt NULL-password files (measured: Key Vault's own PFX secrets fail to import under Wine, openssl's
 * "" and password files import), and a password works identically on Windows. 3DES + SHA-1 MAC, 2000 iterations:
 * the algorithms every Windows version since 2008 imports (AES/PBES2 PFX need Windows Server 2019+).
 * The key bag takes any PKCS#8 key (RSA or EC); node-forge only builds the envelope.
 */
import { randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import forge from 'node-forge';

const { asn1, pki } = forge;
const U = asn1.Class.UNIVERSAL;
const CTX = asn1.Class.CONTEXT_SPECIFIC;
const ITERATIONS = 2000;

export interface ImportPfx {
  der: Buffer;
  password: string;
}

function oid(o: string): forge.asn1.Asn1 {
  return asn1.create(U, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
}
function octets(bytes: string): forge.asn1.Asn1 {
  return asn1.create(U, asn1.Type.OCTETSTRING, false, bytes);
}
function seq(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(U, asn1.Type.SEQUENCE, true, items);
}
function set(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(U, asn1.Type.SET, true, items);
}
function dataContentInfo(inner: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(pki.oids['data'] as string), asn1.create(CTX, 0, true, [octets(asn1.toDer(inner).getBytes())])]);
}

/** Throws (a plain Error) when the key cannot be exported as PKCS#8, e.g. a public key where the private key belongs. */
export function buildImportPfx(leaf: X509Certificate, privateKey: KeyObject, password = randomBytes(18).toString('base64url')): ImportPfx {
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const localKeyId = seq([oid(pki.oids['localKeyId'] as string), set([octets('\x01\x00\x00\x00')])]);
  const shrouded = pki.encryptPrivateKeyInfo(asn1.fromDer(pkcs8.toString('binary')), password, { algorithm: '3des', count: ITERATIONS });
  const keyBag = seq([oid(pki.oids['pkcs8ShroudedKeyBag'] as string), asn1.create(CTX, 0, true, [shrouded]), set([localKeyId])]);
  const certBag = seq([
    oid(pki.oids['certBag'] as string),
    asn1.create(CTX, 0, true, [seq([oid(pki.oids['x509Certificate'] as string), asn1.create(CTX, 0, true, [octets(leaf.raw.toString('binary'))])])]),
    set([localKeyId]),
  ]);
  const authSafeDer = asn1.toDer(seq([dataContentInfo(seq([keyBag])), dataContentInfo(seq([certBag]))])).getBytes();

  const salt = randomBytes(20).toString('binary');
  const macKey = forge.pkcs12.generateKey(password, forge.util.createBuffer(salt), 3, ITERATIONS, 20);
  const hmac = forge.hmac.create();
  hmac.start('sha1', macKey.getBytes());
  hmac.update(authSafeDer);
  const macData = seq([
    seq([seq([oid(pki.oids['sha1'] as string), asn1.create(U, asn1.Type.NULL, false, '')]), octets(hmac.digest().getBytes())]),
    octets(salt),
    asn1.create(U, asn1.Type.INTEGER, false, asn1.integerToDer(ITERATIONS).getBytes()),
  ]);
  const pfx = seq([
    asn1.create(U, asn1.Type.INTEGER, false, asn1.integerToDer(3).getBytes()),
    seq([oid(pki.oids['data'] as string), asn1.create(CTX, 0, true, [octets(authSafeDer)])]),
    macData,
  ]);
  return { der: Buffer.from(asn1.toDer(pfx).getBytes(), 'binary'), password };
}
