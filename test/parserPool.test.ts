/**
 * The service's parser pool (worker threads with a CPU-time budget), with real PFX: results equal the in-thread
 * parser's, a parse past its budget is stopped and reported, a slow secret does not hold up another, and closing
 * the pool (the service stopping) ends a parse in flight.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KvvmError } from '../handler/errors.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { createParserPool } from '../handler/certs/parserPool.js';
import { countFsCalls } from './helpers/fsCalls.js';
import { OpensslFactory } from './helpers/openssl.js';
import { loadSecretVectors } from './helpers/vectors.js';

const PKCS12 = 'application/x-pkcs12';

async function reasonOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KvvmError, String(err));
    return err.reason;
  }
  return 'accepted';
}

describe('parser pool (worker threads)', () => {
  let ssl: OpensslFactory;
  /**
   * -legacy at 200,000 iterations: 9 hash computations per iteration count (MAC, key and certificate bags), so 1.8 M,
   * just inside the work limit (2 M): a PFX that reads, slowly (about 0.2 s of CPU with the KDF's SHA-1 loop). At
   * 300,000 it asked for 2.7 M and was refused as malformed, which since the faster SHA-1 loop could come before a
   * 200 ms budget ran out (seen in CI).
   */
  let slowPfx: string;
  let passwordPfx: string;

  before(async () => {
    ssl = await OpensslFactory.create();
    const leaf = ssl.leaf('pool-leaf', undefined);
    slowPfx = ssl.pkcs12(leaf, [], { mode: 'legacy', exportArgs: ['-iter', '200000'] });
    passwordPfx = ssl.pkcs12(leaf, [], { mode: 'modern', password: 'hunter2' });
  });
  after(async () => ssl.cleanup());

  it('gives the same material as the in-thread parser for every recorded Key Vault secret', async () => {
    const pool = createParserPool();
    try {
      for (const v of loadSecretVectors()) {
        const expected = parseCertificateSecret(v.value, v.contentType);
        const got = await pool.parse(v.value, v.contentType);
        assert.equal(got.thumbprint, expected.thumbprint, v.file);
        assert.deepEqual(
          got.chain.map((c) => c.raw),
          expected.chain.map((c) => c.raw),
          v.file,
        );
        assert.deepEqual(got.privateKey.export({ type: 'pkcs8', format: 'der' }), expected.privateKey.export({ type: 'pkcs8', format: 'der' }), v.file);
        assert.equal(got.sourceFormat, expected.sourceFormat);
      }
    } finally {
      await pool.close();
    }
  });

  it('a refusal crosses back as the same KvvmError reason', async () => {
    const pool = createParserPool();
    try {
      assert.equal(await reasonOf(pool.parse(passwordPfx, PKCS12)), 'pkcs12-password');
      assert.equal(await reasonOf(pool.parse('not a pfx', PKCS12)), 'malformed-pkcs12');
    } finally {
      await pool.close();
    }
  });

  it('a parse past its CPU budget is stopped and reported; the pool goes on parsing', async () => {
    // A budget well under the slow parse's ~200 ms and well over an ordinary one's (a few ms; ~20 ms in a cold thread).
    const pool = createParserPool({ cpuBudgetMs: 60 });
    try {
      assert.equal(await reasonOf(pool.parse(slowPfx, PKCS12)), 'parse-budget');
      const v = loadSecretVectors()[0];
      assert.ok(v);
      assert.match((await pool.parse(v.value, v.contentType)).thumbprint, /^[0-9A-F]{40}$/);
    } finally {
      await pool.close();
    }
  });

  it('a slow secret does not hold up another one, and closing the pool ends the slow parse', async () => {
    const pool = createParserPool();
    const order: string[] = [];
    const slow = reasonOf(pool.parse(slowPfx, PKCS12)).then((r) => void order.push(`slow:${r}`));
    const v = loadSecretVectors()[0];
    assert.ok(v);
    await pool.parse(v.value, v.contentType).then(() => void order.push('fast'));
    await pool.close();
    await slow;
    assert.deepEqual(order, ['fast', 'slow:service-stopping']);
  });

  it("reads each worker's CPU time through its /proc stat file kept open: no open or readFile per parse", async () => {
    const pool = createParserPool();
    try {
      const v = loadSecretVectors()[0];
      assert.ok(v);
      await pool.parse(v.value, v.contentType); // the worker starts, says it is ready, and its stat file is opened
      const calls = await countFsCalls(async () => {
        for (let i = 0; i < 10; i++) await pool.parse(v.value, v.contentType);
      });
      // Before: readFileSync of /proc/self/task/<tid>/stat (open, fstat, read, close) at every parse's start.
      assert.equal(calls.byName['readFileSync'] ?? 0, 0, JSON.stringify(calls.byName));
      assert.equal(calls.byName['openSync'] ?? 0, 0, JSON.stringify(calls.byName));
      assert.ok((calls.byName['readSync'] ?? 0) >= 10, `the budget still reads the CPU time at each parse's start: ${JSON.stringify(calls.byName)}`);
    } finally {
      await pool.close();
    }
  });
});
