/**
 * Shared by the fault-injection suite (test/faults/*): one root folder for everything the run writes, a registry
 * of the secret values and tokens the tests used (so zz-secretScan can look for them in logs/status/events), and
 * the PEM-store invariants every fault test checks.
 *
 * The suite runs its files one after another (`--test-concurrency=1`), each in its own process, so they
 * share state through the file system: `<root>/work-*` folders (agent folders, logs, stores) stay until
 * zz-secretScan has scanned them, `<root>/registry/*.json` (mode 0600, they hold private keys) likewise.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { STORE_MARKER } from '../../handler/stores/storeDirectory.js';

/** KVVM_FAULT_ROOT, or one folder per user under the system temp dir. */
export function faultRoot(): string {
  const root = process.env['KVVM_FAULT_ROOT'] ?? join(tmpdir(), `kvvm-fault-run-${process.getuid?.() ?? 0}`);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  return root;
}

/** A fresh work folder under the fault root (kept for the secret scan, which deletes it). */
export function faultWorkDir(label: string): Promise<string> {
  return mkdtemp(join(faultRoot(), `work-${label}-`));
}

export interface SecretRegistry {
  /** Secret values uploaded to a vault, private key PEMs, PFX base64. Never printed. */
  secrets: string[];
  /** Bearer tokens a dev vault issued. */
  tokens: string[];
}

function registryDir(): string {
  const dir = join(faultRoot(), 'registry');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Adds values to this process's registry file (rewritten whole; mode 0600). */
export function registerSecrets(label: string, add: Partial<SecretRegistry>): void {
  const file = join(registryDir(), `${label}-${process.pid}.json`);
  let current: SecretRegistry = { secrets: [], tokens: [] };
  try {
    current = JSON.parse(readFileSync(file, 'utf8')) as SecretRegistry;
  } catch {
    // first registration from this process
  }
  const merged: SecretRegistry = {
    secrets: [...new Set([...current.secrets, ...(add.secrets ?? [])])],
    tokens: [...new Set([...current.tokens, ...(add.tokens ?? [])])],
  };
  writeFileSync(file, JSON.stringify(merged), { mode: 0o600 });
}

export function loadRegistry(): SecretRegistry {
  const out: SecretRegistry = { secrets: [], tokens: [] };
  for (const f of readdirSync(registryDir())) {
    if (!f.endsWith('.json')) continue;
    const r = JSON.parse(readFileSync(join(registryDir(), f), 'utf8')) as SecretRegistry;
    out.secrets.push(...r.secrets);
    out.tokens.push(...r.tokens);
  }
  return out;
}

/** A seeded PRNG (mulberry32): the fault tests print their seed so a failure can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seedFromEnv(name: string): number {
  const raw = process.env[name];
  const seed = raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : Math.floor(Math.random() * 2 ** 31);
  return seed;
}

const TEMP_RE = /^\.kvvm-tmp\./;
const VERSION_FILE_RE = /^(.+)\.([0-9a-f]{32})\.PEM$/i;

export interface StoreSnapshot {
  /** version files by "<vault>.<secret>" prefix */
  versions: Map<string, string[]>;
  /** link name → target file name */
  links: Map<string, string>;
  /** temp files with their age in ms */
  temps: { name: string; ageMs: number }[];
}

/** Asserts one PEM file is complete: a PKCS#8 key and certificates, the key matching one of them (the leaf). */
export function assertCompletePem(text: string, label: string): void {
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(text)?.[0];
  assert.ok(key, `${label}: no complete private key block`);
  const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  assert.ok(certs.length > 0, `${label}: no certificate`);
  assert.ok(/-----END CERTIFICATE-----\s*$/.test(text), `${label}: does not end with a complete certificate`);
  const spki = createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'der' });
  const leaf = certs.find((c) => new X509Certificate(c).publicKey.export({ type: 'spki', format: 'der' }).equals(spki));
  assert.ok(leaf, `${label}: the private key matches none of its certificates`);
}

/**
 * Checks what must hold at ANY moment, even right after a SIGKILL: every version file is complete, every
 * link points at an existing complete version file. Returns what is there for further checks.
 */
export async function checkStoreIntegrity(dir: string): Promise<StoreSnapshot> {
  const snap: StoreSnapshot = { versions: new Map(), links: new Map(), temps: [] };
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return snap; // nothing installed yet
  }
  const now = Date.now();
  for (const name of names) {
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue; // removed between readdir and lstat (a live writer)
    if (TEMP_RE.test(name)) {
      snap.temps.push({ name, ageMs: now - st.mtimeMs });
      continue;
    }
    if (name === STORE_MARKER) {
      assert.ok(st.isFile(), `${name}: the marker of a kvvm-managed store is a regular file`);
      continue;
    }
    if (st.isSymbolicLink()) {
      const target = await readlink(path);
      assert.ok(!target.includes('/'), `${name} -> ${target}: link target is not a file in the store`);
      assert.ok(VERSION_FILE_RE.test(target), `${name} -> ${target}: link target is not a version file`);
      const tst = await stat(path).catch(() => undefined);
      assert.ok(tst?.isFile(), `${name} -> ${target}: dangling link`);
      assertCompletePem(await readFile(path, 'utf8'), `${name} -> ${target}`);
      snap.links.set(name, target);
      continue;
    }
    const m = VERSION_FILE_RE.exec(name);
    assert.ok(m && st.isFile(), `unexpected entry in the store: ${name}`);
    assert.equal(st.mode & 0o777, 0o600, `${name}: mode ${(st.mode & 0o777).toString(8)}`);
    assertCompletePem(await readFile(path, 'utf8'), name);
    const list = snap.versions.get(m[1]!) ?? [];
    list.push(m[2]!.toLowerCase());
    snap.versions.set(m[1]!, list);
  }
  return snap;
}

export function versionOfLink(target: string): string | undefined {
  return VERSION_FILE_RE.exec(basename(target))?.[2]?.toLowerCase();
}
