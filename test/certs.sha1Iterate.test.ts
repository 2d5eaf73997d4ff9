/**
 * The PKCS#12 key derivation's SHA-1 loop (certs/sha1Iterate.ts) gives exactly what hashing with node:crypto
 * step by step gives; the PFX-level agreement with openssl and forge is certs.pkcs12Differential.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha1Iterate } from '../handler/certs/sha1Iterate.js';
import forge from 'node-forge';
import { pkcs12Kdf, pkcs12Password } from '../handler/certs/pkcs12Kdf.js';
import { packageRoot } from '../handler/paths.js';
import { sha1IterateSource } from '../build/sha1IterateSource.js';

function nativeIterate(value: Buffer, n: number): Buffer {
  let a = value;
  for (let i = 0; i < n; i++) a = createHash('sha1').update(a).digest();
  return a;
}

describe('sha1Iterate', () => {
  it('is exactly what its generator (build/sha1IterateSource.ts) writes: regenerate after changing either', () => {
    const file = readFileSync(join(packageRoot(), 'handler', 'certs', 'sha1Iterate.ts'), 'utf8');
    assert.equal(file, sha1IterateSource(), 'run: node lib/build/sha1IterateSource.js > handler/certs/sha1Iterate.ts');
  });

  it('equals n native SHA-1 steps, for random values and counts from 0 to 2,048', () => {
    for (const n of [0, 1, 2, 3, 19, 64, 1000, 2048]) {
      for (let k = 0; k < 8; k++) {
        const value = k === 0 ? Buffer.alloc(20, 0xff) : k === 1 ? Buffer.alloc(20) : randomBytes(20);
        assert.deepEqual(sha1Iterate(value, n), nativeIterate(value, n), `n=${n}, value ${value.toString('hex')}`);
      }
    }
  });

  it('does not change its input', () => {
    const value = randomBytes(20);
    const copy = Buffer.from(value);
    sha1Iterate(value, 5);
    assert.deepEqual(value, copy);
  });

  it('refuses a value that is not a 20-byte digest', () => {
    for (const len of [0, 19, 21, 32]) assert.throws(() => sha1Iterate(Buffer.alloc(len), 1), RangeError);
  });

  it("leaves the SHA-1 key derivation equal to forge's (RFC 7292 B.2): 1 and 2,000 iterations, one to three blocks", () => {
    for (const iterations of [1, 2, 2000]) {
      for (const bytes of [8, 24, 60]) {
        for (const purpose of [1, 2, 3] as const) {
          const salt = randomBytes(8);
          const ours = pkcs12Kdf('sha1', pkcs12Password('smeg'), salt, purpose, iterations, bytes);
          const theirs = Buffer.from(forge.pkcs12.generateKey('smeg', forge.util.createBuffer(salt.toString('binary')), purpose, iterations, bytes).getBytes(), 'binary');
          assert.deepEqual(ours, theirs, `iterations ${iterations}, ${bytes} bytes, purpose ${purpose}`);
        }
      }
    }
  });
});
