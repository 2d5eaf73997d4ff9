/**
 * A small BER/DER reader for the structures PKCS#12 nests (PFX, ContentInfo, SafeBag, AlgorithmIdentifier).
 * BER because PKCS#12 allows it (Java and Windows write indefinite lengths and chunked OCTET STRINGs); nothing here
 * allocates more than the input: values are views into it, and nesting is bounded.
 */

/** Deeper than any PKCS#12 structure (about 12 levels); a limit so a hostile input cannot exhaust the stack. */
const MAX_DEPTH = 64;

export const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x10,
  SET: 0x11,
} as const;

const CLASS_UNIVERSAL = 0;
const CLASS_CONTEXT = 2;

export interface Tlv {
  cls: number;
  constructed: boolean;
  /** Tag number within its class (low-tag form only; PKCS#12 needs nothing else). */
  tag: number;
  /** The content octets (for an indefinite length: up to, not including, the end-of-contents marker). */
  contents: Buffer;
  /** Offset just past this element (after its end-of-contents marker, if any) in the buffer it was read from. */
  end: number;
  /** The whole element as encoded (identifier, length, contents). */
  raw: Buffer;
}

/** Thrown for any encoding error; the PKCS#12 reader turns it into a KvvmError naming the structure. */
export class DerError extends Error {}

/** One element at `offset`. */
function readTlv(buf: Buffer, offset = 0, depth = 0): Tlv {
  if (depth > MAX_DEPTH) throw new DerError(`ASN.1 nested deeper than ${MAX_DEPTH} levels`);
  if (offset + 2 > buf.length) throw new DerError('ASN.1 element cut short');
  const id = buf[offset] as number;
  const cls = id >> 6;
  const constructed = (id & 0x20) !== 0;
  const tag = id & 0x1f;
  if (tag === 0x1f) throw new DerError('ASN.1 high tag numbers are not used by PKCS#12');
  let pos = offset + 1;
  const first = buf[pos++] as number;
  if (first === 0x80) {
    if (!constructed) throw new DerError('ASN.1 indefinite length on a primitive element');
    const start = pos;
    for (;;) {
      if (pos + 2 > buf.length) throw new DerError('ASN.1 indefinite-length element without its end marker');
      if (buf[pos] === 0 && buf[pos + 1] === 0) return { cls, constructed, tag, contents: buf.subarray(start, pos), end: pos + 2, raw: buf.subarray(offset, pos + 2) };
      pos = readTlv(buf, pos, depth + 1).end;
    }
  }
  let length = first;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n > 4) throw new DerError('ASN.1 length above 4 GiB');
    if (pos + n > buf.length) throw new DerError('ASN.1 length cut short');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (buf[pos++] as number);
  }
  if (pos + length > buf.length) throw new DerError('ASN.1 length runs past the end of its container');
  return { cls, constructed, tag, contents: buf.subarray(pos, pos + length), end: pos + length, raw: buf.subarray(offset, pos + length) };
}

/** Reads `buf` as exactly one element (no trailing bytes). */
export function readOne(buf: Buffer): Tlv {
  const tlv = readTlv(buf, 0);
  if (tlv.end !== buf.length) throw new DerError('trailing bytes after the ASN.1 element');
  return tlv;
}

/** The elements inside a constructed element. */
export function childrenOf(tlv: Tlv, depth = 0): Tlv[] {
  if (!tlv.constructed) throw new DerError('expected a constructed ASN.1 element');
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < tlv.contents.length) {
    const child = readTlv(tlv.contents, pos, depth + 1);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function expectUniversal(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (tlv === undefined || tlv.cls !== CLASS_UNIVERSAL || tlv.tag !== tag) throw new DerError(`${what} is missing or of the wrong type`);
  return tlv;
}

export function sequenceOf(tlv: Tlv | undefined, what: string): Tlv[] {
  const seq = expectUniversal(tlv, TAG.SEQUENCE, what);
  return childrenOf(seq);
}

/** [n] EXPLICIT wrapper: its single inner element. */
export function explicit(tlv: Tlv | undefined, n: number, what: string): Tlv {
  if (tlv === undefined || tlv.cls !== CLASS_CONTEXT || tlv.tag !== n || !tlv.constructed) throw new DerError(`${what} is missing`);
  const inner = childrenOf(tlv);
  if (inner.length !== 1) throw new DerError(`${what} holds ${inner.length} elements instead of one`);
  return inner[0] as Tlv;
}

/** An OCTET STRING's bytes, joining the chunks of a constructed (BER) one. */
export function octets(tlv: Tlv, what: string, depth = 0): Buffer {
  if (!tlv.constructed) return tlv.contents;
  if (depth > MAX_DEPTH) throw new DerError(`${what} nested deeper than ${MAX_DEPTH} levels`);
  return Buffer.concat(childrenOf(tlv).map((c) => octets(expectUniversal(c, TAG.OCTET_STRING, what), what, depth + 1)));
}

export function octetString(tlv: Tlv | undefined, what: string): Buffer {
  return octets(expectUniversal(tlv, TAG.OCTET_STRING, what), what);
}

/** A non-negative INTEGER that fits a safe JS integer (iteration counts, versions). */
export function smallInteger(tlv: Tlv | undefined, what: string): number {
  const t = expectUniversal(tlv, TAG.INTEGER, what);
  const bytes = t.contents;
  if (bytes.length === 0) throw new DerError(`${what} is an empty INTEGER`);
  if ((bytes[0] as number) & 0x80) throw new DerError(`${what} is negative`);
  let value = 0;
  for (const b of bytes) {
    value = value * 256 + b;
    if (value > Number.MAX_SAFE_INTEGER) return Number.POSITIVE_INFINITY;
  }
  return value;
}

/** Dotted OBJECT IDENTIFIER text. */
export function oid(tlv: Tlv | undefined, what: string): string {
  const bytes = expectUniversal(tlv, TAG.OID, what).contents;
  if (bytes.length === 0 || bytes.length > 64) throw new DerError(`${what} is not a valid object identifier`);
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER) throw new DerError(`${what} has an arc that is too large`);
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    } else if (i === bytes.length - 1) {
      throw new DerError(`${what} is cut short`);
    }
  }
  return arcs.join('.');
}
