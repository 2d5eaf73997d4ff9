/**
 * `npm run package`: one extension zip per platform in dist/packages/, plus the extension image definitions in
 * dist/manifest/. Usage: node lib/build/package.js [--out DIR] [--platform linux-x64,win-x64] [--cache DIR] [--version X.Y.Z]
 *
 * Package layout (both OSs run the same code, tsc's lib/ bundled by bundle.ts with esbuild, then Rollup, so the
 * tests that run the package run exactly what ships):
 *   HandlerManifest.json      commands in the platform's syntax (bin/kvvm … | bin\kvvm.exe …)
 *   package.json              name, version, "type": "commonjs" (version.ts reads it; Node loads lib/handler/*.js as CommonJS)
 *   bin/kvvm                  Linux: sh launcher, prefers runtime/node   | bin/kvvm.exe  Windows: SEA launcher
 *   runtime/node              Linux: the pinned Node runtime             | (node.exe is kvvm.exe itself)
 *   lib/handler/*.js          the compiled CLI bundled (bundle.ts): cli.js, parserWorker.js and their chunks
 *   node_modules/**           only what the bundle loads at run time (koffi, node-forge, ajv) and their
 *                             dependencies, pruned; Windows adds koffi's native package
 *   licenses/<package>/**     the licences of the packages bundled in lib/handler/
 *   schemas/**                settings schemas
 *   licenses/node/LICENSE     the runtime's licence
 * The version comes from package.json, or --version X.Y.Z (`npm run package -- --version 3.1.0`), and flows into the
 * zip's package.json, the file names and manifests. It is the handler version: its major picks the behaviour profile
 * when the agent gives none (docs/versions.md), so one build ships both the 3.x and the 4.x line.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderExtensionImage, type PackageJson } from './extensionImage.js';
import { fetchPackage, readTarball, type TarEntry } from './npmCache.js';
import { handlerManifestFor, NODE_VERSION, packageFileName, PLATFORMS, platformById, POSTJECT, PUBLISHER, type Platform } from './platforms.js';
import { bundleHandler, RUNTIME_MODULES } from './bundle.js';
import { collect, modeFor, productionModuleFiles, type SourceFile } from './prodModules.js';
import { buildSeaBlob, injectSea } from './sea.js';
import { writeZip, type ZipEntryInput } from './zip.js';

export interface PackageOptions {
  repoRoot: string;
  /** Receives packages/ and manifest/. */
  outDir: string;
  platforms: readonly Platform[];
  /** Where npm pack puts runtimes, koffi natives and postject. */
  cacheDir: string;
  /** The version to stamp (default: package.json's). */
  version?: string;
  log?: (line: string) => void;
}

export interface BuiltPackage {
  platform: Platform;
  file: string;
  bytes: number;
  entries: number;
  sha256: string;
  manifestXml: string;
  manifestJson: string;
}

