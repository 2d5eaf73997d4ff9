/**
 * The Linux files for consumers ("formats": key, crt, pfx): opened with the openssl CLI and Node's crypto/tls,
 * modes and owners, atomic replacement of the links, pruning with their version, and the store contract with
 * every format on.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { chmod, lstat, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCertificate, toPkcs12Base64 } from '../handler/devvault/certFactory.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import type { CertificateMaterial, CertificateVersionId } from '../handler/certs/material.js';
import { linuxTarget, type CertificateFormat, type LinuxCertificateTarget } from '../handler/settings/config.js';
import { linuxObserved, type LinuxObserved } from './helpers/observed.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { splitPemBlocks } from '../handler/devvault/certFactory.js';
import { parseSettings } from '../handler/settings/index.js';
import { runStoreContract } from './store-contract.js';

const VAULT = 'kvvmtest';
const ALL: CertificateFormat[] = ['pem', 'key', 'crt', 'pfx'];

function observed(dir: string, name: string, target: Partial<LinuxCertificateTarget> = {}): LinuxObserved {
  return linuxObserved(VAULT, name, dir, { formats: ALL, ...target });
}

const root = createCa('formats root CA');
const intermediate = issueCertificate({ issuer: root, subjectCn: 'formats intermediate CA', isCa: true, days: 1825 });
function version(n: number): { id: CertificateVersionId; material: CertificateMaterial } {
  const leaf = issueCertificate({ issuer: intermediate, subjectCn: `web${n}.contoso.test`, dnsNames: [`web${n}.contoso.test`], serverAuth: true, days: 90 });
  // Uploaded root first: the files must still come out leaf, intermediate, root.
  const secret = toPkcs12Base64(leaf.keyPem, [root.certPem, leaf.certPem, intermediate.certPem]);
  return { id: { vaultName: VAULT, secretName: 'web', version: `${n}`.repeat(32) }, material: parseCertificateSecret(secret, 'application/x-pkcs12') };
}
const v1 = version(1);
const v2 = version(2);
const v3 = version(3);

function openssl(args: string[], input?: Buffer): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });
}

function subjectsOf(pemText: string): string[] {
  return splitPemBlocks(pemText).map((b) => new X509Certificate(b.pem).subject.replace(/\n/g, ','));
}

describe('consumer files (formats key, crt, pfx)', () => {
  let top: string;
  let n = 0;
  before(async () => {
    top = await mkdtemp(join(tmpdir(), 'kvvm-formats-'));
    await chmod(top, 0o711);
  });
  after(() => rm(top, { recursive: true, force: true }));
  const fresh = (): string => join(top, `store-${++n}`);

  it('writes a key that matches the leaf and a chain in leaf-to-root order, readable by openssl and Node', async () => {
    const dir = fresh();
    const store = createPemStore();
    const cert = observed(dir, 'web');
    await store.install(cert, v1.id, v1.material);
    await store.activate(cert, v1.id, undefined);
    const keyLink = join(dir, `${VAULT}.web.key`);
    const crtLink = join(dir, `${VAULT}.web.crt`);
    assert.equal(await readlink(keyLink), `${VAULT}.web.${v1.id.version}.key`);
    assert.equal(await readlink(crtLink), `${VAULT}.web.${v1.id.version}.crt`);
    // Node: the key is the leaf's key, and the crt file is leaf, intermediate, root.
    const keyPem = await readFile(keyLink, 'utf8');
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const crtPem = await readFile(crtLink, 'utf8');
    assert.ok(!crtPem.includes('PRIVATE KEY'), 'the chain file holds no key');
    const blocks = splitPemBlocks(crtPem).map((b) => new X509Certificate(b.pem));
    assert.equal(blocks.length, 3);
    assert.equal(blocks[0]!.fingerprint, v1.material.leaf.fingerprint);
    assert.ok(blocks[0]!.checkPrivateKey(createPrivateKey(keyPem)));
    assert.ok(blocks[0]!.checkIssued(blocks[1]!) && blocks[1]!.checkIssued(blocks[2]!));
    const subjects = subjectsOf(crtPem);
    [/web1/, /intermediate/, /root/].forEach((re, i) => assert.match(subjects[i]!, re));
    // openssl: same public key from the key file and from the first certificate of the chain file.
    const fromKey = openssl(['pkey', '-in', keyLink, '-pubout']);
    const fromCrt = openssl(['x509', '-in', crtLink, '-pubkey', '-noout']);
    assert.equal(fromKey, fromCrt);
    assert.equal(createPublicKey(fromKey).export({ type: 'spki', format: 'pem' }), v1.material.leaf.publicKey.export({ type: 'spki', format: 'pem' }));
    // openssl verifies the leaf against the chain file's intermediate and root.
    const chainDir = join(top, `chain-${n}`);
    await writeFile(`${chainDir}.root`, splitPemBlocks(crtPem)[2]!.pem);
    await writeFile(`${chainDir}.inter`, splitPemBlocks(crtPem)[1]!.pem);
    assert.match(openssl(['verify', '-CAfile', `${chainDir}.root`, '-untrusted', `${chainDir}.inter`, crtLink]), /OK/);
  });

  it('writes a pfx without password that openssl and Node TLS open, key, leaf and chain included', async () => {
    const dir = fresh();
    const store = createPemStore();
    const cert = observed(dir, 'web');
    await store.install(cert, v1.id, v1.material);
    await store.activate(cert, v1.id, undefined);
    const pfxLink = join(dir, `${VAULT}.web.pfx`);
    const pfx = await readFile(pfxLink);
    const dump = openssl(['pkcs12', '-in', pfxLink, '-passin', 'pass:', '-nodes']);
    assert.match(dump, /BEGIN PRIVATE KEY/);
    assert.equal(splitPemBlocks(dump).filter((b) => b.type === 'CERTIFICATE').length, 3);
    const leafFromPfx = new X509Certificate(openssl(['pkcs12', '-in', pfxLink, '-passin', 'pass:', '-nokeys', '-clcerts']));
    assert.equal(leafFromPfx.fingerprint, v1.material.leaf.fingerprint);
    assert.doesNotThrow(() => createSecureContext({ pfx }));
  });

  it('protects the pfx with the password from pfxPasswordFile (trailing newline ignored); a wrong password fails', async () => {
    const dir = fresh();
    const passFile = join(top, `pass-${n}`);
    await writeFile(passFile, 'correct horse battery\n', { mode: 0o600 });
    const store = createPemStore();
    const cert = observed(dir, 'web', { pfxPasswordFile: passFile });
    await store.install(cert, v1.id, v1.material);
    await store.activate(cert, v1.id, undefined);
    const pfxLink = join(dir, `${VAULT}.web.pfx`);
    const pfx = await readFile(pfxLink);
    assert.match(openssl(['pkcs12', '-in', pfxLink, '-passin', `file:${passFile}`, '-nodes']), /BEGIN PRIVATE KEY/);
    assert.notEqual(spawnSync('openssl', ['pkcs12', '-in', pfxLink, '-passin', 'pass:', '-nodes']).status, 0, 'no password must not open it');
    assert.doesNotThrow(() => createSecureContext({ pfx, passphrase: 'correct horse battery' }));
    assert.throws(() => createSecureContext({ pfx, passphrase: 'wrong' }));
  });

  it('an unreadable password file fails the install with a fix and leaves the active version and its files alone', async () => {
    const dir = fresh();
    const store = createPemStore();
    const good = observed(dir, 'web');
    await store.install(good, v1.id, v1.material);
    await store.activate(good, v1.id, undefined);
    const before = (await readdir(dir)).sort();
    const broken = observed(dir, 'web', { pfxPasswordFile: join(top, 'no-such-password-file') });
    await assert.rejects(
      store.install(broken, v2.id, v2.material),
      (err: Error & { reason?: string; fix?: string }) => err.reason === 'pfx-password-file-unreadable' && /pfxPasswordFile/.test(err.fix ?? ''),
    );
    assert.deepEqual((await readdir(dir)).sort(), before, 'nothing of the new version under a final name, no temp files');
    assert.equal((await store.list(good)).find((e) => e.active)?.version, v1.id.version);
  });

  it('creates key and pfx files 0600 from their first byte, like the PEM, and gives files and links the configured owner and group', async () => {
    const dir = fresh();
    const store = createPemStore();
    const cert = observed(dir, 'web', { fileOwner: 'nobody', fileGroup: 'nogroup' });
    await store.install(cert, v1.id, v1.material);
    await store.activate(cert, v1.id, undefined);
    for (const ext of ['PEM', 'key', 'crt', 'pfx']) {
      const info = await stat(join(dir, `${VAULT}.web.${v1.id.version}.${ext}`));
      assert.equal(info.mode & 0o777, 0o600, ext);
      assert.equal(info.uid, 65534, `${ext} owner`);
      assert.equal(info.gid, 65534, `${ext} group`);
    }
    for (const link of ['', '.key', '.crt', '.pfx']) {
      const info = await lstat(join(dir, `${VAULT}.web${link}`));
      assert.ok(info.isSymbolicLink());
      assert.equal(info.uid, 65534, `link${link} owner`);
    }
    // The owner can reach its files: the directory grants it traverse (setfacl or the group fallback).
    const reader = spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/bin/cat', join(dir, `${VAULT}.web.key`)], { encoding: 'utf8' });
    if (reader.error === undefined) assert.match(reader.stdout, /PRIVATE KEY/, reader.stderr);
  });

  it('an unknown owner is an error naming the user and the fix; nothing is written', async () => {
    const dir = fresh();
    const store = createPemStore();
    const cert = observed(dir, 'web', { fileOwner: 'kvvm-no-such-user' });
    await assert.rejects(
      store.install(cert, v1.id, v1.material),
      (err: Error & { reason?: string }) => err.reason === 'file-owner-unknown' && /kvvm-no-such-user/.test(err.message),
    );
    assert.deepEqual(await store.list(cert), []);
  });

  it('rotation moves every link atomically to the new version and pruning removes every file of the old one', async () => {
    const dir = fresh();
    const store = createPemStore();
    const cert = observed(dir, 'web');
    await store.install(cert, v1.id, v1.material);
    await store.activate(cert, v1.id, undefined);
    const oldKeyLink = await lstat(join(dir, `${VAULT}.web.key`));
    await store.install(cert, v2.id, v2.material);
    // Installed but not active: every link still on v1.
    for (const ext of ['', '.key', '.crt', '.pfx']) assert.match(await readlink(join(dir, `${VAULT}.web${ext}`)), new RegExp(v1.id.version));
    await store.activate(
      cert,
      v2.id,
      (await store.list(cert)).find((e) => e.active),
    );
    for (const ext of ['', '.key', '.crt', '.pfx']) assert.match(await readlink(join(dir, `${VAULT}.web${ext}`)), new RegExp(v2.id.version));
    assert.notEqual((await lstat(join(dir, `${VAULT}.web.key`))).ino, oldKeyLink.ino, 'a new link renamed over the old one');
    await store.install(cert, v3.id, v3.material);
    await store.activate(
      cert,
      v3.id,
      (await store.list(cert)).find((e) => e.active),
    );
    await store.remove(
      cert,
      (await store.list(cert)).find((e) => e.version === v1.id.version)!,
    );
    const names = await readdir(dir);
    assert.deepEqual(
      names.filter((x) => x.includes(v1.id.version)),
      [],
      'v1 pruned in every format',
    );
    assert.equal(names.filter((x) => x.includes(v2.id.version)).length, 4);
    assert.equal(names.filter((x) => x.startsWith('.kvvm-tmp')).length, 0);
    assert.ok(createPrivateKey(await readFile(join(dir, `${VAULT}.web.key`))).equals(v3.material.privateKey));
    await store.removeAll(cert);
    await assert.rejects(stat(dir), /ENOENT/, 'the store directory held only this certificate');
  });

  it('formats added to an installed version are written by the next install without rewriting its PEM', async () => {
    const dir = fresh();
    const store = createPemStore();
    const plain = observed(dir, 'web', { formats: ['pem'] });
    await store.install(plain, v1.id, v1.material);
    await store.activate(plain, v1.id, undefined);
    const pem = await stat(join(dir, `${VAULT}.web.${v1.id.version}.PEM`));
    const withKey = observed(dir, 'web', { formats: ['pem', 'key'] });
    assert.deepEqual(await store.list(withKey), [], 'the key file is missing, so the version is not complete');
    await store.install(withKey, v1.id, v1.material);
    await store.activate(withKey, v1.id, undefined);
    assert.equal((await stat(join(dir, `${VAULT}.web.${v1.id.version}.PEM`))).ino, pem.ino);
    assert.equal((await store.list(withKey))[0]?.active, true);
    assert.ok(createPrivateKey(await readFile(join(dir, `${VAULT}.web.key`))).equals(v1.material.privateKey));
  });

  it('settings: formats, owner, group and pfxPasswordFile are checked with the JSON path and a fix', () => {
    const url = 'https://myvault.vault.azure.net/secrets/web';
    const parse = (entry: Record<string, unknown>, platform: 'linux' | 'win32' = 'linux') =>
      parseSettings({ secretsManagementSettings: { observedCertificates: [{ url, ...entry }] } }, { platform, env: {} });
    const ok = parse({ formats: ['key', 'pfx'], owner: 'postgres', group: 'ssl-cert', pfxPasswordFile: '/etc/kvvm/web.pass' });
    assert.equal(ok.ok, true);
    if (ok.ok) {
      const c = linuxTarget(ok.config.observedCertificates[0]!);
      assert.deepEqual(c.formats, ['pem', 'key', 'pfx'], 'the PEM is always written');
      assert.equal(c.fileOwner, 'postgres');
      assert.equal(c.pfxPasswordFile, '/etc/kvvm/web.pass');
    }
    const plain = parse({});
    assert.ok(plain.ok && linuxTarget(plain.config.observedCertificates[0]!).formats === undefined, 'nothing changes for existing settings');
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ formats: ['der'] }, '/secretsManagementSettings/observedCertificates/0/formats/0'],
      [{ formats: [] }, '/secretsManagementSettings/observedCertificates/0/formats'],
      [{ formats: ['key', 'key'] }, '/secretsManagementSettings/observedCertificates/0/formats'],
      [{ formats: 'key' }, '/secretsManagementSettings/observedCertificates/0/formats'],
      [{ owner: '-rf' }, '/secretsManagementSettings/observedCertificates/0/owner'],
      [{ group: 'a;b' }, '/secretsManagementSettings/observedCertificates/0/group'],
      [{ owner: '' }, '/secretsManagementSettings/observedCertificates/0/owner'],
      [{ pfxPasswordFile: 'web.pass', formats: ['pfx'] }, '/secretsManagementSettings/observedCertificates/0/pfxPasswordFile'],
      [{ updateBindings: 'yes' }, '/secretsManagementSettings/observedCertificates/0/updateBindings'],
    ];
    for (const [entry, path] of bad) {
      const result = parse(entry);
      assert.equal(result.ok, false, JSON.stringify(entry));
      if (!result.ok) {
        assert.ok(
          result.problems.some((p) => p.path === path && p.fix.length > 0),
          `${JSON.stringify(entry)} → ${JSON.stringify(result.problems)}`,
        );
      }
    }
    // Each platform warns about the other's keys instead of failing (one template for both).
    const win = parse({ formats: ['key'], owner: 'postgres' }, 'win32');
    assert.ok(win.ok && win.config.warnings.some((w) => w.path.endsWith('/formats')));
    const lin = parse({ updateBindings: true });
    assert.ok(lin.ok && lin.config.warnings.some((w) => w.path.endsWith('/updateBindings')));
  });
});

runStoreContract('pem with every format', async () => {
  const top = await mkdtemp(join(tmpdir(), 'kvvm-formats-contract-'));
  const dir = join(top, 'store');
  return { store: createPemStore(), cert: (name) => observed(dir, name), cleanup: () => rm(top, { recursive: true, force: true }) };
});
