import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, fstatSync, readFileSync } from 'node:fs';
import { chmod, lstat, lutimes, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KvvmError } from '../handler/errors.js';
import type { CertificateMaterial, CertificateVersionId } from '../handler/certs/material.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import type { FileAcl, LinuxCertificateTarget } from '../handler/settings/config.js';
import { linuxObserved, type LinuxObserved } from './helpers/observed.js';
import type { CommandResult } from '../handler/stores/pemAcl.js';
import { resolveGroupDefault } from '../handler/stores/pemAcl.js';
import { createPemStore, parsedFilesSnapshot, restoreParsedFiles, type PemStoreOptions } from '../handler/stores/pemStore.js';
import { STORE_MARKER } from '../handler/stores/storeDirectory.js';
import { OpensslFactory, opensslRead, pemSecret } from './helpers/openssl.js';
import { loadSecretVectors } from './helpers/vectors.js';
import { runStoreContract } from './store-contract.js';

const VAULT = 'kvvmtest';
/** pemIndex.ts RACY_WINDOW plus a margin. */
const RACY_WAIT_MS = 1_100;

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-pem-'));
  // Traversable by others so the access tests can run a reader as another user; the store dir itself is 0700.
  await chmod(root, 0o711);
  return root;
}

function observed(dir: string, name: string, target: Partial<LinuxCertificateTarget> = {}): LinuxObserved {
  return linuxObserved(VAULT, name, dir, target);
}

runStoreContract('pem', async () => {
  const root = await tempRoot();
  const dir = join(root, 'store');
  return { store: createPemStore(), cert: (name) => observed(dir, name), cleanup: () => rm(root, { recursive: true, force: true }) };
});

const vectors = loadSecretVectors().map((v, i) => ({
  id: { vaultName: VAULT, secretName: 'alpha', version: `${i + 1}`.repeat(32) },
  material: parseCertificateSecret(v.value, v.contentType),
}));
const v1 = vectors[0] as { id: CertificateVersionId; material: CertificateMaterial };
const v2 = vectors[1] as { id: CertificateVersionId; material: CertificateMaterial };

const daemonGid = resolveGroupDefault('daemon');
const nobodyGid = resolveGroupDefault('nogroup') ?? 65534;

