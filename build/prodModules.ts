/**
 * The node_modules a package ships: the packages its bundle loads at run time (bundle.ts RUNTIME_MODULES) and
 * everything they depend on, as package-lock.json resolves them, copied from the installed node_modules (so
 * exactly the versions the tests ran against), minus files Node never loads at runtime. Everything else is in the
 * bundle. koffi's per-platform native packages are left out here and added per target platform.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { KOFFI_NATIVE_PREFIX } from './platforms.js';

export interface SourceFile {
  /** Path inside the package, forward slashes. */
  path: string;
  /** Absolute path on disk. */
  source: string;
  mode: number;
}

interface LockPackage {
  dev?: boolean;
  dependencies?: Record<string, string>;
  version?: string;
}

/**
 * Types, source maps, TypeScript sources, C/C++ sources and prose; licence and notice files are always kept.
 * Everything else stays: pruning by folder name ("browser", "test") is how bundles break in obscure ways.
 */
function isPrunable(fileName: string): boolean {
  if (/licen[cs]e|notice|copying|authors/i.test(fileName)) return false;
  if (fileName === 'CMakeLists.txt') return true;
  // koffi ships its C++ sources and Node-API headers next to the JS; only the prebuilt .node is loaded.
  return /\.(d\.[cm]?ts|[cm]?ts|map|md|markdown|cc|cpp|hh|h|S|asm|inc|def|lib)$/.test(fileName) || /\.(md|markdown)$/i.test(fileName);
}

export async function productionModuleFiles(repoRoot: string, roots: readonly string[]): Promise<SourceFile[]> {
  const lock = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages?: Record<string, LockPackage> };
  const packages = lock.packages;
  if (!packages) throw new Error('package-lock.json has no "packages" map (lockfileVersion ≥ 2 needed)');
  // Node's resolution, as the lock records it: `name` required from the package at `from` is the nearest
  // <ancestor>/node_modules/<name> going up from `from`.
  const resolveIn = (from: string, name: string): string | undefined => {
    for (let base = from; ;) {
      const key = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
      if (packages[key]) return key;
      if (base === '') return undefined;
      const cut = base.lastIndexOf('/node_modules/');
      base = cut < 0 ? '' : base.slice(0, cut);
    }
  };
  const keys = new Set<string>();
  const pending = roots.map((name) => {
    const key = resolveIn('', name);
    if (!key) throw new Error(`${name} is not in package-lock.json`);
    return key;
  });
  while (pending.length > 0) {
    const key = pending.pop() as string;
    if (keys.has(key)) continue;
    const entry = packages[key] as LockPackage;
    if (entry.dev === true) throw new Error(`${key} is a devDependency in package-lock.json, but the package loads it at run time`);
    keys.add(key);
    for (const dep of Object.keys(entry.dependencies ?? {})) {
      const found = resolveIn(key, dep);
      if (!found) throw new Error(`${key} depends on ${dep}, which package-lock.json does not hold`);
      pending.push(found);
    }
  }
  const files: SourceFile[] = [];
  for (const key of [...keys].sort()) {
    if (key.includes(`node_modules/${KOFFI_NATIVE_PREFIX}`)) continue;
    const dir = join(repoRoot, ...key.split('/'));
    if (!existsSync(dir)) throw new Error(`${key} is a production dependency in package-lock.json but is not installed; run npm ci`);
    await collect(repoRoot, dir, files, isPrunable);
  }
  return files;
}

/** Every regular file under dir except nested node_modules (those are packages of their own in the lock). */
export async function collect(repoRoot: string, dir: string, out: SourceFile[], prune: (name: string) => boolean = () => false): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const full = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === 'node_modules') continue;
      await collect(repoRoot, full, out, prune);
    } else if (e.isFile()) {
      if (prune(e.name)) continue;
      const path = relative(repoRoot, full).split(sep).join('/');
      out.push({ path, source: full, mode: modeFor(path) });
    }
    // Symlinks (npm's .bin) are skipped: nothing at runtime goes through them and zips should not carry links.
  }
}

/**
 * Permissions are a function of the path, never of the disk (umask, git's core.fileMode), so two checkouts give
 * the same zip: launchers, runtimes and native modules 0755, everything else 0644. (The Linux agent sets the
 * execute bit on every file anyway; the modes matter for anyone unpacking by hand.)
 */
export function modeFor(path: string): number {
  if (/^(bin|runtime)\//.test(path) || /\.node$/.test(path)) return 0o755;
  return 0o644;
}
