import { lstatSync, readFileSync, readlinkSync, unlinkSync, type BigIntStats, type Stats } from 'node:fs';
import { lstat, readdir, readlink, rmdir, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { KvvmError } from '../errors.js';
import { fileSystemError } from '../fsErrors.js';
import type { CertificateMaterial, CertificateVersionId } from '../certs/material.js';
import { CONTENT_TYPE_PEM, materialToPem, notAfterOf, parseCertificateSecret } from '../certs/parse.js';
import { DEFAULT_LINUX_STORE, type FileAcl, type ObservedCertificate } from '../settings/config.js';
import type { CertificateStore, InstalledCertificate } from './store.js';
import { certificateOwner, createAclApplier, defaultCommandRunner, resolveGroupDefault, resolveUserDefault, traverseAcls, type AclStrategy, type CommandRunner } from './pemAcl.js';
import { cleanTempFiles, errnoOf, finalNameOfTemp } from './pemFiles.js';
import { layoutOf, type Layout } from './pemLayout.js';
import { fsyncDir, openDirectory, replaceSymlink, writePrivateFile, type DirChanges } from './safeWrite.js';
import { createDirIndexes, type DirIndex } from './pemIndex.js';
import { EXTRA_FORMATS, renderExtra } from './pemFormats.js';
import { checkStoreDirectory, ensureStoreDirectory, STORE_MARKER, type StoreDirectoryPolicy } from './storeDirectory.js';

/**
 * The Linux store, laid out like KeyVaultForLinux 3.x:
 *
 *   <certificateStoreLocation>/            mode 0700 (0710 when "acls" need traverse)
 *     <vault>.<secret>.<version>.PEM       mode 0600: leaf + chain + PKCS#8 key (3.x: key last), one file per version
 *     <linkName>  ->  <vault>.<secret>.<version>.PEM   (default linkName "<vault>.<secret>")
 *
 * KeyVaultForLinux itself names version files "<vault>.<cert>.<id>.<n>.<n>.PEM" (seen in user reports, fields
 * undocumented) with an absolute link target. Applications only use the link, so kvvm uses the secret version,
 * which makes files self-describing, and a relative target, which keeps working when the directory is
 * bind-mounted into a container at another path.
 *
 * The directory is checked before every change and before a listing is trusted (storeDirectory.ts: no other
 * user can write on the path to it), and every file is written by safeWrite.ts (private from the first byte,
 * ACLs on the open file before it has its final name, no symlink followed). Listing, installing and activating
 * make their file-system calls synchronously except fsync (safeWrite.ts says why); test/pemStore.calls.test.ts
 * counts them.
 *
 * Install order (list() is newest first) is kept in each file's mtime, set from the injected clock and forced
 * strictly increasing per certificate. There is no index file, so nothing can be half-written by a crash: the
 * directory listing is the whole state, and it only changes by rename/unlink.
 */

export interface PemStoreOptions {
  /** Owner of written files and links; default: the process's. */
  uid?: number;
  gid?: number;
  resolveUser?: (name: string) => number | undefined;
  resolveGroup?: (name: string) => number | undefined;
  /** Runs setfacl (injected by tests to observe calls). */
  runCommand?: CommandRunner;
  /** 'auto' (default): setfacl when installed, else the single-group fallback. */
  aclStrategy?: AclStrategy;
  now?: () => Date;
  /** Where the private key goes in each file (profile.ts pemKeyPosition): 'last' for KeyVaultForLinux 3.x. Default 'first'. */
  keyPosition?: 'first' | 'last';
  /** The documented default store, which kvvm manages even when it did not create it (tests point it elsewhere). */
  defaultStore?: string;
}

/** How long a checked store directory is trusted without walking its path again (see ensureDirectory). */
const ENSURED_TTL_MS = 30_000;

export function createPemStore(options: PemStoreOptions = {}): CertificateStore {
  const now = options.now ?? (() => new Date());
  const owner = { ...(options.uid === undefined ? {} : { uid: options.uid }), ...(options.gid === undefined ? {} : { gid: options.gid }) };
  const ownerOf = (cert: ObservedCertificate): { uid?: number; gid?: number } =>
    certificateOwner(cert, owner, {
      resolveUser: options.resolveUser ?? resolveUserDefault,
      resolveGroup: options.resolveGroup ?? resolveGroupDefault,
    });
  const ownGid = options.gid ?? process.getgid?.() ?? 0;
  const acl = createAclApplier({
    runCommand: options.runCommand ?? defaultCommandRunner,
    strategy: options.aclStrategy ?? 'auto',
    resolveUser: options.resolveUser ?? resolveUserDefault,
    resolveGroup: options.resolveGroup ?? resolveGroupDefault,
    ownGid,
  });

  const policy: StoreDirectoryPolicy = {
    trustedUids: new Set([process.geteuid?.() ?? 0, ...(options.uid === undefined ? [] : [options.uid])]),
    defaultStore: options.defaultStore ?? DEFAULT_LINUX_STORE,
  };

  /**
   * Many certificates share one store directory: each one's list and install reads only its own entries of an
   * index of the directory (pemIndex.ts), which follows the store's own changes and re-reads the directory after
   * anyone else's, so neither costs more in a directory of 20,000 entries than in one of 10.
   */
  const indexes = createDirIndexes();
  // A listing is only trusted from a directory nobody else can write to; checked whenever it is read in full
  // (every change re-checks anyway, before it writes).
  const indexOf = (dir: string): Promise<DirIndex | undefined> => indexes.get(dir, () => checkStoreDirectory(dir, policy));
  const changesIn =
    (dir: string): DirChanges =>
    (op, effect) =>
      indexes.change(dir, op, effect);
  const unlinkIn = (dir: string, name: string): void => indexes.change(dir, () => unlinkSync(join(dir, name)), { removed: [name] });

  /** One certificate's entries (its version files in every format); its temp files older than a minute are removed. */
  function entriesOf(layout: Layout, index: DirIndex): { names: string[]; active: string | undefined } {
    const names = [...index.group(layout.prefix)];
    cleanTempFiles(layout.dir, layout.owns, now(), index.temps(), (name) => unlinkIn(layout.dir, name));
    const target = index.linkTarget(layout.target.linkName);
    return { names, active: target === null ? undefined : activeOf(layout, target) };
  }

  async function list(cert: ObservedCertificate): Promise<Listed[]> {
    const layout = layoutOf(cert);
    return guard(`list certificates in ${layout.dir}`, async () => {
      const index = await indexOf(layout.dir);
      if (index === undefined) return []; // not created yet
      const { names, active } = entriesOf(layout, index);
      return readInstalled(layout, names, active);
    });
  }

  async function install(cert: ObservedCertificate, id: CertificateVersionId, material: CertificateMaterial): Promise<Listed> {
    const layout = layoutOf(cert);
    const fileName = layout.fileName(id.version);
    let content: string;
    try {
      content = materialToPem(material, { keyPosition: options.keyPosition ?? 'first' });
    } catch (cause) {
      throw new KvvmError('store-bad-material', `The certificate ${describeId(id)} cannot be written as PEM.`, {
        fix: 'Re-import the certificate into Key Vault.',
        code: -1,
        cause,
      });
    }
    const fileOwner = ownerOf(cert);
    return guard(`install ${describeId(id)} into ${layout.dir}`, async () => {
      await ensureDirectory(layout.dir, traverseAcls(layout.target));
      const index = await indexOf(layout.dir);
      if (index === undefined) throw new Error(`${layout.dir} is not a directory after creating it`);
      const { names, active } = entriesOf(layout, index);
      const installed = readInstalled(layout, names, active, { complete: false });
      const existing = installed.find((e) => e.version === id.version);
      // Versions are immutable in Key Vault: same name + same thumbprint is the same content.
      const samePem = existing !== undefined && existing.thumbprint === material.thumbprint;
      const newest = Math.max(0, ...installed.map((e) => e.mtimeMs));
      const mtime = new Date(Math.max(now().getTime(), Math.floor(newest) + 1));
      // One directory fsync after the last rename covers every file of the version (before install returns).
      const write = (name: string, data: string | Buffer): Promise<BigIntStats> =>
        writePrivateFile(layout.dir, name, data, {
          mode: 0o600,
          mtime,
          ...fileOwner,
          changes: changesIn(layout.dir),
          onHandle: async (target) => {
            await acl.applyToFile(target, layout.target.acls);
          },
          syncDir: false,
        });
      // Every file is rendered before the first is written (a missing pfx password file must leave nothing behind);
      // the other formats are written first and the PEM last: the PEM is what makes the version listed (installed).
      const extras: Array<{ name: string; data: string | Buffer }> = [];
      for (const format of layout.extras) {
        const name = layout.extraName(id.version, format);
        if (samePem && names.includes(name)) continue; // added by an earlier install of this very version
        extras.push({ name, data: await renderExtra(material, format, layout.target) });
      }
      const written: string[] = [];
      let pem: BigIntStats | undefined;
      try {
        for (const { name, data } of extras) {
          await write(name, data);
          written.push(name);
        }
        if (!samePem) {
          pem = await write(fileName, content);
          written.push(fileName);
        }
        if (written.length > 0) await fsyncDir(layout.dir);
      } catch (err) {
        // No half-installed version stays visible: what this call wrote of it goes again.
        for (const name of written) {
          try {
            unlinkIn(layout.dir, name);
          } catch {
            // the install's own error is the one reported
          }
        }
        throw err;
      }
      const path = join(layout.dir, fileName);
      if (pem === undefined) {
        if (existing === undefined) throw new Error(`${fileName} is not installed after installing it`);
        return existing;
      }
      // writePrivateFile returned the lstat of the very inode it wrote: the file's thumbprint and expiry are the
      // material's, which the PEM was rendered from, so neither this entry nor later listings parse it (key
      // included) again. Any later change gives the file another ctime, and it is read like any other.
      const { thumbprint, notAfter } = rememberParsed(path, pem, material);
      return {
        vaultName: layout.cert.vaultName,
        secretName: layout.cert.secretName,
        version: id.version,
        thumbprint,
        notAfter,
        active: fileName === active,
        location: path,
        mtimeMs: Number(pem.mtimeMs),
        mtimeNs: pem.mtimeNs,
      };
    });
  }

  async function activate(cert: ObservedCertificate, id: CertificateVersionId): Promise<void> {
    const layout = layoutOf(cert);
    const fileName = layout.fileName(id.version);
    const target = lstatOrUndefined(join(layout.dir, fileName));
    if (!target?.isFile()) {
      throw new KvvmError('store-version-missing', `Cannot activate ${describeId(id)}: ${join(layout.dir, fileName)} is not installed.`, {
        fix: 'This is a kvvm bug (activate before install); restart the service to resynchronise.',
        code: -1,
      });
    }
    const linkOwner = ownerOf(cert);
    // The other formats' links first, the PEM's last: the PEM link says which version is active, so a crash in
    // between is repaired by the next poll's activate.
    for (const format of layout.extras) {
      const name = layout.extraLinkName(format);
      const target = layout.extraName(id.version, format);
      const linkPath = join(layout.dir, name);
      await guard(`point ${linkPath} at ${target}`, async () => {
        const link = lstatOrUndefined(linkPath);
        if (link && !link.isSymbolicLink()) {
          throw new KvvmError('store-link-occupied', `${linkPath} exists and is not a symbolic link; kvvm does not overwrite it.`, {
            fix: 'Move that file away or choose another customSymbolicLinkName.',
          });
        }
        if (link) {
          const current = readlinkSync(linkPath);
          if (!layout.isExtraFile(basename(current)) || current.includes('/')) {
            throw new KvvmError(
              'store-link-foreign',
              `${linkPath} is a symbolic link to ${JSON.stringify(current)}, which is not one of this certificate's files; kvvm does not replace a link it did not make.`,
              {
                fix: `Remove ${linkPath} if nothing needs it, or choose another customSymbolicLinkName.`,
              },
            );
          }
          if (current === target) return;
        }
        await replaceSymlink(layout.dir, name, target, linkOwner, changesIn(layout.dir));
      });
    }
    await guard(`point ${layout.linkPath} at ${fileName}`, async () => {
      await ensureDirectory(layout.dir, traverseAcls(layout.target));
      const link = lstatOrUndefined(layout.linkPath);
      if (link && !link.isSymbolicLink()) {
        throw new KvvmError('store-link-occupied', `${layout.linkPath} exists and is not a symbolic link; kvvm does not overwrite it.`, {
          fix: 'Move that file away or choose another customSymbolicLinkName.',
        });
      }
      if (link) {
        const current = readlinkSync(layout.linkPath);
        if (layout.linkTargetVersion(current) === undefined) {
          throw new KvvmError(
            'store-link-foreign',
            `${layout.linkPath} is a symbolic link to ${JSON.stringify(current)}, which is not one of this certificate's files; kvvm does not replace a link it did not make.`,
            {
              fix: `Remove ${layout.linkPath} if nothing needs it (rm ${layout.linkPath}), or choose another customSymbolicLinkName.`,
            },
          );
        }
        if (basename(current) === fileName) return;
      }
      await replaceSymlink(layout.dir, layout.target.linkName, fileName, linkOwner, changesIn(layout.dir));
    });
  }

  async function remove(cert: ObservedCertificate, installed: InstalledCertificate): Promise<void> {
    const layout = layoutOf(cert);
    const fileName = layout.fileName(installed.version);
    if (activeFileName(layout) === fileName) {
      throw new KvvmError('store-remove-active', `Refusing to remove ${join(layout.dir, fileName)}: it is the active version.`, {
        fix: 'This is a kvvm bug (the planner removed the active version); nothing was changed.',
        code: -1,
      });
    }
    await guard(`remove ${fileName} from ${layout.dir}`, async () => {
      if (!(await checkStoreDirectory(layout.dir, policy))) return;
      // Every format's file goes with its version, whatever "formats" says today.
      for (const name of [fileName, ...EXTRA_FORMATS.map((f) => layout.extraName(installed.version, f))]) {
        try {
          unlinkIn(layout.dir, name);
        } catch (err) {
          if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') continue; // "not found" is not an error
          throw err;
        }
      }
      await fsyncDir(layout.dir);
    });
  }

  async function removeAll(cert: ObservedCertificate): Promise<void> {
    const layout = layoutOf(cert);
    if (!(await isDirectory(layout.dir))) return;
    await guard(`remove ${cert.vaultName}/${cert.secretName} from ${layout.dir}`, async () => {
      indexes.forget(layout.dir); // removeAll reads and changes the directory itself (rare: a certificate no longer observed)
      const checked = await checkStoreDirectory(layout.dir, policy);
      if (!checked) return;
      // The link first: applications then fail to open rather than read a file being deleted. Only our link.
      const link = await lstat(layout.linkPath).catch(() => undefined);
      if (link?.isSymbolicLink() && layout.linkTargetVersion(await readlink(layout.linkPath)) !== undefined) await unlink(layout.linkPath);
      for (const format of EXTRA_FORMATS) {
        const extraLink = join(layout.dir, layout.extraLinkName(format));
        const info = await lstat(extraLink).catch(() => undefined);
        if (info?.isSymbolicLink() && layout.isExtraFile(await readlink(extraLink))) await unlink(extraLink);
      }
      for (const name of await readdir(layout.dir)) {
        const tempFor = finalNameOfTemp(name);
        if (layout.versionOf(name) !== undefined || layout.isExtraFile(name) || (tempFor !== undefined && layout.owns(tempFor))) {
          await unlink(join(layout.dir, name)).catch((err: unknown) => {
            if (errnoOf(err) !== 'ENOENT') throw err;
          });
        }
      }
      await fsyncDir(layout.dir);
      // Other certificates may share the directory: only an empty one goes, and only one kvvm created.
      if (checked.managed && (await readdir(layout.dir)).every((n) => n === STORE_MARKER)) {
        await unlink(join(layout.dir, STORE_MARKER)).catch(() => undefined);
        await rmdir(layout.dir).catch(() => undefined);
      }
    });
  }

  /**
   * ensureDirectory's last success per directory. The walk it saves (every component from "/", lstat each, then
   * the directory's mode, owner and ACL through a handle) ran twice per installed certificate, ~16 file-system
   * calls each. Re-using it is sound: the walk established that only root or the service user can change anything
   * on that path, so until the directory itself changes (a new inode, mode or owner: one lstat below) only they can
   * have changed it; and the walk runs again at least every ENSURED_TTL_MS.
   */
  const ensured = new Map<string, { acls: string; at: number; dev: number; ino: number; mode: number; uid: number; gid: number }>();
  const sameDirectory = (dir: string, acls: string): boolean => {
    const last = ensured.get(dir);
    if (!last || last.acls !== acls || performance.now() - last.at > ENSURED_TTL_MS) return false;
    const now = lstatOrUndefined(dir);
    return now !== undefined && now.isDirectory() && now.dev === last.dev && now.ino === last.ino && now.mode === last.mode && now.uid === last.uid && now.gid === last.gid;
  };

  async function ensureDirectory(dir: string, acls: FileAcl[]): Promise<void> {
    acl.check(acls); // an unusable "acls" fails before anything is created
    const aclsKey = JSON.stringify(acls);
    if (sameDirectory(dir, aclsKey)) return;
    ensured.delete(dir);
    await ensureDirectoryOnce(dir, acls);
    const done = lstatSync(dir);
    ensured.set(dir, { acls: aclsKey, at: performance.now(), dev: done.dev, ino: done.ino, mode: done.mode, uid: done.uid, gid: done.gid });
  }

  async function ensureDirectoryOnce(dir: string, acls: FileAcl[]): Promise<void> {
    const checked = await ensureStoreDirectory(dir, policy, owner);
    if (!checked.managed) {
      // Not ours: used as it is. Readers named in "acls" need to traverse it, which kvvm may not grant here.
      if (acls.length > 0 && (checked.stats.mode & 0o001) === 0) {
        throw new KvvmError(
          'store-dir-foreign',
          `The store directory ${dir} was not created by kvvm, which therefore does not change its permissions, and the users in "acls" cannot enter it (mode ${(checked.stats.mode & 0o777).toString(8)}).`,
          {
            fix: `Hand the directory to kvvm with "touch ${join(dir, STORE_MARKER)}" (kvvm then keeps it 0710 with ACLs for those users), or remove it so kvvm creates it, or "chmod o+x ${dir}".`,
          },
        );
      }
      return;
    }
    // Acted on through an open handle, so the checked directory is the one changed.
    const handle = await openDirectory(dir);
    try {
      const info = await handle.stat();
      // 0700, or 0710 when "acls" need group traverse (this certificate's, or another's sharing the directory,
      // seen as a directory group changed by the fallback). A 0710 directory is left alone: with POSIX ACLs its
      // group bits are the ACL mask, and chmod would rewrite it and cut off other certificates' readers.
      const mode = info.mode & 0o777;
      if ((mode & 0o067) !== 0 || (mode & 0o700) !== 0o700) {
        const keepTraverse = acls.length > 0 || info.gid !== ownGid;
        await handle.chmod(0o700 | (keepTraverse ? mode & 0o010 : 0));
      }
      // The owner of the files must be able to enter the directory; its group is left to the acls fallback.
      if (owner.uid !== undefined && info.uid !== owner.uid) await handle.chown(owner.uid, -1);
      await acl.applyToDir({ fd: handle.fd, path: dir }, acls);
    } finally {
      await handle.close();
    }
  }

  return { kind: 'pem', list: async (cert) => (await list(cert)).map(plain), install: async (...a) => plain(await install(...a)), activate, remove, removeAll };
}

type Listed = InstalledCertificate & { mtimeMs: number; mtimeNs: bigint };

/**
 * What reading a version file yielded, keyed by path and valid while the file's identity is unchanged: kvvm
 * replaces files by rename (a new inode) and any edit in place changes ctime, so a hit is the same content.
 * Saves re-parsing every PEM (private key included) on every list: the steady-state poll lists each certificate.
 */
interface ParsedFile {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  thumbprint: string;
  notAfter: Date;
}
const parsedFiles = new Map<string, ParsedFile>();
/**
 * Up to 10,000 observed certificates (the settings' bound) with two versions each, and a third while one rotates.
 * Past it the oldest entry goes (clearing them all made every list at 10,000 certificates parse its PEM again).
 */
const PARSED_FILES_MAX = 30_000;

/** The parsed-file entries as plain JSON (bigints as decimal strings): a worker that rests hands them to the next one. */
export type ParsedFilesSnapshot = Array<{ path: string; ino: string; size: string; mtimeNs: string; ctimeNs: string; thumbprint: string; notAfter: number }>;

export function parsedFilesSnapshot(): ParsedFilesSnapshot {
  return [...parsedFiles].map(([path, p]) => ({
    path,
    ino: String(p.ino),
    size: String(p.size),
    mtimeNs: String(p.mtimeNs),
    ctimeNs: String(p.ctimeNs),
    thumbprint: p.thumbprint,
    notAfter: p.notAfter.getTime(),
  }));
}

/**
 * Takes over what an earlier process of the service parsed (read from its private state file): an entry is used only
 * while the file keeps that identity, as in the process that parsed it. Entries that do not read are skipped.
 */
export function restoreParsedFiles(snapshot: unknown): void {
  if (!Array.isArray(snapshot)) return;
  const big = (v: unknown): bigint | undefined => (typeof v === 'string' && /^\d{1,30}$/.test(v) ? BigInt(v) : undefined);
  for (const e of snapshot.slice(-PARSED_FILES_MAX) as unknown[]) {
    if (typeof e !== 'object' || e === null) continue;
    const { path, thumbprint, notAfter, ...id } = e as Record<string, unknown>;
    const [ino, size, mtimeNs, ctimeNs] = [big(id['ino']), big(id['size']), big(id['mtimeNs']), big(id['ctimeNs'])];
    if (ino === undefined || size === undefined || mtimeNs === undefined || ctimeNs === undefined) continue;
    if (typeof path !== 'string' || typeof thumbprint !== 'string' || typeof notAfter !== 'number' || !Number.isFinite(notAfter)) continue;
    if (parsedFiles.size >= PARSED_FILES_MAX) break;
    parsedFiles.set(path, { ino, size, mtimeNs, ctimeNs, thumbprint, notAfter: new Date(notAfter) });
  }
}

function readVersionFile(path: string, info: { ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }): ParsedFile {
  const hit = parsedFiles.get(path);
  if (hit && hit.ino === info.ino && hit.size === info.size && hit.mtimeNs === info.mtimeNs && hit.ctimeNs === info.ctimeNs) return hit;
  const material = parseCertificateSecret(readFileSync(path, 'utf8'), CONTENT_TYPE_PEM);
  return rememberParsed(path, info, material);
}

function rememberParsed(path: string, info: { ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }, material: CertificateMaterial): ParsedFile {
  const parsed: ParsedFile = { ino: info.ino, size: info.size, mtimeNs: info.mtimeNs, ctimeNs: info.ctimeNs, thumbprint: material.thumbprint, notAfter: notAfterOf(material.leaf) };
  parsedFiles.delete(path);
  if (parsedFiles.size >= PARSED_FILES_MAX) parsedFiles.delete(parsedFiles.keys().next().value as string);
  parsedFiles.set(path, parsed);
  return parsed;
}

/** Reads every version file back (thumbprint and expiry come from the file itself, or from what this process just wrote into it, so they cannot drift). */
function readInstalled(layout: Layout, names: readonly string[], active: string | undefined, options: { complete: boolean } = { complete: true }): Listed[] {
  const entries: Listed[] = [];
  const present = new Set(names);
  for (const name of present) {
    const version = layout.versionOf(name);
    if (version === undefined) continue;
    // A version counts only with every configured format's file: one missing (formats added later, an install
    // cut short) makes the engine install it again, which writes what is missing.
    if (options.complete && layout.extras.some((f) => !present.has(layout.extraName(version, f)))) continue;
    const path = join(layout.dir, name);
    let info: BigIntStats;
    try {
      info = lstatSync(path, { bigint: true });
    } catch {
      continue; // removed meanwhile
    }
    if (!info.isFile()) continue;
    let thumbprint: string;
    let notAfter: Date;
    try {
      ({ thumbprint, notAfter } = readVersionFile(path, info));
    } catch {
      continue; // damaged by hand: not listed, so the engine installs that version again (which replaces it)
    }
    entries.push({
      vaultName: layout.cert.vaultName,
      secretName: layout.cert.secretName,
      version,
      thumbprint,
      notAfter,
      active: name === active,
      location: path,
      mtimeMs: Number(info.mtimeMs),
      mtimeNs: info.mtimeNs,
    });
  }
  entries.sort((a, b) => (a.mtimeNs === b.mtimeNs ? (a.location < b.location ? 1 : -1) : a.mtimeNs < b.mtimeNs ? 1 : -1));
  return entries;
}

/** Drops the bookkeeping fields before an entry leaves the store. */
function plain(entry: Listed): InstalledCertificate {
  const { mtimeMs: _ms, mtimeNs: _ns, ...rest } = entry;
  return rest;
}

function activeFileName(layout: Layout): string | undefined {
  try {
    return activeOf(layout, readlinkSync(layout.linkPath));
  } catch {
    return undefined;
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** The version file a link target names, when it is one of this certificate's (kvvm's or KeyVaultForLinux's link). */
function activeOf(layout: Layout, target: string): string | undefined {
  return layout.linkTargetVersion(target) === undefined ? undefined : basename(target);
}

async function isDirectory(dir: string): Promise<boolean> {
  return (await stat(dir).catch(() => undefined))?.isDirectory() ?? false;
}

function describeId(id: CertificateVersionId): string {
  return `${id.vaultName}/${id.secretName}/${id.version}`;
}

/** File-system failures become KvvmError with the errno; KvvmErrors pass through. */
async function guard<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof KvvmError) throw err;
    const path = (err as NodeJS.ErrnoException | undefined)?.path;
    if (path === undefined) {
      throw new KvvmError('store-io', `Cannot ${action}: ${errnoOf(err) ?? (err instanceof Error ? err.message : String(err))}.`, {
        fix: 'Check that the store directory is on a writable local file system with free space.',
        cause: err,
      });
    }
    throw fileSystemError(action, path, err, 'store-io');
  }
}