describe('PEM store files', () => {
  let root: string;
  let dir: string;
  before(async () => {
    root = await tempRoot();
  });
  after(() => rm(root, { recursive: true, force: true }));
  let n = 0;
  const freshDir = () => {
    dir = join(root, `store-${++n}`);
    return dir;
  };

  it('creates the store directory 0700 and each version file 0600, named <vault>.<secret>.<version>.PEM', async () => {
    const store = createPemStore();
    const cert = observed(freshDir(), 'alpha');
    const entry = await store.install(cert, v1.id, v1.material);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal(entry.location, join(dir, `${VAULT}.alpha.${v1.id.version}.PEM`));
    assert.equal((await stat(entry.location)).mode & 0o777, 0o600);
  });

  it('an existing directory kvvm did not create keeps its mode and owner; the files in it are still 0600', async () => {
    await mkdir(freshDir(), { mode: 0o755 });
    await chmod(dir, 0o755);
    const entry = await createPemStore().install(observed(dir, 'alpha'), v1.id, v1.material);
    assert.equal((await stat(dir)).mode & 0o7777, 0o755);
    assert.equal((await stat(entry.location)).mode & 0o777, 0o600);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith('.')),
      [],
      'not marked as kvvm-managed',
    );
  });

  it('the documented default store is tightened to 0700 even when it existed before kvvm', async () => {
    await mkdir(freshDir(), { mode: 0o755 });
    await chmod(dir, 0o755);
    await createPemStore({ defaultStore: dir }).install(observed(dir, 'alpha'), v1.id, v1.material);
    assert.equal((await stat(dir)).mode & 0o7777, 0o700);
  });

  it('the key file is private and complete when its ACL is set, through its descriptor, before it has its final name', async () => {
    const seen: Array<{ args: readonly string[]; isFile: boolean; ino: number; mode: number; content?: string; finalExists?: boolean }> = [];
    const finalPath = () => join(dir, `${VAULT}.alpha.${v1.id.version}.PEM`);
    const store = createPemStore({
      aclStrategy: 'setfacl',
      resolveUser: () => 1000,
      resolveGroup: () => 1000,
      // Records what setfacl would act on: the descriptor it inherits as fd 3.
      runCommand: async (_file, args, opts): Promise<CommandResult> => {
        const fd = opts?.fds?.[0] as number;
        const info = fstatSync(fd);
        const entry = { args, isFile: info.isFile(), ino: info.ino, mode: info.mode & 0o777 };
        if (!info.isFile()) {
          seen.push(entry);
          return { exitCode: 0, stdout: '', stderr: '' };
        }
        // The descriptor is write-only; /proc/self/fd/N opens the same inode again, for reading.
        seen.push({ ...entry, content: readFileSync(`/proc/self/fd/${fd}`, 'utf8'), finalExists: existsSync(finalPath()) });
        return { exitCode: 0, stdout: '', stderr: '' };
      },
    });
    const cert = observed(freshDir(), 'alpha', { acls: [{ user: 'alice', group: 'web' }] });
    const entry = await store.install(cert, v1.id, v1.material);
    const dirCall = seen.find((s) => !s.isFile);
    const fileCall = seen.find((s) => s.isFile);
    assert.deepEqual(dirCall?.args, ['-m', 'u:alice:x,g:web:x', '/dev/fd/3']);
    assert.equal(dirCall?.ino, (await stat(dir)).ino);
    assert.deepEqual(fileCall?.args, ['-m', 'u:alice:r,g:web:r', '/dev/fd/3']);
    assert.equal(fileCall?.ino, (await stat(entry.location)).ino, 'the very file that got the final name');
    assert.equal(fileCall?.finalExists, false, 'the final name did not exist yet');
    assert.equal(fileCall?.mode, 0o600);
    assert.equal(fileCall?.content, await readFile(entry.location, 'utf8'));
  });

  it('the stable link is a relative symlink switched to the activated version', async () => {
    const store = createPemStore();
    const cert = observed(freshDir(), 'alpha');
    const e1 = await store.install(cert, v1.id, v1.material);
    await store.activate(cert, v1.id, undefined);
    assert.equal(await readlink(join(dir, `${VAULT}.alpha`)), `${VAULT}.alpha.${v1.id.version}.PEM`);
    await store.install(cert, v2.id, v2.material);
    await store.activate(cert, v2.id, e1);
    assert.equal(await readlink(join(dir, `${VAULT}.alpha`)), `${VAULT}.alpha.${v2.id.version}.PEM`);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.startsWith('.') && f !== STORE_MARKER),
      [],
      'no temp link left behind',
    );
  });

  it('a custom link name (customSymbolicLinkName) is used instead of <vault>.<secret>', async () => {
    const store = createPemStore();
    const cert = observed(freshDir(), 'alpha', { linkName: 'nginx.pem' });
    await store.install(cert, v1.id, v1.material);
    await store.activate(cert, v1.id, undefined);
    assert.ok((await lstat(join(dir, 'nginx.pem'))).isSymbolicLink());
    await assert.rejects(lstat(join(dir, `${VAULT}.alpha`)));
    assert.equal((await createPemStore().list(cert))[0]?.active, true);
  });

  it('a regular file where the link belongs is never overwritten', async () => {
    const store = createPemStore();
    const cert = observed(freshDir(), 'alpha');
    await store.install(cert, v1.id, v1.material);
    await writeFile(join(dir, `${VAULT}.alpha`), 'operator file');
    await assert.rejects(store.activate(cert, v1.id, undefined), (e: unknown) => e instanceof KvvmError && e.reason === 'store-link-occupied');
    assert.equal(await readFile(join(dir, `${VAULT}.alpha`), 'utf8'), 'operator file');
  });

  it('a new store instance (service restart) lists the same versions, order and active one', async () => {
    const cert = observed(freshDir(), 'alpha');
    const first = createPemStore();
    await first.install(cert, v1.id, v1.material);
    await first.activate(cert, v1.id, undefined);
    await first.install(cert, v2.id, v2.material);
    assert.deepEqual(await createPemStore().list(cert), await first.list(cert));
    assert.deepEqual(
      (await createPemStore().list(cert)).map((e) => [e.version, e.active]),
      [
        [v2.id.version, false],
        [v1.id.version, true],
      ],
    );
  });

  it('install order stays newest-first when the clock goes backwards', async () => {
    let clock = new Date('2030-01-01T00:00:00Z');
    const store = createPemStore({ now: () => clock });
    const cert = observed(freshDir(), 'alpha');
    await store.install(cert, v1.id, v1.material);
    clock = new Date('2020-01-01T00:00:00Z');
    await store.install(cert, v2.id, v2.material);
    assert.deepEqual(
      (await store.list(cert)).map((e) => e.version),
      [v2.id.version, v1.id.version],
    );
  });

  it('a version file damaged by hand is not listed and installing that version repairs it', async () => {
    const store = createPemStore();
    const cert = observed(freshDir(), 'alpha');
    const entry = await store.install(cert, v1.id, v1.material);
    await writeFile(entry.location, 'garbage');
    assert.deepEqual(await store.list(cert), []);
    await store.install(cert, v1.id, v1.material);
    assert.equal((await store.list(cert))[0]?.thumbprint, v1.material.thumbprint);
  });

  it('a version file changed in place after its install (same size, mtime put back) is read again, not taken for what was written', async () => {
    const store = createPemStore();
    const cert = observed(freshDir(), 'alpha');
    const entry = await store.install(cert, v1.id, v1.material);
    assert.equal((await store.list(cert))[0]?.thumbprint, v1.material.thumbprint);
    const before = await stat(entry.location, { bigint: true });
    // Only the ctime can tell this change apart, and file times move in clock ticks: change it once a tick has passed.
    let after = before;
    while (after.ctimeNs === before.ctimeNs) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await writeFile(entry.location, 'x'.repeat(Number(before.size)));
      // The store set the times from a millisecond Date (utimes converts it to seconds, so the ns part is not exact):
      // the same Date gives the same time again.
      const ms = (ns: bigint): Date => new Date(Number((ns + 500_000n) / 1_000_000n));
      await utimes(entry.location, ms(before.atimeNs), ms(before.mtimeNs));
      after = await stat(entry.location, { bigint: true });
    }
    assert.equal(after.ino, before.ino);
    assert.equal(after.size, before.size);
    assert.equal(after.mtimeNs, before.mtimeNs);
    assert.deepEqual(await store.list(cert), []);
  });

  it('what install returns and lists for a version it wrote is what reading the file gives', async () => {
    const store = createPemStore();
    const cert = observed(freshDir(), 'alpha');
    for (const v of vectors) {
      const entry = await store.install(cert, v.id, v.material);
      const fromFile = parseCertificateSecret(await readFile(entry.location, 'utf8'), 'application/x-pem-file');
      assert.equal(entry.thumbprint, fromFile.thumbprint);
      assert.equal(entry.notAfter.getTime(), new Date(fromFile.leaf.validTo).getTime());
      const listed = (await store.list(cert)).find((e) => e.version === v.id.version);
      assert.equal(listed?.thumbprint, fromFile.thumbprint);
      assert.equal(listed?.notAfter.getTime(), entry.notAfter.getTime());
    }
  });

  it('leftover temp files of this certificate older than a minute are removed by list; young or foreign ones stay', async () => {
    const store = createPemStore();
    const cert = observed(freshDir(), 'alpha');
    await store.install(cert, v1.id, v1.material);
    const old = `.kvvm-tmp.0123456789ab.${VAULT}.alpha.${v2.id.version}.PEM`;
    const oldLink = `.kvvm-tmp.0123456789ac.${VAULT}.alpha`;
    const young = `.kvvm-tmp.0123456789ad.${VAULT}.alpha.${v2.id.version}.PEM`;
    const foreign = `.kvvm-tmp.0123456789ae.${VAULT}.beta.${v2.id.version}.PEM`;
    // Another process's change in the same timestamp tick as the store's own last one is seen at most a second
    // later (pemIndex.ts; at once with fine-grained timestamps): wait that out, so the test holds on every kernel.
    await sleep(RACY_WAIT_MS);
    for (const name of [old, young, foreign]) await writeFile(join(dir, name), 'partial', { mode: 0o600 });
    await symlink('nowhere', join(dir, oldLink));
    const past = new Date(Date.now() - 10 * 60_000);
    for (const name of [old, foreign]) await utimes(join(dir, name), past, past);
    await lutimes(join(dir, oldLink), past, past);
    await store.list(cert);
    const left = (await readdir(dir)).filter((f) => f.startsWith('.') && f !== STORE_MARKER).sort();
    assert.deepEqual(left, [young, foreign].sort());
  });

  it("another process's install into the shared directory is listed, and its removal too", async () => {
    const mine = createPemStore();
    const other = createPemStore(); // a second kvvm process (enable while the service runs)
    const cert = observed(freshDir(), 'alpha');
    const versions = async (): Promise<string[]> => (await mine.list(cert)).map((e) => e.version);
    await mine.install(cert, v1.id, v1.material);
    await mine.activate(cert, v1.id, undefined);
    // The listing is then taken more than a timestamp tick after the directory's last change, so any later change
    // gives the directory another mtime on every kernel (see the temp files test).
    await sleep(RACY_WAIT_MS);
    assert.deepEqual(await versions(), [v1.id.version]);
    await other.install(cert, v2.id, v2.material);
    assert.deepEqual(await versions(), [v2.id.version, v1.id.version]);
    await sleep(RACY_WAIT_MS);
    assert.deepEqual(await versions(), [v2.id.version, v1.id.version]);
    await other.remove(
      cert,
      (await other.list(cert)).find((e) => e.version === v2.id.version)!,
    );
    assert.deepEqual(await versions(), [v1.id.version]);
  });

  it('a failure after the temp file is written (final name occupied by a directory) leaves no file behind', async () => {
    const store = createPemStore();
    const cert = observed(freshDir(), 'alpha');
    await store.install(cert, v1.id, v1.material);
    await store.activate(cert, v1.id, undefined);
    const before = await readdir(dir);
    await mkdir(join(dir, `${VAULT}.alpha.${v2.id.version}.PEM`));
    await assert.rejects(store.install(cert, v2.id, v2.material), (e: unknown) => e instanceof KvvmError && e.reason === 'store-io');
    assert.deepEqual((await readdir(dir)).sort(), [...before, `${VAULT}.alpha.${v2.id.version}.PEM`].sort());
    assert.deepEqual(
      (await store.list(cert)).map((e) => [e.version, e.active]),
      [[v1.id.version, true]],
    );
  });

  it('names that could leave the store directory are refused', async () => {
    const store = createPemStore();
    const base = observed(freshDir(), 'alpha');
    for (const cert of [
      { ...base, secretName: '../escape' },
      { ...base, vaultName: 'a/b' },
      { ...base, target: { ...base.target, linkName: '../link' } },
      { ...base, target: { ...base.target, linkName: '..' } },
      { ...base, target: { ...base.target, directory: 'relative/dir' } },
    ]) {
      await assert.rejects(
        store.install(cert, { ...v1.id, secretName: cert.secretName }, v1.material),
        (e: unknown) => e instanceof KvvmError && e.reason === 'store-invalid-name',
        JSON.stringify(cert),
      );
    }
    await assert.rejects(store.install(base, { ...v1.id, version: '../../x' }, v1.material), (e: unknown) => e instanceof KvvmError && e.reason === 'store-invalid-name');
  });

  it('removeAll deletes the directory only when no other certificate lives there', async () => {
    const store = createPemStore();
    const alpha = observed(freshDir(), 'alpha');
    const beta = observed(dir, 'beta');
    await store.install(alpha, v1.id, v1.material);
    await store.activate(alpha, v1.id, undefined);
    await store.install(beta, { ...v1.id, secretName: 'beta' }, v1.material);
    await store.removeAll(alpha);
    assert.deepEqual((await readdir(dir)).sort(), [STORE_MARKER, `${VAULT}.beta.${v1.id.version}.PEM`].sort());
    await store.removeAll(beta);
    await assert.rejects(stat(dir), /ENOENT/);
  });
});

