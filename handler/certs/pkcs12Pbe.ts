import { createDecipheriv, pbkdf2Sync } from 'node:crypto';
import { createRequire } from 'node:module';
import type forge from 'node-forge';
import { DerError, TAG, expectUniversal, octetString, oid, sequenceOf, smallInteger, type Tlv } from './der.js';
import { pkcs12Kdf, pkcs12KdfCost, pkcs12Password } from './pkcs12Kdf.js';

/**
 * Password-based decryption of PKCS#12 bags: the PKCS#12 PBE schemes (RFC 7292 appendix C) and PBES2 with
 * PBKDF2 (RFC 8018), all on node:crypto except the ciphers OpenSSL 3's default provider no longer has (RC2,
 * single DES): those alone go through node-forge's pure-JS ciphers. The 2020 Key Vault PFX encrypts its
 * certificates with RC2-40, so that path is real.
 */

/** Highest iteration count accepted for one key derivation. Real files use 1–600,000. */
export const MAX_KDF_ITERATIONS = 1_000_000;

/** A decryption whose cost is known before anything is computed: `cost` hash computations, then `run`. */
export interface PlannedDecryption {
  cost: number;
  /** Human name of the scheme (for messages). */
  scheme: string;
  run(password: string | null, ciphertext: Buffer): Buffer;
}

/** The algorithm is well-formed but kvvm cannot decrypt it. */
export class UnsupportedAlgorithmError extends Error {}
/** Decryption produced invalid padding: the wrong password (or damaged data). */
export class DecryptionFailedError extends Error {}
/** An iteration count above MAX_KDF_ITERATIONS. */
export class IterationLimitError extends Error {}

type CipherRun = (key: Buffer, iv: Buffer, ciphertext: Buffer) => Buffer;

const nativeCbc =
  (name: string): CipherRun =>
  (key, iv, ciphertext) => {
    try {
      const d = createDecipheriv(name, key, iv);
      return Buffer.concat([d.update(ciphertext), d.final()]);
    } catch (cause) {
      throw new DecryptionFailedError('decryption failed (bad padding)', { cause });
    }
  };

/**
 * node-forge, loaded the first time an RC2 or DES file appears: it is ~60 modules that every parser thread and
 * every service would otherwise hold for a cipher most vaults never use (bench/, figure 4). forge is CommonJS, so
 * a synchronous require keeps the decryption synchronous.
 */
let forgeModule: typeof forge | undefined;
function forgeLib(): typeof forge {
  forgeModule ??= createRequire(import.meta.url)('node-forge') as typeof forge;
  return forgeModule;
}

/**
 * forge's RC2 and DES: pure JS, for what OpenSSL 3 moved to its legacy provider. forge's own unpadding accepts
 * malformed padding, so the padding is kept and checked here the way OpenSSL checks it.
 */
interface ForgeDecipher {
  start(iv: forge.util.ByteStringBuffer, output?: null): void;
  update(input: forge.util.ByteStringBuffer): void;
  finish(pad: () => boolean): boolean;
  output: forge.util.ByteStringBuffer;
}
const forgeCbc =
  (make: (key: forge.util.ByteStringBuffer) => ForgeDecipher): CipherRun =>
  (key, iv, ciphertext) => {
    if (ciphertext.length === 0 || ciphertext.length % 8 !== 0) throw new DecryptionFailedError('ciphertext is not whole blocks');
    const { util } = forgeLib();
    const cipher = make(util.createBuffer(key.toString('binary')));
    cipher.start(util.createBuffer(iv.toString('binary')), null);
    cipher.update(util.createBuffer(ciphertext.toString('binary')));
    if (!cipher.finish(() => true)) throw new DecryptionFailedError('decryption failed');
    return stripPkcs7(Buffer.from(cipher.output.getBytes(), 'binary'), 8);
  };

