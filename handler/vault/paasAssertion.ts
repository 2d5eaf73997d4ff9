/**
 * The client assertion of the PaaS variant (authenticationSettings.clientId + clientCertificateSubjectName), as a
 * PURE function: a JWT (RS256) that proves to Microsoft Entra ID that this machine holds the bootstrap
 * certificate's private key. The signature itself is made by whoever holds the key (on Windows: crypt32/ncrypt
 * with the store's key, which need not be exportable; see platform/win32/bootstrapKey.ts).
 *
 * Format (Microsoft identity platform "certificate credentials"): header {alg: RS256, typ: JWT, x5t: base64url
 * SHA-1 of the certificate DER}; claims {aud: <authority>/<tenant>/oauth2/v2.0/token, iss = sub = client id,
 * jti: a fresh UUID, nbf: now, exp: now + 10 min}.
 */
import { createHash } from 'node:crypto';

export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';
/** Lifetime of one assertion; MSAL asks for a new one for every token request. */
const ASSERTION_LIFETIME_S = 600;

export interface ClientAssertionInput {
  clientId: string;
  tenantId: string;
  /** e.g. https://login.microsoftonline.com (AZURE_AUTHORITY_HOST); a trailing slash is ignored. */
  authorityHost: string;
  /** The bootstrap certificate (DER): its SHA-1 is the header's x5t. */
  certificateDer: Buffer;
  nowMs: number;
  /** A random UUID (crypto.randomUUID()), passed in so tests see exact claims. */
  jti: string;
}

interface ClientAssertionHeader {
  alg: 'RS256';
  typ: 'JWT';
  x5t: string;
}
interface ClientAssertionClaims {
  aud: string;
  iss: string;
  sub: string;
  jti: string;
  nbf: number;
  exp: number;
}

export interface UnsignedAssertion {
  header: ClientAssertionHeader;
  claims: ClientAssertionClaims;
  /** base64url(header) "." base64url(claims): the bytes RS256 signs (SHA-256, PKCS#1 v1.5). */
  signingInput: Buffer;
}

/** The token endpoint Entra ID expects as the assertion's audience. */
export function assertionAudience(authorityHost: string, tenantId: string): string {
  return `${authorityHost.replace(/\/+$/, '')}/${tenantId}/oauth2/v2.0/token`;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export function unsignedClientAssertion(input: ClientAssertionInput): UnsignedAssertion {
  const header: ClientAssertionHeader = { alg: 'RS256', typ: 'JWT', x5t: base64url(createHash('sha1').update(input.certificateDer).digest()) };
  const nbf = Math.floor(input.nowMs / 1000);
  const claims: ClientAssertionClaims = {
    aud: assertionAudience(input.authorityHost, input.tenantId),
    iss: input.clientId,
    sub: input.clientId,
    jti: input.jti,
    nbf,
    exp: nbf + ASSERTION_LIFETIME_S,
  };
  return { header, claims, signingInput: Buffer.from(`${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`, 'ascii') };
}

/** The complete JWT; `sign` gets the signing input and returns the RSASSA-PKCS1-v1_5 SHA-256 signature (big-endian). */
export function clientAssertion(input: ClientAssertionInput, sign: (signingInput: Buffer) => Buffer): string {
  const unsigned = unsignedClientAssertion(input);
  return `${unsigned.signingInput.toString('ascii')}.${base64url(sign(unsigned.signingInput))}`;
}