describe('PEM store content read back by openssl', () => {
  let pki: OpensslFactory;
  let root: string;
  before(async () => {
    pki = await OpensslFactory.create();
    root = await tempRoot();
  });
  after(async () => {
    await pki.cleanup();
    await rm(root, { recursive: true, force: true });
  });

  for (const keyType of ['rsa', 'ec'] as const) {
    it(`the ${keyType.toUpperCase()} file holds the key, then the leaf, then its chain in issuer order`, async () => {
      const ca = pki.rootCa(`root-${keyType}`);
      const inter = pki.intermediate(`inter-${keyType}`, ca);
      const leaf = pki.leaf(`leaf-${keyType}`, inter, { keyType });
      const material = parseCertificateSecret(pemSecret(ca.certPem, leaf.keyPem, inter.certPem, leaf.certPem), 'application/x-pem-file');
      const store = createPemStore();
      const cert = observed(join(root, keyType), 'alpha');
      await store.install(cert, v1.id, material);
      await store.activate(cert, v1.id, undefined);
      const link = join(root, keyType, `${VAULT}.alpha`);
      const text = await readFile(link, 'utf8');
      assert.deepEqual(
        [...text.matchAll(/-----BEGIN ([A-Z ]+)-----/g)].map((m) => m[1]),
        ['PRIVATE KEY', 'CERTIFICATE', 'CERTIFICATE', 'CERTIFICATE'],
      );
      // openssl x509 reads the first certificate: the leaf.
      const fingerprint = opensslRead(['x509', '-noout', '-fingerprint', '-sha1', '-in', link], '');
      assert.equal(fingerprint.trim().split('=')[1]?.replace(/:/g, ''), material.thumbprint);
      assert.equal(opensslRead(['pkey', '-in', link, '-pubout'], ''), opensslRead(['x509', '-noout', '-pubkey', '-in', leaf.certFile], ''));
      const certs = text
        .split('-----END CERTIFICATE-----')
        .slice(0, 3)
        .map((c) => opensslRead(['x509', '-noout', '-subject'], `${c.slice(c.indexOf('-----BEGIN CERTIFICATE'))}-----END CERTIFICATE-----\n`).trim());
      assert.deepEqual(certs, [`subject=CN = leaf-${keyType}`, `subject=CN = inter-${keyType}`, `subject=CN = root-${keyType}`]);
    });
  }
});

