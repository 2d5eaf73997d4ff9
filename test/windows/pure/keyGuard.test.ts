import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pfxImportFlags } from '../../../handler/stores/windows/flags.js';
import { keyGuardProbeFlags, locationLabel, useKeyGuard } from '../../../handler/stores/windows/keyGuard.js';
import { decodeState, encodeState } from '../../../handler/stores/windows/state.js';

/** KeyGuard (VBS-isolated keys, Windows Server 2025): the flag choice, as numbers against wincrypt.h. Wine has no VBS. */
describe('KeyGuard: PKCS12_VIRTUAL_ISOLATION_KEY on import', () => {
  it('is probed with a non-persisted CNG import carrying the flag', () => {
    assert.equal(keyGuardProbeFlags(), 0x100 | 0x8000 | 0x10000); // PREFER_CNG_KSP | NO_PERSIST_KEY | VIRTUAL_ISOLATION_KEY
  });
  it('is chosen only when the probe says yes, the import is CNG, and the key need not be exportable', () => {
    assert.equal(useKeyGuard({ keyExportable: false, cng: true, keyGuardSupported: true }), true);
    assert.equal(useKeyGuard({ keyExportable: true, cng: true, keyGuardSupported: true }), false, 'VBS keys can never be exported');
    assert.equal(useKeyGuard({ keyExportable: false, cng: false, keyGuardSupported: true }), false);
    assert.equal(useKeyGuard({ keyExportable: false, cng: true, keyGuardSupported: false }), false, 'no VBS (Wine, older Windows): plain CNG');
  });
  it('a KeyGuard import is CNG + VIRTUAL_ISOLATION, never CRYPT_EXPORTABLE, in the machine or user key set', () => {
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: false, cng: true, keyGuard: true }), 0x20 | 0x100 | 0x10000);
    assert.equal(pfxImportFlags({ location: 'CurrentUser', keyExportable: false, cng: true, keyGuard: true }), 0x1000 | 0x100 | 0x10000);
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: true, cng: true, keyGuard: true }) & 0x1, 0);
  });
  it('the fallback import is the plain one: no isolation flag', () => {
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: false, cng: true, keyGuard: false }), 0x20 | 0x100);
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: false, cng: false }), 0x20);
  });
  it('is reported in the location (status and the "installed version" log line) and remembered in the store description', () => {
    assert.equal(locationLabel('LocalMachine\\My', true), 'LocalMachine\\My (KeyGuard)');
    assert.equal(locationLabel('LocalMachine\\My', false), 'LocalMachine\\My');
    const owners = [{ vault: 'v', secret: 's', version: 'a', installed: 1 }];
    assert.deepEqual(decodeState(encodeState({ owners, keyGuard: true })), { owners, keyGuard: true });
    assert.deepEqual(decodeState(encodeState({ owners })), { owners });
  });
});
