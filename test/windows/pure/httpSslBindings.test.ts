/**
 * http.sys SSL binding records (httpSslRecords.ts) byte for byte against the documented x64 layout of http.h, and
 * the binding move (httpSslBindings.ts, consumers/bindings.ts) over a recording api. httpapi.dll itself runs in the
 * Wine test (wine/httpSslBindings.test.ts) as far as Wine implements it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  bindingAddress,
  encodeQuery,
  encodeSslSet,
  encodeSockaddr,
  guidToBytes,
  guidToString,
  parseSockaddr,
  parseSslSet,
  SNI_QUERY_SIZE,
  SNI_SET_SIZE,
  SSL_QUERY_SIZE,
  SSL_SET_SIZE,
  type SslBinding,
} from '../../../handler/stores/windows/httpSslRecords.js';
import { moveBindings, type HttpSslApi } from '../../../handler/stores/windows/httpSslBindings.js';
import { updateBindings } from '../../../handler/consumers/bindings.js';
import { createFollowUpMemory } from '../../../handler/consumers/followUps.js';
import type { CertificateSyncResult } from '../../../handler/engine/certificateSync.js';
import type { ObservedCertificate } from '../../../handler/settings/config.js';
import { windowsObserved } from '../../helpers/observed.js';

const OLD = 'A1B2C3D4E5F60718293A4B5C6D7E8F9011223344';
const NEW = '00112233445566778899AABBCCDDEEFF00112233';
const IIS_APP_ID = '{4dc3e181-e14b-4a21-b022-59fc669b0914}';
const BASE = 0x7ff6_1234_0000n;

function ipBinding(ip: string, port: number, hash = OLD): SslBinding {
  return {
    kind: 'ipport',
    ip,
    port,
    hash,
    appId: IIS_APP_ID,
    storeName: 'MY',
    certCheckMode: 0,
    revocationFreshnessTime: 0,
    revocationUrlRetrievalTimeout: 0,
    ctlIdentifier: '',
    ctlStoreName: '',
    flags: 0,
  };
}

const arena = (size: number): { buf: Buffer; base: bigint } => ({ buf: Buffer.alloc(size, 0xcc), base: BASE });

describe('http.sys SSL records', () => {
  it('builds HTTP_SERVICE_CONFIG_SSL_SET at the documented offsets, every pointer inside the arena', () => {
    const b = { ...ipBinding('10.1.2.3', 443), certCheckMode: 1, revocationFreshnessTime: 7, revocationUrlRetrievalTimeout: 9, flags: 0x10 };
    const { buf, size } = encodeSslSet(b, arena);
    assert.equal(SSL_SET_SIZE, 88);
    // pIpPort -> SOCKADDR_IN right after the struct: AF_INET, port 443 big-endian, 10.1.2.3
    const sockAt = Number(buf.readBigUInt64LE(0) - BASE);
    assert.equal(sockAt, 88);
    assert.deepEqual([...buf.subarray(sockAt, sockAt + 8)], [2, 0, 0x01, 0xbb, 10, 1, 2, 3]);
    assert.equal(buf.readUInt32LE(8), 20, 'SslHashLength');
    const hashAt = Number(buf.readBigUInt64LE(16) - BASE);
    assert.equal(
      buf
        .subarray(hashAt, hashAt + 20)
        .toString('hex')
        .toUpperCase(),
      OLD,
    );
    assert.equal(guidToString(buf.subarray(24, 40)), IIS_APP_ID);
    const storeAt = Number(buf.readBigUInt64LE(40) - BASE);
    assert.equal(buf.toString('utf16le', storeAt, storeAt + 6), 'MY\0');
    assert.deepEqual([buf.readUInt32LE(48), buf.readUInt32LE(52), buf.readUInt32LE(56)], [1, 7, 9]);
    assert.equal(buf.readBigUInt64LE(64), 0n, 'no CTL identifier: NULL');
    assert.equal(buf.readBigUInt64LE(72), 0n, 'no CTL store: NULL');
    assert.equal(buf.readUInt32LE(80), 0x10, 'DefaultFlags');
    for (const at of [sockAt, hashAt, storeAt]) assert.equal(at % 8, 0, 'aligned');
    assert.ok(storeAt + 6 <= size);
  });

  it('builds HTTP_SERVICE_CONFIG_SSL_SNI_SET with the address inline and the host name pointer at +128', () => {
    const b: SslBinding = { ...ipBinding('0.0.0.0', 8443), kind: 'hostport', host: 'www.contoso.com' };
    const { buf } = encodeSslSet(b, arena);
    assert.equal(SNI_SET_SIZE, 216);
    assert.deepEqual(parseSockaddr(buf.subarray(0, 128)), { ip: '0.0.0.0', port: 8443 });
    const hostAt = Number(buf.readBigUInt64LE(128) - BASE);
    assert.ok(hostAt >= 216);
    assert.equal(buf.toString('utf16le', hostAt, hostAt + 32), 'www.contoso.com\0');
    assert.equal(buf.readUInt32LE(136), 20, 'PARAM starts at +136');
    assert.equal(guidToString(buf.subarray(152, 168)), IIS_APP_ID);
  });

  it('parses what it builds, for IPv4, IPv6 and hostname:port bindings, keeping every field', () => {
    const cases: SslBinding[] = [
      ipBinding('0.0.0.0', 443),
      { ...ipBinding('::', 443), ctlIdentifier: 'ctl-id', ctlStoreName: 'Root', flags: 3, certCheckMode: 4 },
      ipBinding('fe80::1:2', 44300),
      ipBinding('2001:db8:0:0:1:0:0:1', 1),
      { ...ipBinding('0.0.0.0', 443), kind: 'hostport', host: 'api.contoso.com', storeName: 'WebHosting' },
      { ...ipBinding('127.0.0.1', 5986), storeName: '' },
    ];
    for (const b of cases) {
      const { buf } = encodeSslSet(b, arena);
      const parsed = parseSslSet(b.kind, buf, BASE);
      const expected = b.ip === '2001:db8:0:0:1:0:0:1' ? { ...b, ip: '2001:db8::1:0:0:1' } : b;
      assert.deepEqual(parsed, expected, JSON.stringify(b));
    }
    assert.equal(bindingAddress(ipBinding('::', 443)), '[::]:443');
    assert.equal(bindingAddress({ ...ipBinding('0.0.0.0', 443), kind: 'hostport', host: 'www.contoso.com' }), 'www.contoso.com:443');
  });

  it('refuses records whose pointers leave the buffer or whose strings are unterminated', () => {
    const { buf } = encodeSslSet(ipBinding('0.0.0.0', 443), arena);
    const outside = Buffer.from(buf);
    outside.writeBigUInt64LE(BASE + 100_000n, 16);
    assert.throws(() => parseSslSet('ipport', outside, BASE), /outside/);
    const below = Buffer.from(buf);
    below.writeBigUInt64LE(BASE - 8n, 0);
    assert.throws(() => parseSslSet('ipport', below, BASE), /outside/);
    const storeAt = Number(buf.readBigUInt64LE(40) - BASE);
    const unterminated = Buffer.from(buf.subarray(0, storeAt + 4));
    assert.throws(() => parseSslSet('ipport', unterminated, BASE), /unterminated|overrun|outside/);
    assert.throws(() => parseSslSet('ipport', Buffer.alloc(40), BASE), /expected at least 88/);
    const family = Buffer.from(buf);
    family.writeUInt16LE(99, 88);
    assert.throws(() => parseSslSet('ipport', family, BASE), /address family 99/);
  });

  it('builds the enumeration queries: HttpServiceConfigQueryNext and the token at the documented offset', () => {
    const ip = encodeQuery('ipport', 5);
    assert.equal(ip.length, SSL_QUERY_SIZE);
    assert.equal(ip.readUInt32LE(0), 2);
    assert.equal(ip.readBigUInt64LE(8), 0n, 'no key for QueryNext');
    assert.equal(ip.readUInt32LE(16), 5);
    const sni = encodeQuery('hostport', 7);
    assert.equal(sni.length, SNI_QUERY_SIZE);
    assert.equal(sni.readUInt32LE(144), 7);
  });

  it('GUIDs and socket addresses round-trip; bad ones are refused', () => {
    assert.equal(guidToString(guidToBytes(IIS_APP_ID)), IIS_APP_ID);
    assert.deepEqual([...guidToBytes(IIS_APP_ID).subarray(0, 4)], [0x81, 0xe1, 0xc3, 0x4d], 'Data1 little-endian');
    assert.throws(() => guidToBytes('not-a-guid'));
    assert.equal(encodeSockaddr('::1', 443).length, 28);
    assert.deepEqual(parseSockaddr(encodeSockaddr('::1', 443)), { ip: '::1', port: 443 });
    for (const bad of ['1.2.3', '256.1.1.1', '1::2::3', 'fe80::xyz']) assert.throws(() => encodeSockaddr(bad, 1), bad);
  });
});

/** An in-memory http.sys that records every replace. */
function recordingApi(bindings: SslBinding[], failOn?: string): HttpSslApi & { calls: Array<[SslBinding, SslBinding]> } {
  const calls: Array<[SslBinding, SslBinding]> = [];
  return {
    calls,
    list: (kind) => bindings.filter((b) => b.kind === kind),
    replace(current, next) {
      if (bindingAddress(current) === failOn) throw new Error('HttpSetServiceConfiguration failed with 0x00000005 while moving');
      calls.push([current, next]);
    },
    close: () => undefined,
  };
}

