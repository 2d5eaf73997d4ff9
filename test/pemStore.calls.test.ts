/**
 * What a rotation costs the PEM store, counted in file-system calls rather than timed (issue 12's rotation CPU
 * figure): a call through libuv's thread pool costs a round trip of two thread wake-ups, far more CPU than the call
 * itself, so only fsync, which waits for the disk, may go there; and a directory fsync covers every rename made
 * before it starts, so writing several files of one version, or several certificates at once, shares them. Every
 * file written is still fsynced before its rename, and the directory after it, before the store call returns.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CertificateVersionId } from '../handler/certs/material.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { fsyncDir } from '../handler/stores/safeWrite.js';
import { countFsCalls, total } from './helpers/fsCalls.js';
import { linuxObserved } from './helpers/observed.js';
import { loadSecretVectors } from './helpers/vectors.js';

const VAULT = 'kvvmcalls';
const vectors = loadSecretVectors().map((v) => parseCertificateSecret(v.value, v.contentType));
const idOf = (secretName: string, n: number): CertificateVersionId => ({ vaultName: VAULT, secretName, version: `${n}`.repeat(32) });

/**
 * File-system calls of one rotation as the engine makes it (list, install, list, activate, list: certificateSync.ts),
 * measured 2026-12-02 on Node 20.20: 37 (21 stat/lstat of the directory and the version files, open, write,
 * futimes, fstat, rename and close of the new file, readlink, symlink and rename of the link, and the 3 fsyncs with
 * the directory's open and close); main before this test made 43, every one through the thread pool. A regression
 * shows as a larger count.
 */
const ROTATION_CALLS_MAX = 40;

describe('PEM store file-system calls per rotated certificate', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kvvm-pem-calls-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('a rotation goes through the thread pool only to fsync: the PEM file, and the directory once for install and once for activate', async (t) => {
    const dir = join(root, 'rotation');
    const store = createPemStore();
    const cert = linuxObserved(VAULT, 'web', dir);
    // Other certificates in the same directory, as in the shared default store.
    for (const name of ['api', 'mail']) {
      const other = linuxObserved(VAULT, name, dir);
      await store.install(other, idOf(name, 1), vectors[0]!);
      await store.activate(other, idOf(name, 1), undefined);
    }
    await store.install(cert, idOf('web', 1), vectors[0]!);
    await store.activate(cert, idOf('web', 1), undefined);

    const calls = await countFsCalls(async () => {
      const before = await store.list(cert);
      await store.install(cert, idOf('web', 2), vectors[1]!);
      await store.list(cert);
      await store.activate(
        cert,
        idOf('web', 2),
        before.find((e) => e.active),
      );
      const after = await store.list(cert);
      assert.deepEqual(
        after.map((e) => [e.version, e.active]),
        [
          [idOf('web', 2).version, true],
          [idOf('web', 1).version, false],
        ],
      );
    });
    t.diagnostic(JSON.stringify(calls));
    assert.equal(calls.fileSyncs, 1, 'the new PEM file is fsynced before its rename');
    assert.equal(calls.dirSyncs, 2, 'the directory is fsynced after the install and after the activation');
    assert.equal(calls.pooled, calls.fileSyncs + calls.dirSyncs, `nothing but fsync goes through the thread pool: ${JSON.stringify(calls.byName)}`);
    assert.equal(calls.readdirs, 0, 'the directory index answers; the directory is not read');
    assert.ok(total(calls) <= ROTATION_CALLS_MAX, `${total(calls)} file-system calls for one rotation (at most ${ROTATION_CALLS_MAX}): ${JSON.stringify(calls.byName)}`);
  });

  it('a version written in four formats fsyncs each file and the directory once', async () => {
    const dir = join(root, 'formats');
    const store = createPemStore();
    const passwordFile = join(root, 'pfx.pass');
    await writeFile(passwordFile, 'secret\n', { mode: 0o600 });
    const cert = linuxObserved(VAULT, 'java', dir, { formats: ['pem', 'key', 'crt', 'pfx'], pfxPasswordFile: passwordFile });
    await store.install(cert, idOf('java', 1), vectors[0]!); // creates the directory
    const calls = await countFsCalls(async () => {
      await store.install(cert, idOf('java', 2), vectors[1]!);
    });
    assert.equal(calls.fileSyncs, 4, 'every file (PEM, key, crt, pfx) is fsynced before its rename');
    assert.equal(calls.dirSyncs, 1, 'one directory fsync after the last rename covers all four');
    const names = (await readdir(dir)).filter((n) => n.includes(idOf('java', 2).version)).sort();
    assert.deepEqual(names, ['crt', 'key', 'PEM', 'pfx'].map((f) => `${VAULT}.java.${idOf('java', 2).version}.${f}`).sort());
  });

  it('callers at the same moment share directory fsyncs, each resolved by one that started after it asked', async () => {
    const dir = await mkdtemp(join(root, 'fsyncdir-'));
    const events: string[] = [];
    let started = 0;
    const calls = await countFsCalls(async () => {
      const waits = Array.from({ length: 5 }, (_, i) => {
        events.push(`ask ${i}`);
        return fsyncDir(dir).then(() => events.push(`done ${i}`));
      });
      // While the first fsync runs, a sixth caller: it must not be answered by the fsync already running.
      events.push('ask 5');
      waits.push(fsyncDir(dir).then(() => events.push('done 5')));
      await Promise.all(waits);
      started = events.length;
    });
    assert.equal(started, 12);
    assert.equal(calls.dirSyncs, 2, `six callers, two directory fsyncs: ${JSON.stringify(calls.byName)}`);
    // The first caller started the first fsync; every later one (all asked before it ended) waits for the second.
    assert.equal(events.indexOf('done 0'), 6, events.join(', '));
    assert.ok(events.slice(7).every((e) => e.startsWith('done')));
  });

  it('a directory fsync that fails fails every caller waiting for it', async () => {
    const dir = await mkdtemp(join(root, 'gone-'));
    await rm(dir, { recursive: true });
    const results = await Promise.allSettled([fsyncDir(dir), fsyncDir(dir)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
  });
});
