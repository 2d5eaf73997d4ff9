/**
 * Chain validation for server-auth leaves the Windows way: CertGetCertificateChain (with the secret's own
 * certificates as the additional store, AIA fetching off) + CertVerifyCertificateChainPolicy(SSL) + our own look
 * at TrustStatus.dwErrorStatus (Wine's SSL policy accepts partial chains; Windows' does not, checking both is
 * right on both).
 */
import type { CertificateMaterial } from '../../certs/material.js';
import { KvvmError } from '../../errors.js';
import { ENCODING } from '../../platform/win32/certStore.js';
import { win32Error } from '../../platform/win32/errors.js';
import type { StoreLocation } from '../../platform/win32/certStore.js';
import {
  AUTHTYPE_SERVER,
  CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL,
  CERT_CHAIN_DISABLE_AIA,
  CERT_CHAIN_POLICY_SSL,
  CERT_STORE_ADD_USE_EXISTING,
  HCCE_CURRENT_USER,
  HCCE_LOCAL_MACHINE,
  USAGE_MATCH_TYPE_AND,
  hex32,
  loadNative,
  type Handle,
  type Native,
} from '../../platform/win32/native.js';

const CERT_STORE_PROV_MEMORY = 2;
const OID_PKIX_KP_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** CERT_TRUST_* error bits (wincrypt.h), for messages. */
const TRUST_ERRORS: Array<[number, string]> = [
  [0x1, 'CERT_TRUST_IS_NOT_TIME_VALID'],
  [0x4, 'CERT_TRUST_IS_REVOKED'],
  [0x8, 'CERT_TRUST_IS_NOT_SIGNATURE_VALID'],
  [0x10, 'CERT_TRUST_IS_NOT_VALID_FOR_USAGE'],
  [0x20, 'CERT_TRUST_IS_UNTRUSTED_ROOT'],
  [0x40, 'CERT_TRUST_REVOCATION_STATUS_UNKNOWN'],
  [0x80, 'CERT_TRUST_IS_CYCLIC'],
  [0x10000, 'CERT_TRUST_IS_PARTIAL_CHAIN'],
  [0x1000000, 'CERT_TRUST_IS_OFFLINE_REVOCATION'],
];

export function trustErrorNames(status: number): string[] {
  return TRUST_ERRORS.filter(([bit]) => (status & bit) !== 0).map(([, name]) => name);
}

/** The chain-building flags: no network (AIA off, cache-only URL retrieval), no revocation check. */
export function chainFlags(): number {
  return (CERT_CHAIN_DISABLE_AIA | CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL) >>> 0;
}

export function chainEngineFor(location: StoreLocation): number {
  return location === 'LocalMachine' ? HCCE_LOCAL_MACHINE : HCCE_CURRENT_USER;
}

export interface ChainVerdict {
  ok: boolean;
  /** TrustStatus.dwErrorStatus of the chain context. */
  errorStatus: number;
  /** CERT_CHAIN_POLICY_STATUS.dwError from the SSL policy (an HRESULT, 0 = passed). */
  policyError: number;
}

export function verifyServerAuthChain(material: CertificateMaterial, location: StoreLocation, n: Native = loadNative()): ChainVerdict {
  const extra = n.CertOpenStore(CERT_STORE_PROV_MEMORY, 0, null, 0, null) as Handle | null;
  if (!extra) throw win32Error('CertOpenStore', n.GetLastError(), 'open a memory store for the chain');
  let leaf: Handle | null = null;
  let chain: Handle | null = null;
  try {
    for (const c of material.chain) {
      if (!n.CertAddEncodedCertificateToStore(extra, ENCODING, c.raw, c.raw.length, CERT_STORE_ADD_USE_EXISTING, null)) {
        throw win32Error('CertAddEncodedCertificateToStore', n.GetLastError(), `add "${c.subject}" to the chain store`);
      }
    }
    const der = material.leaf.raw;
    leaf = n.CertCreateCertificateContext(ENCODING, der, der.length) as Handle | null;
    if (!leaf) throw win32Error('CertCreateCertificateContext', n.GetLastError(), 'decode the leaf certificate');
    const para = {
      cbSize: n.koffi.sizeof(n.types.CERT_CHAIN_PARA),
      dwType: USAGE_MATCH_TYPE_AND,
      cUsageIdentifier: 1,
      rgpszUsageIdentifier: [OID_PKIX_KP_SERVER_AUTH],
    };
    const out: [Handle | null] = [null];
    if (!n.CertGetCertificateChain(chainEngineFor(location), leaf, null, extra, para, chainFlags(), null, out) || !out[0]) {
      throw win32Error('CertGetCertificateChain', n.GetLastError(), `build the chain of ${material.thumbprint}`);
    }
    chain = out[0];
    const head = n.koffi.decode(chain, n.types.CERT_CHAIN_CONTEXT_HEAD) as { dwErrorStatus: number };
    const policyPara = {
      cbSize: n.koffi.sizeof(n.types.CERT_CHAIN_POLICY_PARA),
      dwFlags: 0,
      pvExtraPolicyPara: { cbSize: n.koffi.sizeof(n.types.SSL_EXTRA_CERT_CHAIN_POLICY_PARA), dwAuthType: AUTHTYPE_SERVER, fdwChecks: 0, pwszServerName: null },
    };
    const status = { cbSize: n.koffi.sizeof(n.types.CERT_CHAIN_POLICY_STATUS), dwError: 0, lChainIndex: 0, lElementIndex: 0, pvExtraPolicyStatus: null };
    if (!n.CertVerifyCertificateChainPolicy(CERT_CHAIN_POLICY_SSL, chain, policyPara, status)) {
      throw win32Error('CertVerifyCertificateChainPolicy', n.GetLastError(), `check the SSL policy for ${material.thumbprint}`);
    }
    const errorStatus = head.dwErrorStatus >>> 0;
    const policyError = status.dwError >>> 0;
    return { ok: errorStatus === 0 && policyError === 0, errorStatus, policyError };
  } finally {
    if (chain) n.CertFreeCertificateChain(chain);
    if (leaf) n.CertFreeCertificateContext(leaf);
    n.CertCloseStore(extra, 0);
  }
}

/** The service's checkChain on Windows: a KvvmError for a server-auth leaf Windows would not trust. */
export function windowsChainError(material: CertificateMaterial, location: StoreLocation, n?: Native): KvvmError | undefined {
  const verdict = verifyServerAuthChain(material, location, n);
  if (verdict.ok) return undefined;
  const problems = [...trustErrorNames(verdict.errorStatus), ...(verdict.policyError ? [`SSL policy ${hex32(verdict.policyError)}`] : [])];
  return new KvvmError(
    'chain-untrusted',
    `Windows does not trust the certificate ${material.thumbprint} for server authentication: ${problems.join(', ') || hex32(verdict.errorStatus)}.`,
    {
      fix: 'Upload the full chain (leaf, intermediates) to Key Vault and make sure its root is in the LocalMachine\\Root store.',
    },
  );
}
