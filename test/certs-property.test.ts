import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KvvmError } from '../handler/errors.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { loadSecretVectors } from './helpers/vectors.js';

/**
 * Whatever bytes arrive as a secret value, the parser either returns material or throws a KvvmError with a
 * reason. Seeds are fixed so a failure reproduces; run counts are bounded so the suite stays fast.
 */

function parsesOrRefuses(value: string, contentType: string | undefined): void {
  try {
    const material = parseCertificateSecret(value, contentType);
    assert.match(material.thumbprint, /^[0-9A-F]{40}$/);
  } catch (err) {
    if (!(err instanceof KvvmError)) throw new Error(`non-KvvmError escaped: ${String(err)}`, { cause: err });
    // The catch-all reason means a library threw something the parser did not classify: count it as a failure.
    assert.notEqual(err.reason, 'malformed-certificate', `unclassified failure: ${String(err.cause)}`);
  }
}

const vectors = loadSecretVectors();
const pfx2022 = Buffer.from(vectors.find((v) => v.file === 'secret-pkcs12-2022.json')?.value ?? '', 'base64');
const pfx2020 = Buffer.from(vectors.find((v) => v.file === 'secret-pkcs12-2020.json')?.value ?? '', 'base64');
const pem2020 = vectors.find((v) => v.file === 'secret-pem-2020.json')?.value ?? '';

const mutation = (length: number) => fc.array(fc.tuple(fc.nat({ max: length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 });

function mutate(buf: Buffer, changes: Array<[number, number]>): Buffer {
  const copy = Buffer.from(buf);
  for (const [index, value] of changes) copy[index] = value;
  return copy;
}

describe('parser robustness (property-based)', () => {
  it('random bytes as a PKCS#12 secret never throw anything but KvvmError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        parsesOrRefuses(Buffer.from(bytes).toString('base64'), 'application/x-pkcs12');
      }),
      { numRuns: 1500, seed: 20240601 },
    );
  });

  it('random DER-looking bytes (starting with a SEQUENCE) without a content type never throw anything but KvvmError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        parsesOrRefuses(Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.from(bytes)]).toString('base64'), undefined);
      }),
      { numRuns: 1000, seed: 7 },
    );
  });

  it('random text as a PEM secret never throws anything but KvvmError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000, unit: 'binary' }), (text) => {
        parsesOrRefuses(text, 'application/x-pem-file');
      }),
      { numRuns: 1000, seed: 42 },
    );
  });

  it('a recorded PFX with 1–4 bytes changed parses or is refused with a KvvmError', () => {
    fc.assert(
      fc.property(fc.boolean(), mutation(Math.min(pfx2022.length, pfx2020.length)), (which, changes) => {
        parsesOrRefuses(mutate(which ? pfx2022 : pfx2020, changes).toString('base64'), 'application/x-pkcs12');
      }),
      { numRuns: 300, seed: 1234 },
    );
  });

  it('a recorded PFX cut at any length parses or is refused with a KvvmError', () => {
    fc.assert(
      fc.property(fc.nat({ max: pfx2022.length }), (length) => {
        parsesOrRefuses(pfx2022.subarray(0, length).toString('base64'), 'application/x-pkcs12');
      }),
      { numRuns: 300, seed: 99 },
    );
  });

  it('the recorded PEM with characters changed, inserted or removed parses or is refused with a KvvmError', () => {
    const edit = fc.tuple(fc.nat({ max: pem2020.length - 1 }), fc.constantFrom('', '-', '=', 'A', '\n', '\r\n', ' ', '\u0000', 'é'), fc.nat({ max: 3 }));
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        let text = pem2020;
        for (const [at, insert, remove] of edits) text = text.slice(0, at) + insert + text.slice(at + remove);
        parsesOrRefuses(text, 'application/x-pem-file');
      }),
      { numRuns: 800, seed: 5 },
    );
  });
});
