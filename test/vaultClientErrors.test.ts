/** Pure mapping/backoff rules that cannot be provoked against a local server (DNS, foreign TLS codes, dates). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs, MAX_RETRY_AFTER_MS, parseRetryAfter } from '../handler/vault/backoff.js';
import { classifyVaultError, mapVaultError } from '../handler/vault/vaultErrors.js';

const ctx = { vaultUrl: 'https://myvault.vault.azure.net', secretName: 'web', identity: "the VM's system-assigned identity" };
const netError = (code: string): Error => Object.assign(new Error(`connect ${code}`), { name: 'RestError', code });

test('DNS failure is vault-unreachable, not retried, with a fix about name resolution', () => {
  const err = netError('ENOTFOUND');
  assert.deepEqual(classifyVaultError(err), { retry: false });
  const mapped = mapVaultError(err, ctx);
  assert.equal(mapped.reason, 'vault-unreachable');
  assert.match(mapped.fix ?? '', /resolve/);
});

test('certificate verification codes are tls-failure and never retried', () => {
  for (const code of ['SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']) {
    assert.deepEqual(classifyVaultError(netError(code)), { retry: false }, code);
    assert.equal(mapVaultError(netError(code), ctx).reason, 'tls-failure', code);
  }
});

test('connection resets and timeouts are retried as network errors', () => {
  for (const code of ['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EAI_AGAIN']) {
    assert.deepEqual(classifyVaultError(netError(code)), { retry: true, kind: 'network' }, code);
  }
});

test('backoff grows exponentially, is capped, and keeps at least half the step', () => {
  const o = { maxAttempts: 10, baseDelayMs: 1000, maxDelayMs: 30_000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelayMs(n, o, () => 0)),
    [500, 1000, 2000, 4000, 8000, 15000, 15000],
  );
  assert.deepEqual(
    [1, 2, 6].map((n) => backoffDelayMs(n, o, () => 0.999999)),
    [1000, 2000, 30000],
  );
});

test('Retry-After accepts seconds and HTTP dates and is capped', () => {
  const now = () => Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('7', now), 7000);
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('99999', now), MAX_RETRY_AFTER_MS);
  assert.equal(parseRetryAfter(undefined, now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
});
