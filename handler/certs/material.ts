import type { KeyObject, X509Certificate } from 'node:crypto';

/** Parsed content of one certificate-backed secret version: what a store installs. */
export interface CertificateMaterial {
  /** The leaf: the certificate whose public key matches `privateKey`. */
  leaf: X509Certificate;
  /** Other certificates that came with the secret, ordered leaf-issuer first, root last where they chain. */
  chain: X509Certificate[];
  privateKey: KeyObject;
  /** SHA-1 thumbprint of the leaf, uppercase hex without separators (Windows convention). */
  thumbprint: string;
  /** The format the secret arrived in. */
  sourceFormat: 'pkcs12' | 'pem';
  /** PKCS#12 only: the key bag's Microsoft CSP Name attribute; the 3.x Windows import keeps it (CAPI1 vs CNG). */
  keyProvider?: string;
}

/** Identity of one secret version in a vault. */
export interface CertificateVersionId {
  vaultName: string;
  secretName: string;
  version: string;
}
