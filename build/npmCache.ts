/**
 * Per-platform artefacts (Node runtimes, koffi's native binaries, postject) come from npm packages fetched with
 * `npm pack <name>@<exact version>` into a cache folder, never installed as dependencies: they are per-OS
 * packages that `npm install` on one OS would skip or refuse. A tarball is fetched once and read in memory.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';

const run = promisify(execFile);

export interface TarEntry {
  /** Path inside the tarball with the leading "package/" removed. */
  path: string;
  data: Buffer;
  mode: number;
}

/** The tarball file name npm pack gives `name@version` (scope "@a/b" becomes "a-b"). */
function tarballName(name: string, version: string): string {
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
}

/** Fetches `name@version` into cacheDir unless it is there, and returns the tarball's path. */
export async function fetchPackage(cacheDir: string, name: string, version: string): Promise<string> {
  const file = join(cacheDir, tarballName(name, version));
  if (existsSync(file)) return file;
  await mkdir(cacheDir, { recursive: true });
  // Into a private folder first so an interrupted download never leaves a truncated tarball under the final name.
  const staging = join(cacheDir, `.staging-${process.pid}-${Date.now()}`);
  await mkdir(staging);
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    await run(npm, ['pack', `${name}@${version}`, '--pack-destination', staging, '--silent'], {
      maxBuffer: 16 * 1024 * 1024,
      shell: process.platform === 'win32',
    });
    await rename(join(staging, tarballName(name, version)), file);
  } catch (err) {
    throw new Error(`could not fetch ${name}@${version} with npm pack: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return file;
}

/** Reads a .tgz (ustar, with pax path records) into memory; `want` filters by path to keep memory down. */
export async function readTarball(file: string, want: (path: string) => boolean = () => true): Promise<TarEntry[]> {
  const tar = gunzipSync(await readFile(file));
  const out: TarEntry[] = [];
  let p = 0;
  let paxPath: string | undefined;
  while (p + 512 <= tar.length) {
    const header = tar.subarray(p, p + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, len: number): string => header.toString('utf8', start, start + len).replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0x30);
    const body = tar.subarray(p + 512, p + 512 + size);
    p += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      paxPath = m?.[1];
      continue;
    }
    if (type === 'g') continue;
    const prefix = field(345, 155);
    const name = paxPath ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    paxPath = undefined;
    if (type !== '0' && type !== '\0') continue; // regular files only; npm tarballs hold nothing else we need
    const path = name.replace(/^[^/]+\//, ''); // "package/" (or any top folder) stripped
    if (!want(path)) continue;
    out.push({ path, data: Buffer.from(body), mode: parseInt(field(100, 8).trim() || '644', 8) & 0o7777 });
  }
  return out;
}
