/**
 * Fuzzing the two parsers that take input from outside: the settings parser (what the agent hands over) and the
 * certificate parser (what Key Vault returns). Fixed seeds, thousands of cases, bounded input sizes (so a case
 * cannot hang on sheer size). Each case must return a result or throw a KvvmError: any other exception fails.
 * Valid inputs are real: PFX made by the openssl CLI (legacy and modern) and by kvvm's factory, PEM secrets.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvvmError } from '../../handler/errors.js';
import { parseCertificateSecret } from '../../handler/certs/parse.js';
import { createCa, issueCertificate, toPemSecret, toPkcs12Base64 } from '../../handler/devvault/certFactory.js';
import { parseSettings } from '../../handler/settings/index.js';
import { profileFor, type BehaviourProfile } from '../../handler/settings/profile.js';
import { OpensslFactory, pemSecret } from '../helpers/openssl.js';

const ENV = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' };

/** VALID_SETTINGS pins a version and sets requireInitialSync, which only the 3.x line accepts (docs/versions.md). */
const PROFILE_3X = profileFor('3.0', 'linux', 'option');
const PROFILE_4X = profileFor('4.0', 'linux', 'option');

function settingsOutcome(raw: unknown, profile?: BehaviourProfile): 'ok' | 'problems' | 'kvvm-error' {
  try {
    const r = parseSettings(raw, { platform: 'linux', env: ENV, ...(profile ? { profile } : {}) });
    if (r.ok) {
      assert.ok(Array.isArray(r.config.observedCertificates));
      return 'ok';
    }
    assert.ok(r.problems.length > 0, 'a refusal names at least one problem');
    for (const p of r.problems) assert.equal(typeof p.message, 'string');
    return 'problems';
  } catch (err) {
    if (err instanceof KvvmError) return 'kvvm-error';
    throw new Error(`parseSettings threw a non-KvvmError: ${String(err)}`, { cause: err });
  }
}

function certOutcome(value: string, contentType: string | undefined): 'ok' | 'kvvm-error' {
  try {
    const m = parseCertificateSecret(value, contentType);
    assert.match(m.thumbprint, /^[0-9A-F]{40}$/);
    return 'ok';
  } catch (err) {
    if (err instanceof KvvmError) return 'kvvm-error';
    throw new Error(`parseCertificateSecret threw a non-KvvmError: ${String(err)}`, { cause: err });
  }
}

const VALID_SETTINGS = {
  secretsManagementSettings: {
    pollingIntervalInS: '3600',
    observedCertificates: [
      { url: 'https://myvault.vault.azure.net/secrets/web', certificateStoreLocation: '/etc/ssl/kv', customSymbolicLinkName: 'web.pem', acls: [{ user: 'www-data' }] },
      { url: 'https://myvault.vault.azure.net/secrets/api/0123456789abcdef0123456789abcdef' },
    ],
    requireInitialSync: true,
  },
  authenticationSettings: { msiEndpoint: 'http://169.254.169.254/metadata/identity/oauth2/token', msiClientId: '6f1d3c55-8f5c-4a57-9a3e-0c4b2d7e9a11' },
};

/** Replace the value at a random path of `doc` by `replacement` (or delete it when replacement is undefined). */
function mutateAt(doc: unknown, path: number[], replacement: unknown): unknown {
  if (path.length === 0 || doc === null || typeof doc !== 'object') return replacement;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(doc) ? [...(doc as unknown[])] : { ...(doc as Record<string, unknown>) };
  const keys = Object.keys(copy);
  if (keys.length === 0) return replacement;
  const key = keys[path[0]! % keys.length]!;
  const next = mutateAt((copy as Record<string, unknown>)[key], path.slice(1), replacement);
  if (next === undefined && !Array.isArray(copy)) delete copy[key];
  else (copy as Record<string, unknown>)[key] = next;
  return copy;
}

const smallJson = fc.jsonValue({ maxDepth: 4, depthSize: 'small' });

describe('settings parser fuzzing', () => {
  it('arbitrary JSON values are parsed or refused with problems, never an unexpected exception', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(smallJson, (v) => void seen.add(settingsOutcome(v))),
      { seed: 0x5e771, numRuns: 2000 },
    );
    assert.ok(seen.has('problems'));
  });

  it('mutated valid settings (a value replaced, deleted or retyped anywhere) never cause an unexpected exception', () => {
    assert.equal(settingsOutcome(VALID_SETTINGS, PROFILE_3X), 'ok', 'the base document is valid (3.x)');
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.array(fc.nat({ max: 20 }), { minLength: 1, maxLength: 6 }), fc.option(smallJson, { nil: undefined })), { minLength: 1, maxLength: 3 }),
        (mutations) => {
          let doc: unknown = VALID_SETTINGS;
          for (const [path, replacement] of mutations) doc = mutateAt(doc, path, replacement);
          // Both lines' rules, each on the document and on it handed over as a JSON string (double encoding).
          for (const profile of [PROFILE_3X, PROFILE_4X]) {
            seen.add(settingsOutcome(doc, profile));
            seen.add(settingsOutcome(JSON.stringify(doc), profile));
          }
        },
      ),
      { seed: 0xbad5e7, numRuns: 2000 },
    );
    assert.ok(seen.has('ok') && seen.has('problems'), `outcomes: ${[...seen].join(',')}`);
  });

  it('arbitrary strings and mangled JSON text are refused cleanly', () => {
    const text = JSON.stringify(VALID_SETTINGS);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.tuple(fc.nat({ max: text.length }), fc.nat({ max: text.length })).map(([a, b]) => text.slice(0, Math.min(a, b)) + text.slice(Math.max(a, b))),
        ),
        (s) => void settingsOutcome(s),
      ),
      { seed: 0x57e1, numRuns: 2000 },
    );
  });
});