export async function buildPackages(options: PackageOptions): Promise<BuiltPackage[]> {
  const { repoRoot, outDir, cacheDir } = options;
  const log = options.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as PackageJson & { dependencies?: Record<string, string> };
  const version = options.version ?? pkg.version;
  if (!version || !/^\d+\.\d+\.\d+$/.test(version))
    throw new Error(`the version to stamp (--version or package.json "version") must be MAJOR.MINOR.PATCH (got ${JSON.stringify(version)})`);
  const koffiVersion = pkg.dependencies?.['koffi'];
  if (!koffiVersion || !/^\d+\.\d+\.\d+$/.test(koffiVersion)) throw new Error(`package.json must pin koffi to an exact version (got ${JSON.stringify(koffiVersion)})`);
  if (!existsSync(join(repoRoot, 'lib', 'handler', 'cli.js'))) throw new Error('lib/handler/cli.js is missing: run tsc -p . first');
  const rootManifest = await readFile(join(repoRoot, 'HandlerManifest.json'), 'utf8');

  const shared = await sharedEntries(repoRoot, pkg, version);
  const packagesDir = join(outDir, 'packages');
  const manifestDir = join(outDir, 'manifest');
  await mkdir(packagesDir, { recursive: true });
  await mkdir(manifestDir, { recursive: true });

  const runtimes = new Map<string, TarEntry[]>();
  const runtimeOf = async (platform: Platform): Promise<TarEntry[]> => {
    let entries = runtimes.get(platform.nodePackage);
    if (!entries) {
      const tgz = await fetchPackage(cacheDir, platform.nodePackage, NODE_VERSION);
      entries = await readTarball(tgz, (p) => p === platform.nodeBinaryInTarball || p === 'LICENSE');
      runtimes.set(platform.nodePackage, entries);
    }
    return entries;
  };
  let seaBlob: Buffer | undefined;

  const built: BuiltPackage[] = [];
  for (const platform of options.platforms) {
    const started = Date.now();
    const runtime = await runtimeOf(platform);
    const nodeBinary = pick(runtime, platform.nodeBinaryInTarball, platform.nodePackage);
    const entries: ZipEntryInput[] = [...shared];
    entries.push({ path: 'HandlerManifest.json', data: Buffer.from(handlerManifestFor(platform, rootManifest)), mode: 0o644 });
    // node-win-* packages carry no LICENSE; Node's licence is one text per version, so take the Linux package's.
    const licenseSource = platformById('linux-x64');
    entries.push({ path: 'licenses/node/LICENSE', data: pick(await runtimeOf(licenseSource), 'LICENSE', licenseSource.nodePackage), mode: 0o644 });
    if (platform.os === 'linux') {
      entries.push({ path: 'bin/kvvm', data: await readFile(join(repoRoot, 'bin', 'kvvm')), mode: 0o755 });
      entries.push({ path: 'runtime/node', data: nodeBinary, mode: 0o755 });
    } else {
      seaBlob ??= await buildSeaBlob(await hostRuntime(cacheDir, runtimeOf));
      entries.push({ path: 'bin/kvvm.exe', data: await injectSea(nodeBinary, seaBlob, await postjectApi(repoRoot, cacheDir)), mode: 0o755 });
    }
    if (platform.koffiPackage) {
      const tgz = await fetchPackage(cacheDir, platform.koffiPackage, koffiVersion);
      for (const e of await readTarball(tgz)) {
        const path = `node_modules/${platform.koffiPackage}/${e.path}`;
        entries.push({ path, data: e.data, mode: modeFor(path) });
      }
    }

    const zip = await writeZip(entries);
    const file = join(packagesDir, packageFileName(platform, version));
    await writeFile(file, zip);
    const image = await renderExtensionImage(repoRoot, platform, pkg, version);
    const base = `${PUBLISHER}.${platform.type}-${version}-${platform.id}`;
    const manifestXml = join(manifestDir, `${base}.xml`);
    const manifestJson = join(manifestDir, `${base}.json`);
    await writeFile(manifestXml, image.xml);
    await writeFile(manifestJson, image.json);
    const sha256 = createHash('sha256').update(zip).digest('hex');
    built.push({ platform, file, bytes: zip.length, entries: entries.length, sha256, manifestXml, manifestJson });
    log(`${platform.id.padEnd(11)} ${file}  ${formatSize(zip.length)}  (${entries.length} files, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
  const sums = built.map((b) => `${b.sha256}  ${packageFileName(b.platform, version)}\n`).join('');
  await writeFile(join(packagesDir, `SHA256SUMS-${version}`), sums);
  return built;
}

/** Files every package holds: the bundled CLI, schemas, the node_modules it loads at run time and a minimal package.json. */
async function sharedEntries(repoRoot: string, pkg: PackageJson, version: string): Promise<ZipEntryInput[]> {
  const files: SourceFile[] = [];
  await collect(repoRoot, join(repoRoot, 'schemas'), files);
  files.push(...(await productionModuleFiles(repoRoot, RUNTIME_MODULES)));
  const entries: ZipEntryInput[] = await Promise.all(files.map(async (f) => ({ path: f.path, data: await readFile(f.source), mode: f.mode })));
  for (const f of await bundleHandler(repoRoot)) entries.push({ path: f.path, data: f.data, mode: modeFor(f.path) });
  const runtimePkg = {
    name: pkg.name ?? 'kvvm',
    version,
    description: pkg.description ?? '',
    license: pkg.license ?? 'UNLICENSED',
    private: true,
    type: 'commonjs',
  };
  entries.push({ path: 'package.json', data: Buffer.from(`${JSON.stringify(runtimePkg, null, 2)}\n`), mode: 0o644 });
  return entries;
}

function pick(entries: TarEntry[], path: string, from: string): Buffer {
  const e = entries.find((x) => x.path === path);
  if (!e) throw new Error(`${from}@${NODE_VERSION} has no ${path}`);
  return e.data;
}

/**
 * A node binary of the pinned version that runs on this build machine: it makes the SEA blob (the blob format
 * belongs to the Node version, so it is made by the same version the Windows packages ship), and the benchmark
 * measures with it (the runtime the Linux package ships).
 */
export async function hostRuntime(
  cacheDir: string,
  runtimeOf: (p: Platform) => Promise<TarEntry[]> = async (p) => readTarball(await fetchPackage(cacheDir, p.nodePackage, NODE_VERSION), (path) => path === p.nodeBinaryInTarball),
): Promise<string> {
  if (process.version === `v${NODE_VERSION}`) return process.execPath;
  const id = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64') ? `linux-${process.arch}` : undefined;
  if (!id) throw new Error(`building Windows packages needs Node ${NODE_VERSION} to make the SEA blob: run the build with it, or on Linux x64/arm64`);
  const platform = platformById(id);
  const exe = join(cacheDir, `node-${NODE_VERSION}-${id}`);
  if (!existsSync(exe)) {
    const tmp = `${exe}.${process.pid}.tmp`;
    await writeFile(tmp, pick(await runtimeOf(platform), platform.nodeBinaryInTarball, platform.nodePackage), { mode: 0o755 });
    await chmod(tmp, 0o755);
    await rename(tmp, exe);
  }
  return exe;
}

/** postject's API file: from node_modules when the devDependency is installed, else fetched into the cache. */
async function postjectApi(repoRoot: string, cacheDir: string): Promise<string> {
  try {
    return createRequire(join(repoRoot, 'package.json')).resolve('postject');
  } catch {
    // .cjs: the cache sits inside this "type": "module" package, and postject's API file is CommonJS.
    const api = join(cacheDir, `postject-${POSTJECT.version}`, 'api.cjs');
    if (!existsSync(api)) {
      const tgz = await fetchPackage(cacheDir, POSTJECT.name, POSTJECT.version);
      const staging = await mkdtemp(join(tmpdir(), 'kvvm-postject-'));
      try {
        for (const e of await readTarball(tgz, (p) => p === 'dist/api.js')) {
          await mkdir(join(staging, 'dist'), { recursive: true });
          await writeFile(join(staging, e.path), e.data);
        }
        await mkdir(dirname(api), { recursive: true });
        await writeFile(api, await readFile(join(staging, 'dist', 'api.js')));
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    }
    return api;
  }
}

export function formatSize(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB (${bytes} bytes)`;
}

interface CliArgs {
  outDir: string;
  platforms: Platform[];
  cacheDir: string;
  version?: string;
}

export function parseArgs(argv: readonly string[], repoRoot: string): CliArgs {
  const args: CliArgs = { outDir: join(repoRoot, 'dist'), platforms: [...PLATFORMS], cacheDir: join(repoRoot, '.cache', 'npm') };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--out' && value) args.outDir = resolve(value);
    else if (flag === '--cache' && value) args.cacheDir = resolve(value);
    else if (flag === '--platform' && value) args.platforms = value.split(',').map((id) => platformById(id.trim()));
    else if (flag === '--version' && value) args.version = value;
    else throw new Error(`usage: node lib/build/package.js [--out DIR] [--platform ${PLATFORMS.map((p) => p.id).join(',')}] [--cache DIR] [--version X.Y.Z]`);
    i++;
  }
  return args;
}

/** The repository root: lib/build/package.js → two levels up. */
export function repoRootFromHere(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const repoRoot = repoRootFromHere();
  const started = Date.now();
  try {
    const args = parseArgs(process.argv.slice(2), repoRoot);
    await buildPackages({ repoRoot, ...args });
    process.stdout.write(`packaged in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } catch (err) {
    process.stderr.write(`package: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
