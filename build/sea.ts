/**
 * Windows launcher: bin\kvvm.exe is the pinned node.exe with a tiny script injected as a Node single executable
 * application (SEA). The script only finds ..\lib\handler\cli.js and runs it, so Windows and Linux run the very
 * same compiled code from the same lib/ + node_modules/ layout; the executable exists because the agent runs
 * `bin\kvvm.exe install` and Windows has no `#!`.
 *
 * Blob: made with `--experimental-sea-config` by the pinned Linux runtime (same Node version as the target, so
 * the blob format matches), without snapshot or code cache (both machine-dependent), hence byte-stable.
 * Injection: postject (nodejs/postject, the tool Node's documentation uses), resource NODE_SEA_BLOB.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * The injected script (CommonJS: a SEA main script is). In a SEA, process.argv is [exe, argv0, ...args]. The
 * service is started as `<execPath> <cli.js> service` (what works for plain node), so a leading cli.js argument
 * is dropped. The package's cli.js is CommonJS (bundle.ts), so a plain require() runs it.
 */
const LAUNCHER_SOURCE = `'use strict';
const path = require('node:path');
const { createRequire } = require('node:module');
const root = path.resolve(path.dirname(process.execPath), '..');
const cli = path.join(root, 'lib', 'handler', 'cli.js');
let args = process.argv.slice(2);
if (args.length > 0 && path.resolve(args[0]).toLowerCase() === cli.toLowerCase()) args = args.slice(1);
process.argv = [process.execPath, cli, ...args];
createRequire(cli)(cli);
`;

/** Builds the SEA preparation blob with `runtime` (a node binary of the target's Node version that runs here). */
export async function buildSeaBlob(runtime: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-sea-'));
  try {
    await writeFile(join(dir, 'launcher.cjs'), LAUNCHER_SOURCE);
    const config = { main: 'launcher.cjs', output: 'sea.blob', disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false };
    await writeFile(join(dir, 'sea-config.json'), JSON.stringify(config));
    await run(runtime, ['--experimental-sea-config', 'sea-config.json'], { cwd: dir, env: { PATH: process.env['PATH'] ?? '' } });
    return await readFile(join(dir, 'sea.blob'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type PostjectInject = (file: string, name: string, data: Buffer, options: { sentinelFuse: string; overwrite?: boolean }) => Promise<void>;

/** Injects the blob into a copy of node.exe and returns the executable's bytes. */
export async function injectSea(nodeExe: Buffer, blob: Buffer, postjectApi: string): Promise<Buffer> {
  const inject = (createRequire(import.meta.url)(postjectApi) as { inject: PostjectInject }).inject;
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-sea-exe-'));
  try {
    const exe = join(dir, 'kvvm.exe');
    await writeFile(exe, nodeExe);
    // postject prints progress, and LIEF warns that node.exe's Authenticode signature no longer matches (it
    // cannot: the file changed; sign kvvm.exe in the release pipeline). Failures still throw.
    const saved = { log: console.log, warn: console.warn, error: console.error };
    console.log = console.warn = console.error = () => undefined;
    try {
      await inject(exe, 'NODE_SEA_BLOB', blob, { sentinelFuse: SEA_FUSE });
    } finally {
      Object.assign(console, saved);
    }
    return await readFile(exe);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