describe('PEM store acls', () => {
  let root: string;
  before(async () => {
    root = await tempRoot();
  });
  after(() => rm(root, { recursive: true, force: true }));
  let n = 0;

  async function installWith(acls: FileAcl[], options: PemStoreOptions): Promise<{ dir: string; link: string }> {
    const dir = join(root, `acl-${++n}`);
    const store = createPemStore(options);
    const cert = observed(dir, 'alpha', { acls });
    await store.install(cert, v1.id, v1.material);
    await store.activate(cert, v1.id, undefined);
    return { dir, link: join(dir, `${VAULT}.alpha`) };
  }

  /** Reads the file as uid nobody with the given primary gid: the real test of "read access". */
  function readAs(gid: number, path: string): number | null {
    return spawnSync('cat', [path], { uid: 65534, gid, stdio: 'ignore' }).status;
  }

  it('without setfacl a single group gets read access through group ownership (0640 file, 0710 directory)', async () => {
    assert.ok(daemonGid !== undefined, 'the "daemon" group exists on Debian-based images');
    const { dir, link } = await installWith([{ group: 'daemon' }], { aclStrategy: 'group' });
    const file = await stat(link);
    assert.equal(file.gid, daemonGid);
    assert.equal(file.mode & 0o777, 0o640);
    assert.equal((await stat(dir)).mode & 0o777, 0o710);
    assert.equal((await stat(dir)).gid, daemonGid);
    assert.equal(readAs(daemonGid, link), 0, 'a member of the group can read the key file');
    assert.notEqual(readAs(nobodyGid, link), 0, 'anyone else cannot');
  });

  it('the automatic choice uses setfacl when installed and the group fallback otherwise, and both grant access', async () => {
    assert.ok(daemonGid !== undefined);
    const { link } = await installWith([{ group: 'daemon' }], {});
    const hasSetfacl = spawnSync('setfacl', ['--version']).error === undefined;
    if (hasSetfacl) {
      assert.match(spawnSync('getfacl', ['-p', link], { encoding: 'utf8' }).stdout, /group:daemon:r--/);
    } else {
      assert.equal((await stat(link)).gid, daemonGid);
    }
    assert.equal(readAs(daemonGid, link), 0);
    assert.notEqual(readAs(nobodyGid, link), 0);
  });

  it('users without setfacl are refused with a fix, and nothing is installed', async () => {
    const dir = join(root, `acl-${++n}`);
    const store = createPemStore({ aclStrategy: 'group' });
    const cert = observed(dir, 'alpha', { acls: [{ user: 'nobody' }] });
    await assert.rejects(store.install(cert, v1.id, v1.material), (e: unknown) => e instanceof KvvmError && e.reason === 'acl-unsupported' && /acl package/.test(e.fix ?? ''));
    assert.equal(existsSync(dir), false, 'not even the directory was created');
  });

  it('an unknown group is refused before any file is written', async () => {
    const dir = join(root, `acl-${++n}`);
    const store = createPemStore();
    await assert.rejects(
      store.install(observed(dir, 'alpha', { acls: [{ group: 'no-such-group-kvvm' }] }), v1.id, v1.material),
      (e: unknown) => e instanceof KvvmError && e.reason === 'acl-unknown-group',
    );
    assert.equal(existsSync(dir), false, 'not even the directory was created');
  });

  it('a failing setfacl on the key file removes the temp file and installs nothing', async () => {
    const dir = join(root, `acl-${++n}`);
    const store = createPemStore({
      aclStrategy: 'setfacl',
      resolveGroup: () => 4242,
      runCommand: async (_f, _args, opts) =>
        fstatSync(opts?.fds?.[0] as number).isDirectory() ? { exitCode: 0, stdout: '', stderr: '' } : { exitCode: 1, stdout: '', stderr: 'setfacl: Operation not supported' },
    });
    await assert.rejects(
      store.install(observed(dir, 'alpha', { acls: [{ group: 'web' }] }), v1.id, v1.material),
      (e: unknown) => e instanceof KvvmError && e.reason === 'acl-failed',
    );
    assert.deepEqual(await readdir(dir), [STORE_MARKER]);
  });
});

