/**
 * SHA-1 applied `n` times to a 20-byte value: the inner loop of the PKCS#12 key derivation (RFC 7292 B.2 step 6,
 * A = H^c(D || I)), where PKCS#12's PBE schemes always use SHA-1. Each step hashes exactly one 20-byte message,
 * i.e. one 64-byte block with fixed padding, so the loop runs here on 32-bit words instead of one node:crypto
 * call per step: a call costs about three times the compression itself (measured: 14,000 steps, the work of one
 * Key Vault PFX, 9.3 ms with crypto.hash against 2.8 ms here, Node 22). The first hash of each block (over
 * D || I) stays native; test/certs.sha1Iterate.test.ts checks this loop against crypto.hash step by step.
 */
export function sha1Iterate(value: Buffer, n: number): Buffer {
  if (value.length !== 20) throw new RangeError(`sha1Iterate takes a 20-byte SHA-1 digest (got ${value.length} bytes)`);
  const w = new Int32Array(80);
  let h0 = value.readInt32BE(0);
  let h1 = value.readInt32BE(4);
  let h2 = value.readInt32BE(8);
  let h3 = value.readInt32BE(12);
  let h4 = value.readInt32BE(16);
  for (let step = 0; step < n; step++) {
    // The message block: the 20-byte digest, the 0x80 marker, zeros, and the length in bits (160).
    w[0] = h0;
    w[1] = h1;
    w[2] = h2;
    w[3] = h3;
    w[4] = h4;
    w[5] = 0x80000000 | 0;
    w.fill(0, 6, 15);
    w[15] = 160;
    for (let i = 16; i < 80; i++) {
      const x = (w[i - 3] as number) ^ (w[i - 8] as number) ^ (w[i - 14] as number) ^ (w[i - 16] as number);
      w[i] = (x << 1) | (x >>> 31);
    }
    let a = 0x67452301;
    let b = 0xefcdab89 | 0;
    let c = 0x98badcfe | 0;
    let d = 0x10325476;
    let e = 0xc3d2e1f0 | 0;
    let i = 0;
    // Four rounds of 20 steps, each its own loop so the JIT sees one boolean function per loop.
    for (; i < 20; i++) {
      const t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + (w[i] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (; i < 40; i++) {
      const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + (w[i] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (; i < 60; i++) {
      const t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e + (0x8f1bbcdc | 0) + (w[i] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (; i < 80; i++) {
      const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + (0xca62c1d6 | 0) + (w[i] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    h0 = (0x67452301 + a) | 0;
    h1 = ((0xefcdab89 | 0) + b) | 0;
    h2 = ((0x98badcfe | 0) + c) | 0;
    h3 = (0x10325476 + d) | 0;
    h4 = ((0xc3d2e1f0 | 0) + e) | 0;
  }
  const out = Buffer.alloc(20);
  out.writeInt32BE(h0, 0);
  out.writeInt32BE(h1, 4);
  out.writeInt32BE(h2, 8);
  out.writeInt32BE(h3, 12);
  out.writeInt32BE(h4, 16);
  return out;
}
