/**
 * http.sys SSL binding records (http.h), built and parsed as bytes so the layout is tested on Linux. Windows x64
 * layout (the package is win-x64): pointers 8 bytes, natural alignment.
 *
 *   HTTP_SERVICE_CONFIG_SSL_PARAM (80 bytes)           HTTP_SERVICE_CONFIG_SSL_SET      (88):  PSOCKADDR pIpPort @0, PARAM @8
 *     @0  ULONG  SslHashLength                        HTTP_SERVICE_CONFIG_SSL_SNI_SET  (216): SOCKADDR_STORAGE IpPort @0,
 *     @8  PVOID  pSslHash                                                                      PWSTR Host @128, PARAM @136
 *     @16 GUID   AppId                                HTTP_SERVICE_CONFIG_SSL_QUERY    (24):  QueryDesc @0, pIpPort @8, dwToken @16
 *     @32 PWSTR  pSslCertStoreName                    HTTP_SERVICE_CONFIG_SSL_SNI_QUERY (152): QueryDesc @0, SNI key @8, dwToken @144
 *     @40 DWORD  DefaultCertCheckMode
 *     @44 DWORD  DefaultRevocationFreshnessTime
 *     @48 DWORD  DefaultRevocationUrlRetrievalTimeout
 *     @56 PWSTR  pDefaultSslCtlIdentifier
 *     @64 PWSTR  pDefaultSslCtlStoreName
 *     @72 DWORD  DefaultFlags
 *
 * HttpQueryServiceConfiguration writes the record and everything it points at into the caller's output buffer, so
 * a record is parsed from that one buffer given its address (`base`): a pointer is an offset from it. Records to
 * set are built the same way: one arena holding the struct, the socket address, the hash and the strings.
 * Central-certificate-store (CCS) bindings carry no thumbprint (they load certificates from a file share), so
 * there is nothing of theirs to move.
 */

import { isIPv6 } from 'node:net';

// http.h: HTTP_SERVICE_CONFIG_ID and HTTP_SERVICE_CONFIG_QUERY_TYPE
const HttpServiceConfigSSLCertInfo = 1;
const HttpServiceConfigSslSniCertInfo = 7;
const HttpServiceConfigQueryNext = 2;
// ws2def.h
const AF_INET = 2;
const AF_INET6 = 23;

export const SSL_SET_SIZE = 88;
export const SNI_SET_SIZE = 216;
export const SSL_QUERY_SIZE = 24;
export const SNI_QUERY_SIZE = 152;
const SOCKADDR_STORAGE_SIZE = 128;

export type BindingKind = 'ipport' | 'hostport';

export interface SslBinding {
  kind: BindingKind;
  /** IPv4 dotted or IPv6 text ("0.0.0.0", "::"); for hostname:port bindings the (unused) address of the key. */
  ip: string;
  port: number;
  /** hostname:port bindings (SNI) only. */
  host?: string;
  /** Certificate thumbprint, upper-case hex. */
  hash: string;
  /** GUID in registry form, lower case: {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}. */
  appId: string;
  /** Certificate store name, e.g. "MY"; empty when http.sys uses its default. */
  storeName: string;
  certCheckMode: number;
  revocationFreshnessTime: number;
  revocationUrlRetrievalTimeout: number;
  ctlIdentifier: string;
  ctlStoreName: string;
  flags: number;
}

/** What `netsh http show sslcert` shows as the key: "0.0.0.0:443", "[::]:443", "www.contoso.com:443". */
export function bindingAddress(b: SslBinding): string {
  if (b.kind === 'hostport') return `${b.host ?? ''}:${b.port}`;
  return b.ip.includes(':') ? `[${b.ip}]:${b.port}` : `${b.ip}:${b.port}`;
}

/** The query for the `token`-th record of a kind (HttpServiceConfigQueryNext); no pointers inside. */
export function encodeQuery(kind: BindingKind, token: number): Buffer {
  const buf = Buffer.alloc(kind === 'ipport' ? SSL_QUERY_SIZE : SNI_QUERY_SIZE);
  buf.writeUInt32LE(HttpServiceConfigQueryNext, 0);
  buf.writeUInt32LE(token, kind === 'ipport' ? 16 : 144);
  return buf;
}

export function configIdOf(kind: BindingKind): number {
  return kind === 'ipport' ? HttpServiceConfigSSLCertInfo : HttpServiceConfigSslSniCertInfo;
}

