import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, lchown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KvvmError } from '../handler/errors.js';
import type { CertificateMaterial, CertificateVersionId } from '../handler/certs/material.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import type { LinuxCertificateTarget } from '../handler/settings/config.js';
import { linuxObserved, type LinuxObserved } from './helpers/observed.js';
import { SHARED_DIRECTORIES } from '../handler/settings/sharedDirectories.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { loadSecretVectors } from './helpers/vectors.js';

/**
 * The attacks of issue 13 (High 2 and 3) reproduced against the real store on the real file system. The
 * "other user" is a uid no account uses, given ownership with chown (tests run as root, here and in CI).
 */

const VAULT = 'kvvmtest';
const [vector] = loadSecretVectors();
const material: CertificateMaterial = parseCertificateSecret(vector!.value, vector!.contentType);
const versionId = (n: number): CertificateVersionId => ({ vaultName: VAULT, secretName: 'alpha', version: n.toString(16).padStart(32, '0') });

function observed(dir: string, target: Partial<LinuxCertificateTarget> = {}): LinuxObserved {
  return linuxObserved(VAULT, 'alpha', dir, target);
}

/** A uid (and gid) with no account: "another local user". */
function unusedId(): number {
  for (let id = 47_110; id < 48_000; id++) {
    if (spawnSync('getent', ['passwd', String(id)]).status !== 0 && spawnSync('getent', ['group', String(id)]).status !== 0) return id;
  }
  throw new Error('no unused uid found');
}

const isReason =
  (reason: string) =>
  (e: unknown): boolean =>
    e instanceof KvvmError && e.reason === reason;

/** What the attacker's target looks like: must be identical before and after every attack. */
async function fingerprint(path: string): Promise<string> {
  const info = await lstat(path);
  const acl = spawnSync('getfacl', ['-c', '-n', '-p', path], { encoding: 'utf8' }).stdout;
  const content = info.isDirectory() ? (await readdir(path)).sort().join(',') : await readFile(path, 'utf8');
  return JSON.stringify({ mode: info.mode, uid: info.uid, gid: info.gid, acl, content });
}

