import { createHash, hash as oneShotHash } from 'node:crypto';
import { sha1Iterate } from './sha1Iterate.js';

/**
 * The PKCS#12 key derivation of RFC 7292 appendix B.2. OpenSSL has it (PKCS12_key_gen) but Node does not expose
 * it, so the loop is here: each iteration is one native hash call, except SHA-1's (what PKCS#12's PBE schemes and
 * MACs use in practice), whose repeated 20-byte steps run in sha1Iterate.ts, measured 3x faster than a native call
 * per step; the first hash of each block is native for every algorithm.
 */

export type Pkcs12Purpose = 1 | 2 | 3; // 1 = key material, 2 = IV, 3 = MAC key

/** Hash name (node:crypto) → [output bytes u, block bytes v]. */
const HASHES: Record<string, readonly [number, number]> = {
  md5: [16, 64],
  sha1: [20, 64],
  sha224: [28, 64],
  sha256: [32, 64],
  sha384: [48, 128],
  sha512: [64, 128],
};

export function isPkcs12KdfHash(name: string): boolean {
  return Object.hasOwn(HASHES, name);
}

/** How many hash computations a derivation costs (the unit of the per-PFX work budget). */
export function pkcs12KdfCost(hashName: string, iterations: number, bytes: number): number {
  const [u] = HASHES[hashName] ?? [20];
  return iterations * Math.ceil(bytes / u);
}

/**
 * The password as PKCS#12 encodes it: a BMPString (UTF-16BE) with a two-byte terminator. `null` is PKCS#12's
 * absent password (no bytes at all), which is what Key Vault uses; "" is the two zero bytes openssl uses.
 */
export function pkcs12Password(password: string | null): Buffer {
  if (password === null) return Buffer.alloc(0);
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

// crypto.hash (one call, no Hash object) is about 1.7x faster per iteration; Node 20.12+ and 22 have it.
const digest: (name: string, data: Buffer) => Buffer =
  typeof oneShotHash === 'function' ? (name, data) => oneShotHash(name, data, 'buffer') : (name, data) => createHash(name).update(data).digest();

export function pkcs12Kdf(hashName: string, password: Buffer, salt: Buffer, purpose: Pkcs12Purpose, iterations: number, bytes: number): Buffer {
  const shape = HASHES[hashName];
  if (!shape) throw new Error(`unsupported PKCS#12 KDF hash ${hashName}`);
  const [u, v] = shape;
  const D = Buffer.alloc(v, purpose);
  const fill = (src: Buffer): Buffer => {
    if (src.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length] as number;
    return out;
  };
  const I = Buffer.concat([fill(salt), fill(password)]);
  const blocks = Math.ceil(bytes / u);
  const result = Buffer.alloc(blocks * u);
  const B = Buffer.alloc(v);
  for (let i = 0; i < blocks; i++) {
    let A = digest(hashName, Buffer.concat([D, I]));
    if (hashName === 'sha1') A = sha1Iterate(A, iterations - 1);
    else for (let r = 1; r < iterations; r++) A = digest(hashName, A);
    A.copy(result, i * u);
    if (i + 1 === blocks) break;
    for (let j = 0; j < v; j++) B[j] = A[j % u] as number;
    // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = (I[j + k] as number) + (B[k] as number) + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return result.subarray(0, bytes);
}
