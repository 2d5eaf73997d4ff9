/**
 * A tiny deterministic zip writer and reader. The same entries always give the same bytes: entries sorted by
 * path, one fixed timestamp, fixed Unix permissions in the external attributes, no extra fields, deflate at a
 * fixed level (or stored when deflate does not help). No zip64: packages are far below 4 GiB / 65535 entries,
 * and the writer refuses rather than writing a broken archive.
 *
 * Determinism holds for one zlib build (the deflate stream is zlib's); the pinned build runtime makes that so.
 */
import { crc32, deflateRaw, inflateRawSync } from 'node:zlib';
import { promisify } from 'node:util';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const deflateRawAsync = promisify(deflateRaw);

export interface ZipEntryInput {
  /** Forward slashes, relative, no leading slash. */
  path: string;
  data: Buffer;
  /** Unix permission bits; 0o755 for anything executed, else 0o644. */
  mode: number;
}

export interface ZipEntry {
  path: string;
  data: Buffer;
  mode: number;
  method: number;
}

/** 1980-01-01 00:00:00, the first instant a DOS date can hold. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const VERSION_MADE_BY = (3 << 8) | 20; // Unix, spec 2.0: unzip and the agents honour the mode bits
const VERSION_NEEDED = 20;
const FLAG_UTF8 = 0x0800;
const LIMIT = 0xffffffff;

export async function writeZip(inputs: readonly ZipEntryInput[], level = 9): Promise<Buffer> {
  const entries = [...inputs].sort((a, b) => compareBytes(a.path, b.path));
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.path === entries[i - 1]!.path) throw new Error(`zip: duplicate entry ${entries[i]!.path}`);
  }
  if (entries.length >= 0xffff) throw new Error(`zip: ${entries.length} entries need zip64, which this writer does not do`);
  const compressed = await Promise.all(
    entries.map(async (e) => {
      validatePath(e.path);
      const deflated = await deflateRawAsync(e.data, { level });
      return deflated.length < e.data.length ? { method: 8, body: deflated } : { method: 0, body: e.data };
    }),
  );

  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  entries.forEach((entry, i) => {
    const { method, body } = compressed[i]!;
    const name = Buffer.from(entry.path, 'utf8');
    const crc = crc32(entry.data) >>> 0;
    const flags = /[^\x20-\x7e]/.test(entry.path) ? FLAG_UTF8 : 0;
    if (offset > LIMIT || body.length > LIMIT || entry.data.length > LIMIT) throw new Error('zip: archive too large without zip64');

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(VERSION_NEEDED, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    chunks.push(local, name, body);

    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(VERSION_MADE_BY, 4);
    header.writeUInt16LE(VERSION_NEEDED, 6);
    header.writeUInt16LE(flags, 8);
    header.writeUInt16LE(method, 10);
    header.writeUInt16LE(DOS_TIME, 12);
    header.writeUInt16LE(DOS_DATE, 14);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(body.length, 20);
    header.writeUInt32LE(entry.data.length, 24);
    header.writeUInt16LE(name.length, 28);
    header.writeUInt16LE(0, 30); // extra
    header.writeUInt16LE(0, 32); // comment
    header.writeUInt16LE(0, 34); // disk
    header.writeUInt16LE(0, 36); // internal attributes
    header.writeUInt32LE(((0o100000 | (entry.mode & 0o7777)) << 16) >>> 0, 38); // S_IFREG | mode, MS-DOS bits 0
    header.writeUInt32LE(offset, 42);
    central.push(header, name);
    offset += local.length + name.length + body.length;
  });

  const centralSize = central.reduce((n, b) => n + b.length, 0);
  if (offset > LIMIT) throw new Error('zip: archive too large without zip64');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0, 4);
  end.writeUInt16LE(0, 6);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(0, 20);
  return Buffer.concat([...chunks, ...central, end]);
}

/** Reads what writeZip writes (and ordinary non-zip64 archives): entries in central-directory order. */
export function readZip(zip: Buffer): ZipEntry[] {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('zip: end of central directory not found');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const out: ZipEntry[] = [];
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error(`zip: bad central directory header at ${p}`);
    const method = zip.readUInt16LE(p + 10);
    const crc = zip.readUInt32LE(p + 16);
    const csize = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const external = zip.readUInt32LE(p + 38);
    const localOffset = zip.readUInt32LE(p + 42);
    const path = zip.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;

    if (zip.readUInt32LE(localOffset) !== 0x04034b50) throw new Error(`zip: bad local header for ${path}`);
    const start = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
    const body = zip.subarray(start, start + csize);
    let data: Buffer;
    if (method === 0) data = Buffer.from(body);
    else if (method === 8) data = inflateRawSync(body);
    else throw new Error(`zip: ${path} uses compression method ${method}`);
    if (data.length !== size || crc32(data) >>> 0 !== crc) throw new Error(`zip: ${path} fails its size or CRC check`);
    out.push({ path, data, mode: (external >>> 16) & 0o7777, method });
  }
  return out;
}

function validatePath(path: string): void {
  if (path === '' || path.startsWith('/') || path.includes('\\') || path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`zip: invalid entry path ${JSON.stringify(path)}`);
  }
}

/** Byte-wise (UTF-8) order, independent of locale. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Unpacks a zip into dir. `executeBitOnEveryFile` does what the Linux guest agent does after unzipping
 * (chmod +x on every file), so tests see the package exactly as a VM does.
 */
export async function unpackZip(zip: Buffer, dir: string, options: { executeBitOnEveryFile?: boolean } = {}): Promise<string[]> {
  const written: string[] = [];
  for (const entry of readZip(zip)) {
    validatePath(entry.path);
    const target = join(dir, ...entry.path.split('/'));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, entry.data);
    await chmod(target, options.executeBitOnEveryFile ? entry.mode | 0o111 : entry.mode);
    written.push(entry.path);
  }
  return written;
}