/** Reads pointers in `buf` as addresses inside it (`base` = address of buf[0]). */
class Reader {
  constructor(
    private readonly buf: Buffer,
    private readonly base: bigint,
  ) {}

  offsetOf(pointerAt: number): number | undefined {
    const ptr = this.buf.readBigUInt64LE(pointerAt);
    if (ptr === 0n) return undefined;
    const offset = ptr - this.base;
    if (offset < 0n || offset >= BigInt(this.buf.length)) {
      throw new Error(`http.sys record: pointer at +${pointerAt} points outside the ${this.buf.length}-byte buffer`);
    }
    return Number(offset);
  }

  bytes(pointerAt: number, length: number): Buffer {
    const offset = this.offsetOf(pointerAt);
    if (offset === undefined || length === 0) return Buffer.alloc(0);
    if (offset + length > this.buf.length) throw new Error(`http.sys record: ${length} bytes at +${offset} overrun the buffer`);
    return this.buf.subarray(offset, offset + length);
  }

  wstring(pointerAt: number): string {
    const offset = this.offsetOf(pointerAt);
    if (offset === undefined) return '';
    let end = offset;
    while (end + 1 < this.buf.length && this.buf.readUInt16LE(end) !== 0) end += 2;
    if (end + 1 >= this.buf.length) throw new Error(`http.sys record: unterminated string at +${offset}`);
    return this.buf.toString('utf16le', offset, end);
  }
}

/** Parses one HTTP_SERVICE_CONFIG_SSL_SET / SSL_SNI_SET as HttpQueryServiceConfiguration returned it. */
export function parseSslSet(kind: BindingKind, buf: Buffer, base: bigint): SslBinding {
  const size = kind === 'ipport' ? SSL_SET_SIZE : SNI_SET_SIZE;
  if (buf.length < size) throw new Error(`http.sys record: ${buf.length} bytes, expected at least ${size}`);
  const r = new Reader(buf, base);
  let socket: Buffer;
  let host: string | undefined;
  if (kind === 'ipport') {
    socket = r.bytes(0, 28);
  } else {
    socket = buf.subarray(0, SOCKADDR_STORAGE_SIZE);
    host = r.wstring(128);
  }
  const { ip, port } = parseSockaddr(socket);
  const p = kind === 'ipport' ? 8 : 136;
  const binding: SslBinding = {
    kind,
    ip,
    port,
    hash: r
      .bytes(p + 8, buf.readUInt32LE(p))
      .toString('hex')
      .toUpperCase(),
    appId: guidToString(buf.subarray(p + 16, p + 32)),
    storeName: r.wstring(p + 32),
    certCheckMode: buf.readUInt32LE(p + 40),
    revocationFreshnessTime: buf.readUInt32LE(p + 44),
    revocationUrlRetrievalTimeout: buf.readUInt32LE(p + 48),
    ctlIdentifier: r.wstring(p + 56),
    ctlStoreName: r.wstring(p + 64),
    flags: buf.readUInt32LE(p + 72),
  };
  if (host !== undefined) binding.host = host;
  return binding;
}

/**
 * Builds the SET record for `binding` in an arena from `alloc` (which returns the buffer and its address), every
 * pointer aimed inside it. The same record serves HttpSetServiceConfiguration and, for its key, Delete.
 */
