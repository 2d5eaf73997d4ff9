import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvvmError } from '../../../handler/errors.js';
import { buildKeySddl, keyAclCall, resolveAccountSids, wellKnownSid } from '../../../handler/stores/windows/acl.js';
import { chainEngineFor, chainFlags, trustErrorNames } from '../../../handler/stores/windows/chain.js';
import { storeLocationOf, systemStoreFlags } from '../../../handler/platform/win32/certStore.js';
import { cngProbeFlags, pfxImportFlags } from '../../../handler/stores/windows/flags.js';
import { hresultOf } from '../../../handler/platform/win32/native.js';

/**
 * The exact arguments kvvm passes to Windows where Wine cannot show the effect (CNG import, key ACLs):
 * asserted as numbers and strings against the values in wincrypt.h / ncrypt.h / sddl.h.
 */
describe('PFXImportCertStore flags', () => {
  it('LocalMachine imports into the machine key set, CurrentUser into the user key set', () => {
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: false, cng: false }), 0x20);
    assert.equal(pfxImportFlags({ location: 'CurrentUser', keyExportable: false, cng: false }), 0x1000);
  });
  it('keyExportable adds CRYPT_EXPORTABLE and nothing else', () => {
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: true, cng: false }), 0x21);
    assert.equal(pfxImportFlags({ location: 'CurrentUser', keyExportable: true, cng: false }), 0x1001);
  });
  it('a platform that imports into CNG gets PKCS12_PREFER_CNG_KSP, never ALWAYS_CNG or NO_PERSIST on the real import', () => {
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: true, cng: true }), 0x121);
    assert.equal(pfxImportFlags({ location: 'LocalMachine', keyExportable: false, cng: true }), 0x120);
    assert.equal(pfxImportFlags({ location: 'CurrentUser', keyExportable: false, cng: true }) & (0x200 | 0x8000 | 0x10000), 0);
  });
  it('the capability probe asks for CNG without persisting a key', () => {
    assert.equal(cngProbeFlags(), 0x100 | 0x8000);
  });
  it('store locations are case-sensitive, as in the extension schema', () => {
    assert.equal(storeLocationOf('LocalMachine'), 'LocalMachine');
    assert.equal(storeLocationOf('CurrentUser'), 'CurrentUser');
    assert.equal(storeLocationOf('localmachine'), undefined);
    assert.equal(storeLocationOf('/var/lib/waagent'), undefined);
  });
  it('system stores open with the location flag; reads only open existing stores, read-only', () => {
    assert.equal(systemStoreFlags('LocalMachine', 'write'), 0x20000);
    assert.equal(systemStoreFlags('CurrentUser', 'write'), 0x10000);
    assert.equal(systemStoreFlags('LocalMachine', 'read'), 0x20000 | 0x4000 | 0x8000);
  });
});

describe('private key ACL', () => {
  it('SYSTEM and Administrators get full control, each account read, in a protected DACL', () => {
    assert.equal(buildKeySddl([]), 'D:P(A;;GA;;;SY)(A;;GA;;;BA)');
    assert.equal(buildKeySddl(['S-1-5-20', 'S-1-5-21-1-2-3-1001']), 'D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GR;;;S-1-5-20)(A;;GR;;;S-1-5-21-1-2-3-1001)');
  });
  it('duplicates are granted once and SYSTEM/Administrators are not downgraded to read', () => {
    assert.equal(buildKeySddl(['S-1-5-20', 's-1-5-20', 'S-1-5-18', 'S-1-5-32-544']), 'D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GR;;;S-1-5-20)');
  });
  it('refuses anything that is not a SID string (no SDDL injection through account names)', () => {
    assert.throws(() => buildKeySddl(['S-1-5-20)(A;;GA;;;WD']));
    assert.throws(() => buildKeySddl(['Everyone']));
  });
  it('well-known accounts resolve by SID whatever the spelling or language prefix', () => {
    for (const [name, sid] of [
      ['Network Service', 'S-1-5-20'],
      ['NT AUTHORITY\\NETWORK SERVICE', 'S-1-5-20'],
      ['NetworkService', 'S-1-5-20'],
      ['Local Service', 'S-1-5-19'],
      ['SYSTEM', 'S-1-5-18'],
      ['LocalSystem', 'S-1-5-18'],
      ['Administrators', 'S-1-5-32-544'],
      ['BUILTIN\\Administrators', 'S-1-5-32-544'],
      ['s-1-5-21-9-9-9-500', 'S-1-5-21-9-9-9-500'],
    ] as const)
      assert.equal(wellKnownSid(name), sid, name);
    assert.equal(wellKnownSid('CONTOSO\\webapp'), undefined);
  });
  it('other names go to LookupAccountNameW; an unknown account is an operator error', () => {
    const asked: string[] = [];
    const sids = resolveAccountSids(['Network Service', 'CONTOSO\\webapp'], (name) => {
      asked.push(name);
      return 'S-1-5-21-1-2-3-1105';
    });
    assert.deepEqual(sids, ['S-1-5-20', 'S-1-5-21-1-2-3-1105']);
    assert.deepEqual(asked, ['CONTOSO\\webapp']);
    assert.throws(
      () => resolveAccountSids(['nobody'], () => undefined),
      (e: unknown) => e instanceof KvvmError && e.reason === 'windows-account-unknown' && e.code > 0,
    );
  });
  it('CNG keys get the descriptor through NCryptSetProperty("Security Descr"), CAPI keys through PP_KEYSET_SEC_DESCR', () => {
    assert.deepEqual(keyAclCall('cng'), { api: 'NCryptSetProperty', property: 'Security Descr', flags: 4 });
    assert.deepEqual(keyAclCall('capi'), { api: 'CryptSetProvParam', param: 8, flags: 4 });
  });
});

describe('chain and error arguments', () => {
  it('chains are built offline and against the engine of the store location', () => {
    assert.equal(chainFlags(), 0x2000 | 0x4);
    assert.equal(chainEngineFor('LocalMachine'), 1);
    assert.equal(chainEngineFor('CurrentUser'), 0);
  });
  it('trust error bits are named for the operator', () => {
    assert.deepEqual(trustErrorNames(0x10020), ['CERT_TRUST_IS_UNTRUSTED_ROOT', 'CERT_TRUST_IS_PARTIAL_CHAIN']);
    assert.deepEqual(trustErrorNames(0), []);
  });
  it('Win32 error codes become HRESULTs; HRESULTs stay as they are', () => {
    assert.equal(hresultOf(5), 0x80070005);
    assert.equal(hresultOf(0x80092004), 0x80092004);
    assert.equal(hresultOf(0), 0);
  });
});