function stripPkcs7(out: Buffer, block: number): Buffer {
  const n = out[out.length - 1] ?? 0;
  if (n < 1 || n > block || n > out.length) throw new DecryptionFailedError('decryption failed (bad padding)');
  for (let i = out.length - n; i < out.length; i++) if (out[i] !== n) throw new DecryptionFailedError('decryption failed (bad padding)');
  return out.subarray(0, out.length - n);
}

const rc2 = (bits: number): CipherRun => forgeCbc((key) => forgeLib().rc2.createDecryptionCipher(key, bits) as unknown as ForgeDecipher);
const desCbc = forgeCbc((key) => {
  const c = forgeLib().cipher.createDecipher('DES-CBC', key);
  return {
    start: (iv) => c.start({ iv }),
    update: (input) => c.update(input),
    // forge's BlockCipher.finish takes a padding function (its typings omit it)
    finish: (pad) => (c.finish as (pad: () => boolean) => boolean).call(c, pad),
    get output() {
      return c.output;
    },
  };
});

/** PKCS#12 PBE (always SHA-1): OID → [name, key bytes, IV bytes, cipher]. */
const PKCS12_PBE: Record<string, readonly [string, number, number, CipherRun]> = {
  '1.2.840.113549.1.12.1.3': ['pbeWithSHAAnd3-KeyTripleDES-CBC', 24, 8, nativeCbc('des-ede3-cbc')],
  '1.2.840.113549.1.12.1.4': ['pbeWithSHAAnd2-KeyTripleDES-CBC', 16, 8, nativeCbc('des-ede-cbc')],
  '1.2.840.113549.1.12.1.5': ['pbeWithSHAAnd128BitRC2-CBC', 16, 8, rc2(128)],
  '1.2.840.113549.1.12.1.6': ['pbeWithSHAAnd40BitRC2-CBC', 5, 8, rc2(40)],
};

const PBES2 = '1.2.840.113549.1.5.13';
const PBKDF2 = '1.2.840.113549.1.5.12';

/** PBKDF2 PRF OID → [node hash name, output bytes]. */
const PRFS: Record<string, readonly [string, number]> = {
  '1.2.840.113549.2.7': ['sha1', 20],
  '1.2.840.113549.2.8': ['sha224', 28],
  '1.2.840.113549.2.9': ['sha256', 32],
  '1.2.840.113549.2.10': ['sha384', 48],
  '1.2.840.113549.2.11': ['sha512', 64],
};

/** PBES2 encryption scheme OID → [name, key bytes, IV bytes, cipher]. */
const PBES2_CIPHERS: Record<string, readonly [string, number, number, CipherRun]> = {
  '2.16.840.1.101.3.4.1.2': ['aes-128-cbc', 16, 16, nativeCbc('aes-128-cbc')],
  '2.16.840.1.101.3.4.1.22': ['aes-192-cbc', 24, 16, nativeCbc('aes-192-cbc')],
  '2.16.840.1.101.3.4.1.42': ['aes-256-cbc', 32, 16, nativeCbc('aes-256-cbc')],
  '1.2.840.113549.3.7': ['des-ede3-cbc', 24, 8, nativeCbc('des-ede3-cbc')],
  '1.3.14.3.2.7': ['des-cbc', 8, 8, desCbc],
};

export function checkIterations(count: number, what: string): number {
  if (!(count >= 1)) throw new DerError(`${what} iteration count must be at least 1`);
  if (count > MAX_KDF_ITERATIONS) throw new IterationLimitError(`${what} asks for ${count} key-derivation iterations, above the ${MAX_KDF_ITERATIONS} limit`);
  return count;
}

/** Reads an AlgorithmIdentifier of a PBE scheme and plans the decryption (no key derivation yet). */
export function planDecryption(algorithm: Tlv | undefined): PlannedDecryption {
  const [algOid, params] = sequenceOf(algorithm, 'the encryption algorithm');
  const id = oid(algOid, 'the encryption algorithm');
  const pkcs12 = PKCS12_PBE[id];
  if (pkcs12) return planPkcs12Pbe(pkcs12, params);
  if (id === PBES2) return planPbes2(params);
  throw new UnsupportedAlgorithmError(`unsupported encryption algorithm ${id}`);
}

