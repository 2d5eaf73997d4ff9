/**
 * pkcs8PrivateKey (handler/certs/privateKey.ts) against createPrivateKey, the reader it stands in for: on every key
 * type openssl makes and on damaged and re-encoded variants of an RSA key, both accept the same inputs and give the
 * same key, or both refuse.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pkcs8PrivateKey } from '../handler/certs/privateKey.js';

type Read = { ok: true; type: string | undefined; pkcs8: string } | { ok: false };

function read(fn: () => KeyObject): Read {
  try {
    const key = fn();
    return { ok: true, type: key.asymmetricKeyType, pkcs8: key.export({ format: 'der', type: 'pkcs8' }).toString('hex') };
  } catch {
    return { ok: false };
  }
}

function assertSame(der: Buffer, what: string): Read {
  const reference = read(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  assert.deepEqual(
    read(() => pkcs8PrivateKey(der)),
    reference,
    what,
  );
  return reference;
}

function pkcs8Of(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' });
}

/** DER length octets (definite, minimal). */
function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

describe('PKCS#8 private keys read as createPrivateKey reads them', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kvvm-pkcs8-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('RSA keys of every usual size and exponent, and the other key types openssl makes, give the same key', () => {
    const generated: Array<[string, KeyObject]> = [
      ['rsa 1024', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey],
      ['rsa 2048', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
      ['rsa 3072 e=3', generateKeyPairSync('rsa', { modulusLength: 3072, publicExponent: 3 }).privateKey],
      ['rsa 4096', generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey],
      ['rsa-pss 2048', generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey],
      ['ec p-256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey],
      ['ec p-384', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey],
      ['ed25519', generateKeyPairSync('ed25519').privateKey],
    ];
    for (const [name, key] of generated) {
      const r = assertSame(pkcs8Of(key), name);
      assert.equal(r.ok, true, `${name} is readable`);
    }
    // Three-prime RSA (version 1 RSAPrivateKey) only openssl makes.
    const file = join(dir, 'rsa3.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_keygen_primes:3', '-out', file], { stdio: 'ignore' });
    const r = assertSame(pkcs8Of(createPrivateKey(readFileSync(file, 'utf8'))), 'rsa 3 primes');
    assert.equal(r.ok, true);
  });

  it('every single-byte change, truncation and trailing byte of an RSA key is accepted or refused as createPrivateKey does', () => {
    const der = pkcs8Of(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey);
    let refused = 0;
    // The structure (first 40 bytes: headers, algorithm, inner lengths and the start of n) byte by byte, then samples.
    const positions = [...Array.from({ length: 40 }, (_, i) => i), ...Array.from({ length: 60 }, () => Math.floor(Math.random() * der.length))];
    for (const at of positions) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const changed = Buffer.from(der);
        changed[at] = (changed[at] as number) ^ mask;
        if (!assertSame(changed, `byte ${at} ^ ${mask}`).ok) refused += 1;
      }
    }
    for (const cut of [1, 2, 10, der.length >> 1, der.length - 1]) if (!assertSame(der.subarray(0, cut), `cut to ${cut}`).ok) refused += 1;
    if (!assertSame(Buffer.concat([der, Buffer.from([0])]), 'a trailing byte').ok) refused += 1;
    assert.ok(refused > 0, 'some damaged inputs are refused (by both)');
  });

  it('a key encoded with a non-minimal INTEGER or long-form lengths gives the same result as createPrivateKey', () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const jwk = key.export({ format: 'jwk' });
    const int = (b64: string | undefined, pad = 0): Buffer => {
      const mag = Buffer.from(b64 ?? '', 'base64url');
      const body = Buffer.concat([Buffer.alloc(pad + (((mag[0] as number) & 0x80) !== 0 ? 1 : 0)), mag]);
      return Buffer.concat([Buffer.from([0x02]), lengthOctets(body.length), body]);
    };
    const seq = (parts: Buffer[], tag = 0x30): Buffer => {
      const body = Buffer.concat(parts);
      return Buffer.concat([Buffer.from([tag]), lengthOctets(body.length), body]);
    };
    const build = (padE: number): Buffer => {
      const rsa = seq([Buffer.from([2, 1, 0]), int(jwk.n), int(jwk.e, padE), int(jwk.d), int(jwk.p), int(jwk.q), int(jwk.dp), int(jwk.dq), int(jwk.qi)]);
      const algorithm = Buffer.from('300d06092a864886f70d0101010500', 'hex');
      return seq([Buffer.from([2, 1, 0]), algorithm, seq([rsa], 0x04)]);
    };
    const canonical = build(0);
    assert.deepEqual(canonical, pkcs8Of(key), 'the builder writes the canonical encoding');
    assertSame(canonical, 'canonical');
    assertSame(build(1), 'e with a leading zero octet');
    assertSame(build(3), 'e with three leading zero octets');
    // The version INTEGER in long form (02 81 01 00): BER, not DER.
    const longForm = Buffer.concat([canonical.subarray(0, 4), Buffer.from([2, 0x81, 1, 0]), canonical.subarray(7)]);
    longForm.writeUInt16BE(canonical.readUInt16BE(2) + 1, 2);
    assertSame(longForm, 'version with a long-form length');
  });

  it('random bytes and random DER-looking input are refused by both', () => {
    for (let i = 0; i < 50; i++) {
      const junk = randomBytes(1 + Math.floor(Math.random() * 600));
      if (i % 2 === 0) junk[0] = 0x30;
      assert.equal(assertSame(junk, `junk ${i}`).ok, false);
    }
  });
});