describe('PEM store under attack by another local user', () => {
  let root: string;
  let attacker: number;
  let victimDir: string;
  let victimFile: string;
  before(async () => {
    assert.equal(process.geteuid?.(), 0, 'these tests create files owned by another uid: they run as root');
    attacker = unusedId();
    root = await mkdtemp(join(tmpdir(), 'kvvm-attack-'));
    await chmod(root, 0o755);
    victimDir = join(root, 'victim-dir');
    await mkdir(victimDir, { mode: 0o755 });
    await chmod(victimDir, 0o755);
    victimFile = join(root, 'victim.txt');
    await writeFile(victimFile, 'the attacker owns this file and wants the key written into it\n', { mode: 0o644 });
    await chown(victimFile, attacker, attacker);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('a store under a directory owned by another user is refused, and the symlink that user planted is not followed', async () => {
    const home = join(root, 'attacker-home');
    await mkdir(home, { mode: 0o755 });
    await chown(home, attacker, attacker);
    await symlink(victimDir, join(home, 'store'));
    await lchown(join(home, 'store'), attacker, attacker);
    const before = await fingerprint(victimDir);
    await assert.rejects(
      createPemStore().install(observed(join(home, 'store')), versionId(1), material),
      (e: unknown) => isReason('store-dir-unsafe')(e) && (e as KvvmError).message.includes(`${home} is owned by uid ${attacker}`) && /chown root/.test((e as KvvmError).fix ?? ''),
    );
    await assert.rejects(createPemStore().list(observed(join(home, 'store'))), isReason('store-dir-unsafe'), 'listing it is refused too');
    assert.equal(await fingerprint(victimDir), before, 'mode, owner, ACL and entries of the link target are unchanged');
  });

  it('a store under a directory every user (or a group) can write to is refused before anything is created in it', async () => {
    for (const mode of [0o777, 0o775]) {
      const open = join(root, `open-${mode.toString(8)}`);
      await mkdir(open);
      await chmod(open, mode);
      await assert.rejects(
        createPemStore().install(observed(join(open, 'store')), versionId(1), material),
        (e: unknown) => isReason('store-dir-unsafe')(e) && (e as KvvmError).message.includes(`${open} is writable by`),
      );
      assert.deepEqual(await readdir(open), []);
    }
  });

  it('in a sticky shared directory (like /tmp) a symlink or directory planted by another user is refused', async () => {
    const sticky = join(root, 'sticky');
    await mkdir(sticky);
    await chmod(sticky, 0o1777);
    await symlink(victimDir, join(sticky, 'linked-store'));
    await lchown(join(sticky, 'linked-store'), attacker, attacker);
    await mkdir(join(sticky, 'planted-store'), { mode: 0o700 });
    await chown(join(sticky, 'planted-store'), attacker, attacker);
    const before = await fingerprint(victimDir);
    await assert.rejects(
      createPemStore().install(observed(join(sticky, 'linked-store')), versionId(1), material),
      (e: unknown) => isReason('store-dir-unsafe')(e) && /symbolic link owned by uid/.test((e as KvvmError).message),
    );
    await assert.rejects(createPemStore().install(observed(join(sticky, 'planted-store')), versionId(1), material), isReason('store-dir-unsafe'));
    assert.equal(await fingerprint(victimDir), before);
    // Where the entry is root's own, the sticky bit keeps others from replacing it: that store is fine.
    const entry = await createPemStore().install(observed(join(sticky, 'root-store')), versionId(1), material);
    assert.equal((await stat(entry.location)).mode & 0o777, 0o600);
  });

  it('symlinks planted at the final file name and at the link name are never followed', async () => {
    const dir = join(root, 'planted-names');
    const store = createPemStore();
    const cert = observed(dir);
    await store.install(cert, versionId(1), material);
    await store.activate(cert, versionId(1), undefined);
    const next = versionId(2);
    // As if a writer had got into the directory: the next version's file name points at the victim.
    await symlink(victimFile, join(dir, `${VAULT}.alpha.${next.version}.PEM`));
    const before = await fingerprint(victimFile);
    const entry = await store.install(cert, next, material);
    assert.ok((await lstat(entry.location)).isFile(), 'the symlink was replaced by the key file, not written through');
    assert.equal(await fingerprint(victimFile), before);
    // A link at the link name that kvvm did not make is left alone, with the fix.
    const other = observed(dir, { linkName: 'app.pem' });
    await symlink(victimFile, join(dir, 'app.pem'));
    await assert.rejects(store.activate(other, next, undefined), (e: unknown) => isReason('store-link-foreign')(e) && /rm /.test((e as KvvmError).fix ?? ''));
    assert.equal((await lstat(join(dir, 'app.pem'))).isSymbolicLink(), true);
    assert.equal(await fingerprint(victimFile), before);
  });

  it('a child process swapping .kvvm-tmp.* files for symlinks during many installs never redirects a write, a mode or an ACL', async () => {
    // The racer runs as root: it stands for a writer the directory checks did not keep out, so what is tested
    // here is the second line, every step acting on the open file.
    const dir = join(root, 'raced');
    const store = createPemStore({ aclStrategy: 'setfacl' });
    const cert = observed(dir, { acls: [{ group: 'daemon' }] });
    await store.install(cert, versionId(1), material);
    const before = await fingerprint(victimFile);
    const stop = join(root, 'stop-racer');
    const pause = join(root, 'pause-racer');
    const racer = spawn(process.execPath, ['-e', RACER, dir, victimFile, stop, pause], { stdio: ['ignore', 'pipe', 'inherit'] });
    // The racer prints "s" per swap and "p" once it has seen the pause file (and swaps nothing until it is gone).
    let swaps = 0;
    let paused: () => void = () => undefined;
    const pausedNow = new Promise<void>((resolve) => (paused = resolve));
    racer.stdout.setEncoding('utf8').on('data', (d: string) => {
      swaps += d.split('s').length - 1;
      if (d.includes('p')) paused();
    });
    const exited = new Promise((resolve) => racer.on('exit', resolve));
    const failures: string[] = [];
    try {
      // Raced installs: at least 40, and on until the racer has won at least once (how often it wins depends on
      // the machine's load, so the count is not fixed; 400 installs bound it).
      for (let n = 2; n < 402 && (n < 42 || swaps === 0); n++) {
        try {
          await store.install(cert, versionId(n), material);
        } catch (err) {
          failures.push(err instanceof KvvmError ? err.reason : String(err));
        }
      }
      // With the racer paused (it has said so), installs into the same directory succeed (they throw otherwise,
      // and they are listed below).
      await writeFile(pause, '');
      await pausedNow;
      for (let n = 402; n < 405; n++) {
        await store.install(cert, versionId(n), material);
      }
    } finally {
      await writeFile(stop, '');
      await exited;
    }
    assert.ok(swaps > 0, `the racer must have swapped temp files for symlinks (swapped ${swaps})`);
    assert.ok(failures.length > 0, 'a swapped install is detected, not reported as success');
    assert.deepEqual(
      [...new Set(failures)].filter((r) => r !== 'store-tampered' && r !== 'store-io'),
      [],
    );
    assert.equal(await fingerprint(victimFile), before, 'the symlink target kept its content, mode, owner and ACL');
    const listed = await store.list(cert);
    for (const name of await readdir(dir)) {
      const info = await lstat(join(dir, name));
      if (/^kvvmtest\.alpha\.[0-9a-f]{32}\.PEM$/.test(name)) {
        assert.ok(info.isFile(), `${name} is a regular file`);
        assert.equal(info.mode & 0o007, 0, `${name} is not readable by others`);
        assert.equal(
          listed.some((e) => e.location === join(dir, name) && e.thumbprint === material.thumbprint),
          true,
          `${name} is ours`,
        );
      }
      assert.notEqual(info.uid, attacker);
    }
    assert.doesNotMatch(spawnSync('getfacl', ['-R', '-n', '-p', dir], { encoding: 'utf8' }).stdout, new RegExp(`:${attacker}:`));
    const unraced = [402, 403, 404].map((n) => versionId(n).version);
    assert.deepEqual(
      unraced.filter((v) => !listed.some((e) => e.version === v)),
      [],
      'installs that were not raced are installed',
    );
  });
});

/** Keeps replacing every kvvm temp file with a symlink to the victim, printing "s" per swap, until told to stop; pauses (printing "p") while the pause file exists. */
const RACER = `
const fs = require('node:fs');
const path = require('node:path');
const [dir, victim, stop, pause] = process.argv.slice(1);
let saidPaused = false;
while (!fs.existsSync(stop)) {
  if (fs.existsSync(pause)) {
    if (!saidPaused) { fs.writeSync(1, 'p'); saidPaused = true; }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    continue;
  }
  let names = [];
  try { names = fs.readdirSync(dir); } catch { continue; }
  for (const name of names) {
    if (!name.startsWith('.kvvm-tmp.') || name.endsWith('.moved')) continue;
    const p = path.join(dir, name);
    try { fs.renameSync(p, p + '.moved'); } catch { continue; }
    try { fs.symlinkSync(victim, p); fs.writeSync(1, 's'); } catch {}
  }
}
`;

describe('PEM store refuses the directories the whole system shares', () => {
  it('every catalogued location is refused with the fix, and none of them is changed', async () => {
    const store = createPemStore();
    for (const dir of SHARED_DIRECTORIES) {
      const before = existsSync(dir) ? await stat(dir) : undefined;
      await assert.rejects(
        store.install(observed(dir), versionId(1), material),
        (e: unknown) => e instanceof KvvmError && (e.reason === 'store-dir-shared' || e.reason === 'store-dir-unsafe') && (e.fix ?? '') !== '',
        dir,
      );
      const now = existsSync(dir) ? await stat(dir) : undefined;
      assert.deepEqual([now?.mode, now?.uid, now?.gid, now?.ctimeMs], [before?.mode, before?.uid, before?.gid, before?.ctimeMs], `${dir} is untouched`);
    }
  });
});