describe('PEM store: what a resting worker hands to the next one', () => {
  it('a parsed file taken over from an earlier process is used while the file keeps its identity, and parsed again once it does not', async () => {
    const root = await tempRoot();
    try {
      const dir = join(root, 'store');
      const store = createPemStore();
      const cert = observed(dir, 'handover');
      await store.install(cert, { ...v1.id, secretName: 'handover' }, v1.material);
      const real = (await store.list(cert))[0]!;
      const entry = parsedFilesSnapshot().find((e) => e.path === real.location);
      assert.ok(entry, 'the install left its parse in the snapshot');
      assert.equal(entry.thumbprint, real.thumbprint);
      // JSON through the state file, then a marked thumbprint: a hit shows the mark, a parse the file's own.
      restoreParsedFiles(JSON.parse(JSON.stringify([{ ...entry, thumbprint: 'TAKEN-OVER' }])));
      assert.equal((await store.list(cert))[0]!.thumbprint, 'TAKEN-OVER');
      restoreParsedFiles([{ ...entry, thumbprint: 'TAKEN-OVER', ctimeNs: String(BigInt(entry.ctimeNs) - 1n) }]);
      assert.equal((await store.list(cert))[0]!.thumbprint, real.thumbprint, 'another ctime: not the same file, parsed again');
      restoreParsedFiles([{ ...entry, thumbprint: 'BAD', ino: 'x' }, 'garbage', null]);
      assert.equal((await store.list(cert))[0]!.thumbprint, real.thumbprint, 'entries that do not read are skipped');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
