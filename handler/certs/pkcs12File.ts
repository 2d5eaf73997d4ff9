/**
 * The PKCS#12 file kvvm writes for Java and .NET consumers on Linux (format "pfx"): the key, the leaf and the
 * chain in Key Vault's order, without a password (PKCS#12's NULL password, as Key Vault's own PFX secrets) or with
 * the operator's password. 3DES + SHA-1 MAC at 2000 iterations, like Key Vault's files, so whatever reads a
 * Key Vault PFX reads this one.
 */
import forge from 'node-forge';
import type { CertificateMaterial } from './material.js';
import { certBag, dataContentInfo, seq, shroudedKeyBag, wrapPfx } from './pkcs12Writer.js';

export function buildPkcs12File(material: CertificateMaterial, password: string | null): Buffer {
  const keyBag = shroudedKeyBag(material.privateKey.export({ type: 'pkcs8', format: 'der' }), password);
  const certs = [material.leaf, ...material.chain].map((c, i) => certBag(c.raw, i === 0));
  const authSafeDer = forge.asn1.toDer(seq([dataContentInfo(seq([keyBag])), dataContentInfo(seq(certs))])).getBytes();
  return wrapPfx(authSafeDer, password);
}