describe('certificate parser fuzzing', () => {
  let factory: OpensslFactory;
  const pfx: { name: string; bytes: Buffer }[] = [];
  const pems: string[] = [];

  before(async () => {
    factory = await OpensslFactory.create();
    const root = factory.rootCa('fuzz-root', { keyType: 'ec' });
    const leaf = factory.leaf('fuzz-leaf', root, { keyType: 'ec' });
    pfx.push({ name: 'openssl legacy', bytes: Buffer.from(factory.pkcs12(leaf, [root], { mode: 'legacy' }), 'base64') });
    pfx.push({ name: 'openssl modern', bytes: Buffer.from(factory.pkcs12(leaf, [root], { mode: 'modern' }), 'base64') });
    const ca = createCa('fuzz factory root');
    const rsa = issueCertificate({ issuer: ca, subjectCn: 'fuzz.test', keyBits: 1024 });
    pfx.push({ name: 'forge 3DES', bytes: Buffer.from(toPkcs12Base64(rsa.keyPem, [rsa.certPem, ca.certPem]), 'base64') });
    pems.push(pemSecret(leaf.keyPem, leaf.certPem, root.certPem), toPemSecret(rsa.keyPem, [ca.certPem, rsa.certPem]));
    for (const p of pfx) assert.equal(certOutcome(p.bytes.toString('base64'), 'application/x-pkcs12'), 'ok', p.name);
    for (const p of pems) assert.equal(certOutcome(p, 'application/x-pem-file'), 'ok');
  });

  after(async () => {
    await factory.cleanup();
  });

  const byteEdits = fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), value: fc.nat({ max: 64 }) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    ),
    { minLength: 1, maxLength: 4 },
  );

  function applyEdits(buf: Buffer, edits: Array<{ kind: 'set' | 'cut' | 'insert'; at: number; value: number }>): Buffer {
    let b = Buffer.from(buf);
    for (const e of edits) {
      if (b.length === 0) break;
      const at = e.at % b.length;
      if (e.kind === 'set') b[at] = e.value;
      else if (e.kind === 'cut') b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + e.value + 1))]);
      else b = Buffer.concat([b.subarray(0, at), Buffer.from([e.value]), b.subarray(at)]);
    }
    return b;
  }

  it('mutated PFX bytes (bit flips, cuts, insertions; legacy, modern and forge) parse or throw KvvmError', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.nat({ max: 2 }), byteEdits, fc.constantFrom('application/x-pkcs12', undefined), (which, edits, type) => {
        const mutated = applyEdits(pfx[which]!.bytes, edits);
        seen.add(certOutcome(mutated.toString('base64'), type));
      }),
      { seed: 0x9f12, numRuns: 1500 },
    );
    assert.ok(seen.has('kvvm-error'));
  });

  it('mutated PEM secrets (characters changed, lines dropped or swapped) parse or throw KvvmError', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.nat({ max: 1 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.string({ maxLength: 3 }), fc.nat({ max: 2 })), { minLength: 1, maxLength: 4 }),
        fc.constantFrom('application/x-pem-file', undefined, 'Application/X-PEM-File; charset=utf-8'),
        (which, edits, type) => {
          let lines = pems[which]!.split('\n');
          for (const [a, b, text, op] of edits) {
            const i = a % lines.length;
            const j = b % lines.length;
            if (op === 0) lines = lines.filter((_, k) => k !== i);
            else if (op === 1) [lines[i], lines[j]] = [lines[j]!, lines[i]!];
            else {
              const line = lines[i]!;
              const at = line.length === 0 ? 0 : b % line.length;
              lines[i] = line.slice(0, at) + text + line.slice(at + 1);
            }
            if (lines.length === 0) break;
          }
          seen.add(certOutcome(lines.join('\n'), type));
        },
      ),
      { seed: 0x9e7, numRuns: 1500 },
    );
    assert.ok(seen.has('kvvm-error') && seen.has('ok'), `outcomes: ${[...seen].join(',')}`);
  });

  it('PFX bytes passed as PEM, PEM as PFX, and arbitrary text either way throw KvvmError', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constant(pfx[0]!.bytes.toString('base64')), fc.constant(pems[0]!), fc.string({ maxLength: 2000 })),
        fc.constantFrom('application/x-pkcs12', 'application/x-pem-file', 'text/plain'),
        (value, type) => {
          void certOutcome(value, type);
        },
      ),
      { seed: 0xc0ffee, numRuns: 1000 },
    );
  });
});
