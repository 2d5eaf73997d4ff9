import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeState, encodeState, friendlyNameOf, nextCounter, versionsOf, type StoreEntry } from '../../../handler/stores/windows/state.js';

const at = new Date('2030-01-01T00:00:00Z');
function entry(thumbprint: string, owners: StoreEntry['state']['owners']): StoreEntry {
  return { thumbprint, notAfter: at, state: { owners } };
}

describe('Windows store labels and state', () => {
  it('the friendly name tells operators which vault certificate and version it is', () => {
    assert.equal(friendlyNameOf({ vaultName: 'contoso', secretName: 'web', version: 'abc123' }), 'kvvm:contoso/web/abc123');
  });
  it('the description state round-trips, and anything not written by kvvm is ignored', () => {
    const state = { owners: [{ vault: 'v', secret: 's', version: '1', installed: 1, activated: 2 }], adopted: true };
    assert.deepEqual(decodeState(encodeState(state)), state);
    assert.equal(decodeState(undefined), undefined);
    assert.equal(decodeState('Web server certificate'), undefined);
    assert.equal(decodeState('kvvm:{not json'), undefined);
    assert.deepEqual(decodeState('kvvm:{"owners":[{"vault":"v"},{"vault":"v","secret":"s","version":"2","installed":3}]}'), {
      owners: [{ vault: 'v', secret: 's', version: '2', installed: 3 }],
    });
  });
  it('versions are listed newest install first; the last activated one is active', () => {
    const entries = [
      entry('AA', [{ vault: 'v', secret: 's', version: '1', installed: 1, activated: 1 }]),
      entry('BB', [
        { vault: 'v', secret: 's', version: '2', installed: 2, activated: 2 },
        { vault: 'v', secret: 'other', version: '9', installed: 1 },
      ]),
      entry('CC', [{ vault: 'v', secret: 's', version: '3', installed: 3 }]),
    ];
    assert.deepEqual(
      versionsOf(entries, 'v', 's').map((x) => [x.owner.version, x.entry.thumbprint, x.active]),
      [
        ['3', 'CC', false],
        ['2', 'BB', true],
        ['1', 'AA', false],
      ],
    );
    assert.deepEqual(
      versionsOf(entries, 'v', 'other').map((x) => [x.owner.version, x.active]),
      [['9', false]],
    );
    assert.deepEqual(versionsOf(entries, 'v', 'none'), []);
  });
  it('counters continue from what the store holds for that secret only', () => {
    const entries = [
      entry('AA', [
        { vault: 'v', secret: 's', version: '1', installed: 4, activated: 2 },
        { vault: 'v', secret: 't', version: '1', installed: 9 },
      ]),
    ];
    assert.equal(nextCounter(entries, 'v', 's', 'installed'), 5);
    assert.equal(nextCounter(entries, 'v', 's', 'activated'), 3);
    assert.equal(nextCounter(entries, 'v', 'x', 'installed'), 1);
  });
});
