/**
 * The parts of a PKCS#12 file both of kvvm's PFX builders share: ASN.1 helpers, and the outer PFX with its SHA-1
 * MAC. The dev vault builds Key Vault's password-less layout (handler/devvault/pkcs12.ts); the Windows store builds
 * the one-time-password file it hands to PFXImportCertStore (handler/stores/windows/pfx.ts).
 */
import { randomBytes } from 'node:crypto';
import forge from 'node-forge';

const { asn1, pki } = forge;
const U = asn1.Class.UNIVERSAL;
const CTX = asn1.Class.CONTEXT_SPECIFIC;

/** Key-derivation and MAC iterations: what Key Vault writes and every Windows version since 2008 imports. */
export const PKCS12_ITERATIONS = 2000;

export function oid(o: string): forge.asn1.Asn1 {
  return asn1.create(U, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
}
export function octets(bytes: string): forge.asn1.Asn1 {
  return asn1.create(U, asn1.Type.OCTETSTRING, false, bytes);
}
export function seq(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(U, asn1.Type.SEQUENCE, true, items);
}
export function set(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(U, asn1.Type.SET, true, items);
}
/** [0] EXPLICIT wrapper, as bags and ContentInfo carry their values. */
export function explicit0(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(CTX, 0, true, items);
}

/** ContentInfo of type data wrapping the DER of `inner`. */
export function dataContentInfo(inner: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(pki.oids['data'] as string), explicit0([octets(asn1.toDer(inner).getBytes())])]);
}

/**
 * The outer PFX (version 3, authSafe as data, MacData with a SHA-1 HMAC over `authSafeDer`). A null password is
 * PKCS#12's NULL password (no password bytes), which is what Key Vault uses; "" would be a different password.
 */
export function wrapPfx(authSafeDer: string, password: string | null): Buffer {
  const salt = randomBytes(20).toString('binary');
  const macKey = forge.pkcs12.generateKey(password, forge.util.createBuffer(salt), 3, PKCS12_ITERATIONS, 20);
  const hmac = forge.hmac.create();
  hmac.start('sha1', macKey.getBytes());
  hmac.update(authSafeDer);
  const macData = seq([
    seq([seq([oid(pki.oids['sha1'] as string), asn1.create(U, asn1.Type.NULL, false, '')]), octets(hmac.digest().getBytes())]),
    octets(salt),
    asn1.create(U, asn1.Type.INTEGER, false, asn1.integerToDer(PKCS12_ITERATIONS).getBytes()),
  ]);
  const pfx = seq([asn1.create(U, asn1.Type.INTEGER, false, asn1.integerToDer(3).getBytes()), seq([oid(pki.oids['data'] as string), explicit0([octets(authSafeDer)])]), macData]);
  return Buffer.from(asn1.toDer(pfx).getBytes(), 'binary');
}

/** The localKeyID attribute (01000000, as Key Vault writes it) that ties the leaf's cert bag to the key bag. */
function localKeyIdAttribute(): forge.asn1.Asn1 {
  return seq([oid(pki.oids['localKeyId'] as string), set([octets('\x01\x00\x00\x00')])]);
}

/**
 * A pkcs8ShroudedKeyBag: the PKCS#8 key encrypted with pbeWithSHAAnd3-KeyTripleDES-CBC (what every Windows since
 * 2008, Java 8 and OpenSSL 3's default provider read) under `password`; null is PKCS#12's NULL password.
 */
export function shroudedKeyBag(pkcs8Der: Buffer, password: string | null): forge.asn1.Asn1 {
  const shrouded = pki.encryptPrivateKeyInfo(asn1.fromDer(pkcs8Der.toString('binary')), password as string, { algorithm: '3des', count: PKCS12_ITERATIONS });
  return seq([oid(pki.oids['pkcs8ShroudedKeyBag'] as string), explicit0([shrouded]), set([localKeyIdAttribute()])]);
}

/** A certBag holding one DER certificate; the leaf carries the localKeyID attribute. */
export function certBag(der: Buffer, isLeaf: boolean): forge.asn1.Asn1 {
  return seq([
    oid(pki.oids['certBag'] as string),
    explicit0([seq([oid(pki.oids['x509Certificate'] as string), explicit0([octets(der.toString('binary'))])])]),
    ...(isLeaf ? [set([localKeyIdAttribute()])] : []),
  ]);
}
