/**
 * The node:crypto PKCS#12 reader against two references: node-forge (the reader kvvm used before, kept in
 * test/helpers/forgePkcs12.ts) and the openssl CLI (`openssl pkcs12 -nodes`, the tool operators trust). Inputs:
 * the recorded Key Vault PFX, the dev vault's Key Vault-style PFX, and openssl-made PFX with every algorithm
 * kvvm supports (-keypbe / -certpbe / -macalg / -iter / -nomac / -legacy variants, RSA and EC, with chains).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KvvmError } from '../handler/errors.js';
import { readPkcs12, type Pkcs12Contents } from '../handler/certs/pkcs12.js';
import { splitPemBlocks } from '../handler/certs/pemText.js';
import { createCa, issueCertificate, toPkcs12Base64 } from '../handler/devvault/certFactory.js';
import { readPkcs12WithForge } from './helpers/forgePkcs12.js';
import { OpensslFactory, type Issued, type KeyType } from './helpers/openssl.js';
import { loadSecretVectors } from './helpers/vectors.js';

type Outcome = { ok: true; keys: string[]; certs: string[] } | { ok: false; reason: string };

function outcome(read: () => Pkcs12Contents): Outcome {
  try {
    const { keys, certs } = read();
    return {
      ok: true,
      keys: keys.map((k) => k.export({ type: 'pkcs8', format: 'der' }).toString('hex')),
      certs: certs.map((c) => c.raw.toString('hex')),
    };
  } catch (err) {
    if (err instanceof KvvmError) return { ok: false, reason: err.reason };
    throw err;
  }
}

/** What `openssl pkcs12 -nodes` prints for the file, in the same shape. */
function opensslOutcome(dir: string, der: Buffer, password = ''): Outcome {
  const file = join(dir, `diff-${Math.random().toString(36).slice(2)}.p12`);
  writeFileSync(file, der);
  let text: string;
  try {
    text = execFileSync('openssl', ['pkcs12', '-in', file, '-nodes', '-legacy', '-passin', `pass:${password}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return { ok: false, reason: 'openssl refused' };
  }
  const blocks = splitPemBlocks(text);
  return {
    ok: true,
    keys: blocks
      .filter((b) => b.label === 'PRIVATE KEY')
      .map((b) => createPrivateKey({ key: b.der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'der' }).toString('hex')),
    certs: blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => new X509Certificate(b.der).raw.toString('hex')),
  };
}

interface Variant {
  name: string;
  mode: 'legacy' | 'modern';
  args: string[];
  keyType?: KeyType;
  chain?: number;
  /** How the forge reader refused a file openssl reads: a gap of the old reader, not a difference in results. */
  forgeRefused?: 'pkcs12-unsupported' | 'malformed-pkcs12';
}

const VARIANTS: Variant[] = [
  { name: 'openssl 3 defaults (PBES2 AES-256-CBC, SHA-256 MAC)', mode: 'modern', args: [] },
  { name: '-legacy (RC2-40 certificates, 3DES key, SHA-1 MAC)', mode: 'legacy', args: [] },
  { name: 'EC key, chain of two', mode: 'modern', args: [], keyType: 'ec', chain: 2 },
  { name: 'EC key, -legacy', mode: 'legacy', args: [], keyType: 'ec', chain: 1 },
  { name: 'no chain', mode: 'modern', args: [], chain: 0 },
  ...['AES-128-CBC', 'AES-192-CBC', 'AES-256-CBC', 'DES-EDE3-CBC'].map((c): Variant => ({
    name: `PBES2 ${c} for key and certificates`,
    mode: 'modern',
    args: ['-keypbe', c, '-certpbe', c],
  })),
  { name: 'PBE-SHA1-3DES for key and certificates', mode: 'modern', args: ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES'] },
  { name: 'PBE-SHA1-2DES for key and certificates', mode: 'legacy', args: ['-keypbe', 'PBE-SHA1-2DES', '-certpbe', 'PBE-SHA1-2DES'], forgeRefused: 'pkcs12-unsupported' },
  { name: 'PBE-SHA1-RC2-40 for key and certificates', mode: 'legacy', args: ['-keypbe', 'PBE-SHA1-RC2-40', '-certpbe', 'PBE-SHA1-RC2-40'] },
  { name: 'PBE-SHA1-RC2-128 certificates', mode: 'legacy', args: ['-certpbe', 'PBE-SHA1-RC2-128'], forgeRefused: 'pkcs12-unsupported' },
  { name: 'PBES2 DES-CBC (single DES, pure JS)', mode: 'legacy', args: ['-keypbe', 'DES-CBC', '-certpbe', 'DES-CBC'] },
  { name: 'certificates unencrypted (-certpbe NONE)', mode: 'modern', args: ['-certpbe', 'NONE'] },
  { name: 'key unencrypted (-keypbe NONE: a plain keyBag)', mode: 'modern', args: ['-keypbe', 'NONE', '-certpbe', 'NONE'] },
  ...['sha1', 'sha256', 'sha384', 'sha512'].map((m): Variant => ({ name: `-macalg ${m}`, mode: 'modern', args: ['-macalg', m] })),
  { name: '-macalg sha224', mode: 'modern', args: ['-macalg', 'sha224'], forgeRefused: 'pkcs12-unsupported' },
  { name: '-macalg md5, -legacy', mode: 'legacy', args: ['-macalg', 'md5'] },
  { name: '-iter 1', mode: 'modern', args: ['-iter', '1'] },
  { name: '-iter 20000', mode: 'modern', args: ['-iter', '20000'] },
  { name: '-iter 20000 -legacy', mode: 'legacy', args: ['-iter', '20000'] },
  { name: '-noiter -nomaciter', mode: 'modern', args: ['-noiter', '-nomaciter'] },
  // forge decrypts with the NULL password first and, without a MAC to say it is wrong, reports the garbage as malformed
  { name: '-nomac (no integrity check), PBES2', mode: 'modern', args: ['-nomac'], forgeRefused: 'malformed-pkcs12' },
  { name: '-nomac, -legacy', mode: 'legacy', args: ['-nomac'] },
];

describe('PKCS#12 on node:crypto gives what forge and openssl give', () => {
  let ssl: OpensslFactory;
  let root: Issued;
  const inters: Issued[] = [];

  before(async () => {
    ssl = await OpensslFactory.create();
    root = ssl.rootCa('diff-root');
    inters.push(ssl.intermediate('diff-inter', root));
  });
  after(async () => ssl.cleanup());

  const chainOf = (n: number): Issued[] => [...inters, root].slice(2 - n);

  for (const v of VARIANTS) {
    it(`openssl pkcs12 -export ${v.name}`, () => {
      const leaf = ssl.leaf(`diff-${v.keyType ?? 'rsa'}`, inters[0], { keyType: v.keyType ?? 'rsa' });
      const der = Buffer.from(ssl.pkcs12(leaf, chainOf(v.chain ?? 2), { mode: v.mode, exportArgs: v.args }), 'base64');
      const native = outcome(() => readPkcs12(der));
      assert.deepEqual(native, opensslOutcome(ssl.dir, der), 'the same key and certificates as openssl pkcs12 -nodes');
      assert.equal(native.ok, true);
      const forge = outcome(() => readPkcs12WithForge(der));
      if (v.forgeRefused) assert.deepEqual(forge, { ok: false, reason: v.forgeRefused }, 'the forge reader refused it');
      else assert.deepEqual(native, forge, 'the same key and certificates as the forge reader');
    });
  }

  it('a PFX with a password: refused as pkcs12-password by both readers, for every scheme', () => {
    const leaf = ssl.leaf('diff-rsa', inters[0]);
    for (const [mode, args] of [
      ['modern', []],
      ['legacy', []],
      ['modern', ['-nomac']],
      ['legacy', ['-nomac']],
    ] as const) {
      const der = Buffer.from(ssl.pkcs12(leaf, [root], { mode, password: 'hunter2', exportArgs: [...args] }), 'base64');
      assert.deepEqual(
        outcome(() => readPkcs12(der)),
        { ok: false, reason: 'pkcs12-password' },
        `${mode} ${args.join(' ')}`,
      );
      if (args.length === 0)
        assert.deepEqual(
          outcome(() => readPkcs12WithForge(der)),
          { ok: false, reason: 'pkcs12-password' },
        );
    }
  });

  it('the recorded Key Vault PFX (2020: RC2-40 and MAC iteration 1; 2022: 3DES)', () => {
    const vectors = loadSecretVectors().filter((v) => v.contentType === 'application/x-pkcs12');
    assert.ok(vectors.length >= 2);
    for (const vector of vectors) {
      const der = Buffer.from(vector.value, 'base64');
      const native = outcome(() => readPkcs12(der));
      assert.equal(native.ok, true, vector.file);
      assert.deepEqual(
        native,
        outcome(() => readPkcs12WithForge(der)),
        vector.file,
      );
      assert.deepEqual(native, opensslOutcome(ssl.dir, der), vector.file);
    }
  });

  it("the dev vault's Key Vault-style PFX (NULL password, 3DES bags, SHA-1 MAC)", () => {
    const ca = createCa('diff factory root');
    const leaf = issueCertificate({ issuer: ca, subjectCn: 'diff-factory.test' });
    const der = Buffer.from(toPkcs12Base64(leaf.keyPem, [leaf.certPem, ca.certPem]), 'base64');
    const native = outcome(() => readPkcs12(der));
    assert.equal(native.ok, true);
    assert.deepEqual(
      native,
      outcome(() => readPkcs12WithForge(der)),
    );
    assert.deepEqual(native, opensslOutcome(ssl.dir, der));
  });
});
