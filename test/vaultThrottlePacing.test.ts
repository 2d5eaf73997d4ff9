/**
 * How a reader paces its requests to a vault (issue 12, item 5): a Retry-After pauses every request it sends to that
 * vault, and its first request goes alone. The real SDK-backed reader against the dev vault; sleeps are recorded by
 * the test vault's reader options, not waited.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import { startTestVault, type TestVault } from './helpers/devVault.js';

let tv: TestVault;

before(async () => {
  tv = await startTestVault();
  tv.vault.setSecret('paced-a', 'a');
  tv.vault.setSecret('paced-b', 'b');
});

after(async () => {
  await tv.close();
});

test("a request that starts during another request's Retry-After pause waits for it instead of drawing its own 429", async () => {
  const reader = createVaultReader(tv.readerOptions({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 40 } }));
  await reader.getSecret(tv.vault.vaultUrl, 'paced-a'); // challenge + token
  tv.sleeps.length = 0;
  tv.vault.resetStats();
  tv.vault.injectFaults({ status: 429, retryAfterS: 30, count: 1 });
  assert.equal((await reader.getSecret(tv.vault.vaultUrl, 'paced-a')).value, 'a');
  // The sleeps are recorded, not waited: the 30 s pause is still ahead on the real clock when the next read starts.
  assert.equal((await reader.getSecret(tv.vault.vaultUrl, 'paced-b')).value, 'b');
  assert.equal(tv.sleeps.length, 2, `sleeps: ${tv.sleeps.join(', ')}`);
  assert.equal(tv.sleeps[0], 30_000, 'the throttled request sleeps the Retry-After');
  assert.ok(tv.sleeps[1]! > 28_000 && tv.sleeps[1]! <= 30_000, `the next request waits out the rest of the pause (${tv.sleeps[1]} ms)`);
  const s = tv.vault.stats().vault;
  assert.equal(s.throttled, 1, 'one 429 in all');
  assert.equal(reader.stats.vault.byKind.throttled, 1);
  assert.equal(s.requests, 3, 'the throttled attempt, its retry, and the second read');
});

test('another reader (another VM) is not paused by this one', async () => {
  const first = createVaultReader(tv.readerOptions());
  const second = createVaultReader(tv.readerOptions());
  await first.getSecret(tv.vault.vaultUrl, 'paced-a');
  await second.getSecret(tv.vault.vaultUrl, 'paced-a');
  tv.sleeps.length = 0;
  tv.vault.injectFaults({ status: 429, retryAfterS: 30, count: 1 });
  await first.getSecret(tv.vault.vaultUrl, 'paced-a');
  await second.getSecret(tv.vault.vaultUrl, 'paced-b');
  assert.deepEqual(tv.sleeps, [30_000]);
});

test("a starting reader's concurrent first requests meet the vault's 401 challenge once and share one connection", async () => {
  const reader = createVaultReader(tv.readerOptions());
  tv.vault.resetStats();
  const values = await Promise.all(['paced-a', 'paced-b', 'paced-a', 'paced-b'].map((n) => reader.getSecret(tv.vault.vaultUrl, n)));
  assert.deepEqual(
    values.map((v) => v.value),
    ['a', 'b', 'a', 'b'],
  );
  const s = tv.vault.stats().vault;
  assert.equal(s.unauthorized, 1, 'one challenge');
  assert.equal(s.requests, 5, 'the challenge and four reads');
});

test("the service stopping ends a Retry-After wait at once: 'service-stopping', no retry sent", async () => {
  const stop = new AbortController();
  // The real sleep (not the recording one): the 120 s wait must end because of the stop, not because it elapsed.
  const options = tv.readerOptions({ signal: stop.signal });
  delete options.sleep;
  const reader = createVaultReader(options);
  await reader.getSecret(tv.vault.vaultUrl, 'paced-a'); // challenge + token
  tv.vault.resetStats();
  tv.vault.injectFaults({ status: 429, retryAfterS: 120, count: 1 });
  const read = reader.getSecret(tv.vault.vaultUrl, 'paced-a');
  while (reader.stats.vault.retries === 0) await new Promise((resolve) => setImmediate(resolve));
  stop.abort('SIGTERM');
  await assert.rejects(read, (err: unknown) => (err as { reason?: unknown }).reason === 'service-stopping');
  assert.equal(tv.vault.stats().vault.requests, 1, 'only the throttled attempt reached the vault');
});