function planPkcs12Pbe([scheme, keyBytes, ivBytes, cipher]: readonly [string, number, number, CipherRun], params: Tlv | undefined): PlannedDecryption {
  const [saltTlv, iterTlv] = sequenceOf(params, `the ${scheme} parameters`);
  const salt = octetString(saltTlv, `the ${scheme} salt`);
  const iterations = checkIterations(smallInteger(iterTlv, `the ${scheme} iteration count`), scheme);
  return {
    cost: pkcs12KdfCost('sha1', iterations, keyBytes) + pkcs12KdfCost('sha1', iterations, ivBytes),
    scheme,
    run(password, ciphertext) {
      const p = pkcs12Password(password);
      const key = pkcs12Kdf('sha1', p, salt, 1, iterations, keyBytes);
      const iv = pkcs12Kdf('sha1', p, salt, 2, iterations, ivBytes);
      return cipher(key, iv, ciphertext);
    },
  };
}

function planPbes2(params: Tlv | undefined): PlannedDecryption {
  const [kdf, enc] = sequenceOf(params, 'the PBES2 parameters');
  const [kdfOid, kdfParams] = sequenceOf(kdf, 'the PBES2 key derivation');
  const kdfId = oid(kdfOid, 'the PBES2 key derivation');
  if (kdfId !== PBKDF2) throw new UnsupportedAlgorithmError(`unsupported PBES2 key derivation ${kdfId}`);
  const [encOid, ivTlv] = sequenceOf(enc, 'the PBES2 encryption scheme');
  const encId = oid(encOid, 'the PBES2 encryption scheme');
  const cipherSpec = PBES2_CIPHERS[encId];
  if (!cipherSpec) throw new UnsupportedAlgorithmError(`unsupported PBES2 cipher ${encId}`);
  const [scheme, keyBytes, ivBytes, cipher] = cipherSpec;
  const iv = octetString(ivTlv, 'the PBES2 IV');
  if (iv.length !== ivBytes) throw new DerError(`the ${scheme} IV is ${iv.length} bytes instead of ${ivBytes}`);

  const fields = sequenceOf(kdfParams, 'the PBKDF2 parameters');
  const salt = octetString(fields[0], 'the PBKDF2 salt');
  const iterations = checkIterations(smallInteger(fields[1], 'the PBKDF2 iteration count'), 'PBKDF2');
  let rest = fields.slice(2);
  if (rest[0]?.tag === TAG.INTEGER) {
    const keyLength = smallInteger(rest[0], 'the PBKDF2 key length');
    if (keyLength !== keyBytes) throw new DerError(`the PBKDF2 key length ${keyLength} does not fit ${scheme}`);
    rest = rest.slice(1);
  }
  let prf: readonly [string, number] = PRFS['1.2.840.113549.2.7'] as readonly [string, number];
  if (rest[0] !== undefined) {
    const [prfOid] = sequenceOf(expectUniversal(rest[0], TAG.SEQUENCE, 'the PBKDF2 PRF'), 'the PBKDF2 PRF');
    const prfId = oid(prfOid, 'the PBKDF2 PRF');
    const known = PRFS[prfId];
    if (!known) throw new UnsupportedAlgorithmError(`unsupported PBKDF2 PRF ${prfId}`);
    prf = known;
  }
  const [hashName, hashBytes] = prf;
  return {
    // an HMAC is two hash computations per iteration and output block
    cost: 2 * iterations * Math.ceil(keyBytes / hashBytes),
    scheme: `PBES2 (PBKDF2-HMAC-${hashName.toUpperCase()}, ${scheme})`,
    run(password, ciphertext) {
      // PBES2 passwords are bytes (UTF-8), not BMPString; the absent password is the empty string.
      const key = pbkdf2Sync(Buffer.from(password ?? '', 'utf8'), salt, iterations, keyBytes, hashName);
      return cipher(key, iv, ciphertext);
    },
  };
}