export function encodeSslSet(binding: SslBinding, alloc: (size: number) => { buf: Buffer; base: bigint }): { buf: Buffer; base: bigint; size: number } {
  const head = binding.kind === 'ipport' ? SSL_SET_SIZE : SNI_SET_SIZE;
  const sockaddr = encodeSockaddr(binding.ip, binding.port);
  const hash = Buffer.from(binding.hash, 'hex');
  const wide = (s: string): Buffer => (s === '' ? Buffer.alloc(0) : Buffer.from(`${s}\0`, 'utf16le'));
  const parts: Array<{ at: number; data: Buffer }> = [];
  let size = head;
  const place = (data: Buffer): number => {
    size = (size + 7) & ~7;
    const at = size;
    parts.push({ at, data });
    size += data.length;
    return at;
  };
  const sockAt = binding.kind === 'ipport' ? place(sockaddr) : -1;
  const hostAt = binding.kind === 'hostport' ? place(wide(binding.host ?? '')) : -1;
  const hashAt = place(hash);
  const storeAt = binding.storeName === '' ? -1 : place(wide(binding.storeName));
  const ctlAt = binding.ctlIdentifier === '' ? -1 : place(wide(binding.ctlIdentifier));
  const ctlStoreAt = binding.ctlStoreName === '' ? -1 : place(wide(binding.ctlStoreName));
  const { buf, base } = alloc(size);
  buf.fill(0, 0, size);
  for (const { at, data } of parts) data.copy(buf, at);
  const ptr = (field: number, at: number): void => void buf.writeBigUInt64LE(at < 0 ? 0n : base + BigInt(at), field);
  let p: number;
  if (binding.kind === 'ipport') {
    ptr(0, sockAt);
    p = 8;
  } else {
    sockaddr.copy(buf, 0);
    ptr(128, hostAt);
    p = 136;
  }
  buf.writeUInt32LE(hash.length, p);
  ptr(p + 8, hashAt);
  guidToBytes(binding.appId).copy(buf, p + 16);
  ptr(p + 32, storeAt);
  buf.writeUInt32LE(binding.certCheckMode, p + 40);
  buf.writeUInt32LE(binding.revocationFreshnessTime, p + 44);
  buf.writeUInt32LE(binding.revocationUrlRetrievalTimeout, p + 48);
  ptr(p + 56, ctlAt);
  ptr(p + 64, ctlStoreAt);
  buf.writeUInt32LE(binding.flags, p + 72);
  return { buf, base, size };
}

/** SOCKADDR_IN (16 bytes) or SOCKADDR_IN6 (28 bytes); the port in network byte order. */
export function encodeSockaddr(ip: string, port: number): Buffer {
  if (!ip.includes(':')) {
    const buf = Buffer.alloc(16);
    buf.writeUInt16LE(AF_INET, 0);
    buf.writeUInt16BE(port, 2);
    const octets = ip.split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) throw new Error(`not an IPv4 address: ${ip}`);
    Buffer.from(octets).copy(buf, 4);
    return buf;
  }
  const buf = Buffer.alloc(28);
  buf.writeUInt16LE(AF_INET6, 0);
  buf.writeUInt16BE(port, 2);
  ipv6ToBytes(ip).copy(buf, 8);
  return buf;
}

export function parseSockaddr(buf: Buffer): { ip: string; port: number } {
  const family = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (family === AF_INET) return { ip: [...buf.subarray(4, 8)].join('.'), port };
  if (family === AF_INET6) return { ip: ipv6ToText(buf.subarray(8, 24)), port };
  throw new Error(`http.sys record: unknown address family ${family}`);
}

function ipv6ToBytes(ip: string): Buffer {
  if (!isIPv6(ip) || ip.includes('.') || ip.includes('%')) throw new Error(`not an IPv6 address: ${ip}`);
  const [head = '', tail] = ip.split('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const missing = 8 - h.length - t.length;
  if ((tail === undefined && missing !== 0) || missing < 0) throw new Error(`not an IPv6 address: ${ip}`);
  const all = [...h, ...Array<string>(missing).fill('0'), ...t];
  const buf = Buffer.alloc(16);
  all.forEach((g, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new Error(`not an IPv6 address: ${ip}`);
    buf.writeUInt16BE(parseInt(g, 16), i * 2);
  });
  return buf;
}

function ipv6ToText(bytes: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
  // Compress the longest run of zero groups (RFC 5952), as netsh shows "[::]:443".
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len && j - i > 1) best = { at: i, len: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/** GUID bytes (Data1..3 little-endian, Data4 as is) → "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}". */
export function guidToString(b: Buffer): string {
  const hex = (x: Buffer): string => x.toString('hex');
  const le = (x: Buffer): string => hex(Buffer.from(x).reverse());
  return `{${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${hex(b.subarray(8, 10))}-${hex(b.subarray(10, 16))}}`;
}

export function guidToBytes(text: string): Buffer {
  const m = /^\{?([0-9a-fA-F]{8})-([0-9a-fA-F]{4})-([0-9a-fA-F]{4})-([0-9a-fA-F]{4})-([0-9a-fA-F]{12})\}?$/.exec(text);
  if (!m) throw new Error(`not a GUID: ${text}`);
  const le = (h: string): Buffer => Buffer.from(h, 'hex').reverse();
  return Buffer.concat([le(m[1]!), le(m[2]!), le(m[3]!), Buffer.from(m[4]! + m[5]!, 'hex')]);
}
