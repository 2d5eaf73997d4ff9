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
import { certBag, dataContentInfo, seq, shroudedKeyBag, wrapPfx } from '../../certs/pkcs12Writer.js';

const { asn1 } = forge;

export interface ImportPfx {
  der: Buffer;
  password: string;
}

/** Throws (a plain Error) when the key cannot be exported as PKCS#8, e.g. a public key where the private key belongs. */
export function buildImportPfx(leaf: X509Certificate, privateKey: KeyObject, password = randomBytes(18).toString('base64url')): ImportPfx {
  const keyBag = shroudedKeyBag(privateKey.export({ type: 'pkcs8', format: 'der' }), password);
  const authSafeDer = asn1.toDer(seq([dataContentInfo(seq([keyBag])), dataContentInfo(seq([certBag(leaf.raw, true)]))])).getBytes();
  return { der: wrapPfx(authSafeDer, password), password };
}
