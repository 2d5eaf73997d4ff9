import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { childrenOf, expectUniversal, oid, readOne, sequenceOf, smallInteger, TAG } from './der.js';

/**
 * A PKCS#8 private key (DER) as a KeyObject, as `createPrivateKey({ format: 'der', type: 'pkcs8' })` reads it, at a
 * fraction of the CPU for RSA keys.
 *
 * OpenSSL 3 decodes a DER key through its decoder framework: ~350 µs of CPU for an RSA 2048 key (Node 20, OpenSSL
 * 3.0), against ~10 µs to import the same key from its JWK components. Every certificate a VM installs pays it, and
 * a fleet of instances on one host pays it thousands of times (bench/README.md figure 5). So an RSA key's nine
 * INTEGERs are read here and imported as a JWK, and that key is used only when ITS OWN PKCS#8 DER encoding is the
 * input byte for byte: the input is then exactly the canonical encoding of that key, which OpenSSL would have
 * decoded to the same key. Anything else (EC and other key types, attributes, multi-prime or RSA-PSS keys, BER,
 * non-minimal integers, any error) goes to createPrivateKey as before, so what is refused, and how, is OpenSSL's.
 */
export function pkcs8PrivateKey(der: Buffer): KeyObject {
  const fast = rsaFromJwk(der);
  return fast ?? createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const RSA_FIELDS = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;

function rsaFromJwk(der: Buffer): KeyObject | undefined {
  try {
    // PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier { rsaEncryption, NULL }, OCTET STRING }
    const info = sequenceOf(readOne(der), 'PrivateKeyInfo');
    if (info.length !== 3 || smallInteger(info[0], 'version') !== 0) return undefined;
    const algorithm = sequenceOf(info[1], 'privateKeyAlgorithm');
    if (algorithm.length !== 2 || oid(algorithm[0], 'algorithm') !== RSA_ENCRYPTION) return undefined;
    expectUniversal(algorithm[1], TAG.NULL, 'parameters');
    const inner = expectUniversal(info[2], TAG.OCTET_STRING, 'privateKey');
    if (inner.constructed) return undefined;
    // RSAPrivateKey ::= SEQUENCE { version 0 (two primes), n, e, d, p, q, dp, dq, qi }
    const fields = childrenOf(expectUniversal(readOne(inner.contents), TAG.SEQUENCE, 'RSAPrivateKey'));
    if (fields.length !== 1 + RSA_FIELDS.length || smallInteger(fields[0], 'version') !== 0) return undefined;
    const jwk: JsonWebKey = { kty: 'RSA' };
    for (const [i, name] of RSA_FIELDS.entries()) {
      const value = positiveInteger(fields[i + 1]);
      if (value === undefined) return undefined;
      jwk[name] = value.toString('base64url');
    }
    const key = createPrivateKey({ key: jwk, format: 'jwk' });
    return key.export({ format: 'der', type: 'pkcs8' }).equals(der) ? key : undefined;
  } catch {
    return undefined; // not the plain RSA key this path reads: OpenSSL decides
  }
}

/** A positive INTEGER's magnitude (its sign octet dropped); undefined for zero, negative or empty ones. */
function positiveInteger(tlv: Parameters<typeof expectUniversal>[0]): Buffer | undefined {
  const bytes = expectUniversal(tlv, TAG.INTEGER, 'RSA key component').contents;
  if (bytes.length === 0 || ((bytes[0] as number) & 0x80) !== 0) return undefined;
  const start = bytes[0] === 0 ? 1 : 0;
  return start < bytes.length ? bytes.subarray(start) : undefined;
}