describe('moving bindings to the new thumbprint', () => {
  it('moves only the bindings on the replaced thumbprint, IP:port and hostname:port, keeping every other field', () => {
    const sni: SslBinding = { ...ipBinding('0.0.0.0', 443), kind: 'hostport', host: 'www.contoso.com', storeName: 'WebHosting', flags: 2 };
    const api = recordingApi([ipBinding('0.0.0.0', 443), ipBinding('0.0.0.0', 8443, NEW), { ...ipBinding('::', 443), hash: OLD }, sni]);
    const out = moveBindings(api, OLD.toLowerCase(), NEW);
    assert.deepEqual(out.moved, ['0.0.0.0:443', '[::]:443', 'www.contoso.com:443']);
    assert.deepEqual(out.failed, []);
    for (const [current, next] of api.calls) assert.deepEqual(next, { ...current, hash: NEW });
  });

  it('reports a binding it could not move and goes on with the others', () => {
    const api = recordingApi([ipBinding('0.0.0.0', 443), ipBinding('0.0.0.0', 444)], '0.0.0.0:443');
    const out = moveBindings(api, OLD, NEW);
    assert.deepEqual(out.moved, ['0.0.0.0:444']);
    assert.equal(out.failed[0]?.address, '0.0.0.0:443');
  });

  it('after a rotation with updateBindings, the substatus lists the moved bindings; without it nothing is touched', async () => {
    const cert = windowsObserved('v', 'web', 'LocalMachine', 'MY', { updateBindings: true });
    const result = (c: ObservedCertificate): CertificateSyncResult => ({
      cert: c,
      state: 'installed',
      changed: true,
      activeVersion: 'v2',
      thumbprint: NEW,
      activated: { previousVersion: 'v1', previousThumbprint: OLD },
    });
    const moves: Array<[string, string]> = [];
    const deps = {
      move: (from: string, to: string) => {
        moves.push([from, to]);
        return { moved: ['0.0.0.0:443'], failed: [] };
      },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    };
    const memory = createFollowUpMemory();
    const results = [result(cert), result({ ...cert, secretName: 'other', target: { ...cert.target, updateBindings: false } }), { ...result(cert), activated: {} }];
    updateBindings(results, deps, memory);
    await memory.finish(results);
    assert.deepEqual(moves, [[OLD, NEW]], 'only the opted-in certificate that replaced a version');
    assert.deepEqual(results[0]!.followUps, [{ ok: true, text: `Moved http.sys bindings 0.0.0.0:443 to thumbprint ${NEW}.` }]);
  });
});
