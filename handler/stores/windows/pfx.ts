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
import { MS_CSP_NAME_OID } from '../../certs/pkcs12.js';
import { dataContentInfo, explicit0, oid, octets, PKCS12_ITERATIONS, seq, set, wrapPfx } from '../../certs/pkcs12Writer.js';

const { asn1, pki } = forge;

export interface ImportPfx {
  der: Buffer;
  password: string;
}

/** Throws (a plain Error) when the key cannot be exported as PKCS#8, e.g. a public key where the private key belongs. */
export function buildImportPfx(
  leaf: X509Certificate,
  privateKey: KeyObject,
  password = randomBytes(18).toString('base64url'),
  options: { cspName?: string | undefined } = {},
): ImportPfx {
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const localKeyId = seq([oid(pki.oids['localKeyId'] as string), set([octets('\x01\x00\x00\x00')])]);
  const shrouded = pki.encryptPrivateKeyInfo(asn1.fromDer(pkcs8.toString('binary')), password, { algorithm: '3des', count: PKCS12_ITERATIONS });
  // The source PFX's provider name travels with the key: without PKCS12_PREFER_CNG_KSP (the 3.x import),
  // PFXImportCertStore puts the key into that CAPI1 provider, exactly as it would with Key Vault's own file.
  const keyAttributes = [localKeyId];
  if (options.cspName !== undefined) {
    // forge writes a BMPString value as UTF-16BE code units itself.
    keyAttributes.push(seq([oid(MS_CSP_NAME_OID), set([asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BMPSTRING, false, options.cspName)])]));
  }
  const keyBag = seq([oid(pki.oids['pkcs8ShroudedKeyBag'] as string), explicit0([shrouded]), set(keyAttributes)]);
  const certBag = seq([
    oid(pki.oids['certBag'] as string),
    explicit0([seq([oid(pki.oids['x509Certificate'] as string), explicit0([octets(leaf.raw.toString('binary'))])])]),
    set([localKeyId]),
  ]);
  const authSafeDer = asn1.toDer(seq([dataContentInfo(seq([keyBag])), dataContentInfo(seq([certBag]))])).getBytes();
  return { der: wrapPfx(authSafeDer, password), password };
}
