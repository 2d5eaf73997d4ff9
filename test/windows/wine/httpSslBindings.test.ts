/**
 * httpapi.dll through koffi, as far as Wine runs it. Wine's httpapi implements HttpInitialize and answers the
 * configuration calls with stubs (query: ERROR_FILE_NOT_FOUND, set/delete: NO_ERROR), so here the declarations,
 * the struct passed by value, the native arenas and the whole move path run for real against those stubs; what
 * http.sys does with the records is checked on Windows Server with the PowerShell in docs/windows.md.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { underWine } from './fixture.js';
import { loadNative } from '../../../handler/platform/win32/native.js';
import { allocArena, createHttpSslApi, moveBindings } from '../../../handler/stores/windows/httpSslBindings.js';
import { encodeSslSet, parseSslSet, type SslBinding } from '../../../handler/stores/windows/httpSslRecords.js';

const binding: SslBinding = {
  kind: 'hostport',
  ip: '0.0.0.0',
  port: 44399,
  host: 'kvvm-wine.test',
  hash: 'A1B2C3D4E5F60718293A4B5C6D7E8F9011223344',
  appId: '{4dc3e181-e14b-4a21-b022-59fc669b0914}',
  storeName: 'MY',
  certCheckMode: 0,
  revocationFreshnessTime: 0,
  revocationUrlRetrievalTimeout: 0,
  ctlIdentifier: '',
  ctlStoreName: '',
  flags: 0,
};

describe('http.sys bindings through httpapi.dll', () => {
  it('a record built in native memory reads back through its real address', () => {
    const native = loadNative();
    let arena: ReturnType<typeof allocArena> | undefined;
    const record = encodeSslSet(binding, (size) => {
      arena = allocArena(native, size);
      return { buf: arena.buf, base: arena.base };
    });
    try {
      assert.ok(record.base > 0n);
      // Read the bytes back from the native pointer, not from the JS buffer that wrote them.
      const copy = Buffer.from(native.koffi.view(arena!.ptr, record.size));
      assert.deepEqual(parseSslSet('hostport', copy, record.base), binding);
    } finally {
      native.koffi.free(arena!.ptr);
    }
  });

  it('HttpInitialize, enumeration of both kinds, and a move run through koffi', () => {
    const api = createHttpSslApi();
    try {
      const ip = api.list('ipport');
      const sni = api.list('hostport');
      assert.ok(Array.isArray(ip) && Array.isArray(sni));
      if (underWine()) assert.deepEqual([...ip, ...sni], [], "Wine's stub lists nothing");
      const moved = moveBindings(api, 'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', binding.hash);
      assert.deepEqual(moved, { moved: [], failed: [] }, 'no binding uses a thumbprint that does not exist');
      if (underWine()) {
        // Delete + set of a record built in native memory: Wine's stubs accept it.
        assert.doesNotThrow(() => api.replace(binding, { ...binding, hash: '00112233445566778899AABBCCDDEEFF00112233' }));
      } else {
        assert.throws(() => api.replace(binding, binding), /HttpDeleteServiceConfiguration failed/);
      }
    } finally {
      api.close();
    }
  });
});
