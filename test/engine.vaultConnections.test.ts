import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CERTIFICATES_PER_CONNECTION, SERVICE_CONCURRENCY, vaultConnections } from '../handler/engine/syncCycle.js';
import type { ObservedCertificate } from '../handler/settings/config.js';

function certs(vaultUrl: string, count: number): ObservedCertificate[] {
  const host = new URL(vaultUrl).hostname;
  return Array.from({ length: count }, (_, i) => ({
    sourceUrl: `${vaultUrl}/secrets/c${i}`,
    vaultUrl,
    vaultHost: host,
    vaultName: host.split('.')[0] ?? host,
    secretName: `c${i}`,
    target: { platform: 'linux', storeDir: '/tmp' } as unknown as ObservedCertificate['target'],
  }));
}

describe('vaultConnections: connections per vault for the service reader', () => {
  const a = 'https://alpha.vault.azure.net';
  const b = 'https://beta.vault.azure.net';

  it('one connection per CERTIFICATES_PER_CONNECTION certificates of each vault, counted apart', () => {
    const per = CERTIFICATES_PER_CONNECTION;
    const of = vaultConnections([...certs(a, 2), ...certs(b, per + 1)], SERVICE_CONCURRENCY);
    assert.equal(of(a), 1, 'a VM with two certificates opens one connection');
    assert.equal(of(b), 2);
    assert.equal(of('https://ALPHA.vault.azure.net'), 1, 'origins compare without case');
    assert.equal(of('https://gamma.vault.azure.net'), undefined, 'a vault not observed: no limit');
  });

  it('never more than the cycle has in flight, never fewer than one', () => {
    assert.equal(vaultConnections(certs(a, 10_000), SERVICE_CONCURRENCY)(a), SERVICE_CONCURRENCY);
    assert.equal(vaultConnections(certs(a, 100), 3)(a), 3);
    assert.equal(vaultConnections(certs(a, 1), 0)(a), 1);
  });

  it('an unparseable vault URL is left to the reader, which refuses it with its own message', () => {
    const bad = { ...certs(a, 1)[0]!, vaultUrl: 'not a url' };
    assert.equal(vaultConnections([bad, ...certs(a, 1)], SERVICE_CONCURRENCY)(a), 1);
  });
});
