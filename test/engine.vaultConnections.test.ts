import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CERTIFICATES_PER_CONNECTION, SERVICE_CONCURRENCY, vaultConnections } from '../handler/engine/syncCycle.js';
import type { ObservedCertificate } from '../handler/settings/config.js';
import { linuxObserved } from './helpers/observed.js';

/** `count` certificates of the vault https://<vault>.vault.azure.net. */
function certs(vault: string, count: number): ObservedCertificate[] {
  return Array.from({ length: count }, (_, i) => linuxObserved(vault, `c${i}`, '/tmp'));
}

describe('vaultConnections: connections per vault for the service reader', () => {
  const a = 'https://alpha.vault.azure.net';
  const b = 'https://beta.vault.azure.net';

  it('one connection per CERTIFICATES_PER_CONNECTION certificates of each vault, counted apart', () => {
    const per = CERTIFICATES_PER_CONNECTION;
    const of = vaultConnections([...certs('alpha', 2), ...certs('beta', per + 1)], SERVICE_CONCURRENCY);
    assert.equal(of(a), 1, 'a VM with two certificates opens one connection');
    assert.equal(of(b), 2);
    assert.equal(of('https://ALPHA.vault.azure.net'), 1, 'origins compare without case');
    assert.equal(of('https://gamma.vault.azure.net'), undefined, 'a vault not observed: no limit');
  });

  it('never more than the cycle has in flight, never fewer than one', () => {
    assert.equal(vaultConnections(certs('alpha', 10_000), SERVICE_CONCURRENCY)(a), SERVICE_CONCURRENCY);
    assert.equal(vaultConnections(certs('alpha', 100), 3)(a), 3);
    assert.equal(vaultConnections(certs('alpha', 1), 0)(a), 1);
  });

  it('an unparseable vault URL is left to the reader, which refuses it with its own message', () => {
    const bad = { ...certs('alpha', 1)[0]!, vaultUrl: 'not a url' };
    assert.equal(vaultConnections([bad, ...certs('alpha', 1)], SERVICE_CONCURRENCY)(a), 1);
  });
});
