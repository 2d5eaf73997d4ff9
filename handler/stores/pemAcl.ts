import { execFileSync, spawn } from 'node:child_process';
import { fchmodSync, fchownSync, fstatSync, readFileSync } from 'node:fs';
import { KvvmError } from '../errors.js';
import { isAccountName } from '../settings/accountName.js';
import { linuxTarget, type FileAcl, type LinuxCertificateTarget, type ObservedCertificate } from '../settings/config.js';
import type { OpenTarget } from './safeWrite.js';

/**
 * Read access for the `acls` setting of KeyVaultForLinux 3.x ([{user, group}]).
 *
 * Preferred: POSIX ACLs with `setfacl` — "r" on each PEM file and "x" (traverse, not list) on the store
 * directory, for every user and group, leaving owner and mode alone.
 * Everything acts on an OPEN file or directory, never on a path that could be swapped: setfacl gets the
 * descriptor as its fd 3 and the path "/dev/fd/3" (the kernel resolves that to the open inode itself), and the
 * fallback uses fchown/fchmod on the descriptor.
 * Fallback when setfacl is not installed: plain ownership can express exactly one group, so a single
 * `{group}` entry becomes file group + mode 0640 and directory group + mode 0710. Anything more (users, several
 * groups) without setfacl is refused with a fix ("install the acl package") rather than silently widened.
 */

export type CommandResult = { exitCode: number; stdout: string; stderr: string } | { notFound: true };
/** `fds`: descriptors the child inherits as its fd 3, 4, ... */
export type CommandRunner = (file: string, args: readonly string[], options?: { fds?: readonly number[] }) => Promise<CommandResult>;
export type AclStrategy = 'auto' | 'setfacl' | 'group';

export const defaultCommandRunner: CommandRunner = (file, args, options = {}) =>
  new Promise((resolve) => {
    // spawn, not execFile: only spawn hands extra descriptors (stdio entries 3, 4, ...) to the child.
    const child = spawn(file, [...args], { stdio: ['ignore', 'pipe', 'pipe', ...(options.fds ?? [])], timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < 65_536) stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 65_536) stderr += d;
    });
    child.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ENOENT' ? { notFound: true } : { exitCode: 1, stdout, stderr: err.message }));
    child.on('close', (code) => resolve({ exitCode: code ?? 1, stdout, stderr }));
  });

/** The path under which a child process sees the descriptor passed as its first extra fd. */
const INHERITED_FD_PATH = '/dev/fd/3';

export interface AclOptions {
  runCommand: CommandRunner;
  strategy: AclStrategy;
  resolveUser: (name: string) => number | undefined;
  resolveGroup: (name: string) => number | undefined;
  /** Group the store directory has when kvvm created it (the process's gid or the configured one). */
  ownGid: number;
}

export interface AclApplier {
  /** Grants read on one open file (a temp file before its rename). Returns how it was done, for logs. */
  applyToFile(target: OpenTarget, acls: FileAcl[]): Promise<'none' | 'setfacl' | 'group'>;
  /** Grants traverse on the open store directory. */
  applyToDir(target: OpenTarget, acls: FileAcl[]): Promise<'none' | 'setfacl' | 'group'>;
  /** Throws the error applyTo* would for these acls (unknown account, unsupported) without touching anything. */
  check(acls: FileAcl[]): void;
}

export function createAclApplier(options: AclOptions): AclApplier {
  const apply = async (target: OpenTarget, acls: FileAcl[], perm: 'r' | 'x'): Promise<'none' | 'setfacl' | 'group'> => {
    const entries = validate(acls, options);
    if (entries.users.length === 0 && entries.groups.length === 0) return 'none';
    if (options.strategy !== 'group') {
      const specs = [...entries.users.map((u) => `u:${u}:${perm}`), ...entries.groups.map((g) => `g:${g}:${perm}`)];
      const result = await options.runCommand('setfacl', ['-m', specs.join(','), INHERITED_FD_PATH], { fds: [target.fd] });
      if (!('notFound' in result)) {
        if (result.exitCode !== 0) {
          throw new KvvmError(
            'acl-failed',
            `setfacl could not grant ${perm === 'r' ? 'read' : 'traverse'} access on ${target.path}: ${result.stderr.trim().replace(INHERITED_FD_PATH, target.path)}`,
            {
              fix: 'Check that the users and groups in "acls" exist and that the file system supports POSIX ACLs.',
            },
          );
        }
        return 'setfacl';
      }
      if (options.strategy === 'setfacl') throw aclUnsupported('setfacl is not installed');
    }
    return groupFallback(target, entries, perm, options);
  };
  return {
    applyToFile: (target, acls) => apply(target, acls, 'r'),
    applyToDir: (target, acls) => apply(target, acls, 'x'),
    check: (acls) => {
      const entries = validate(acls, options);
      if (options.strategy === 'group' && (entries.users.length > 0 || entries.groups.length > 1)) {
        throw aclUnsupported('without setfacl only a single group can be given read access');
      }
    },
  };
}

function groupFallback(target: OpenTarget, entries: { users: string[]; groups: string[] }, perm: 'r' | 'x', options: AclOptions): 'group' {
  if (entries.users.length > 0 || entries.groups.length !== 1) {
    throw aclUnsupported('without setfacl only a single group can be given read access');
  }
  const group = entries.groups[0] as string;
  const gid = options.resolveGroup(group) as number; // validated above
  const current = fstatSync(target.fd);
  if (perm === 'x' && current.gid !== gid && current.gid !== options.ownGid) {
    throw new KvvmError(
      'acl-conflict',
      `The store directory ${target.path} already belongs to another group (gid ${current.gid}); it cannot also give group "${group}" access without POSIX ACLs.`,
      {
        fix: 'Install the acl package (setfacl), or use the same group for every certificate in this directory.',
      },
    );
  }
  fchownSync(target.fd, -1, gid);
  fchmodSync(target.fd, perm === 'r' ? 0o640 : 0o710);
  return 'group';
}

function validate(acls: FileAcl[], options: AclOptions): { users: string[]; groups: string[] } {
  const users: string[] = [];
  const groups: string[] = [];
  for (const acl of acls) {
    if (acl.user !== undefined && acl.user !== '') {
      if (!isAccountName(acl.user) || options.resolveUser(acl.user) === undefined) throw unknownAccount('user', acl.user);
      users.push(acl.user);
    }
    if (acl.group !== undefined && acl.group !== '') {
      if (!isAccountName(acl.group) || options.resolveGroup(acl.group) === undefined) throw unknownAccount('group', acl.group);
      groups.push(acl.group);
    }
  }
  return { users: [...new Set(users)], groups: [...new Set(groups)] };
}

function unknownAccount(kind: 'user' | 'group', name: string): KvvmError {
  return new KvvmError(`acl-unknown-${kind}`, `The ${kind} "${name}" in "acls" does not exist on this machine.`, {
    fix: `Create the ${kind} before kvvm installs the certificate, or correct the "acls" setting.`,
  });
}

function aclUnsupported(detail: string): KvvmError {
  return new KvvmError('acl-unsupported', `Cannot apply "acls": ${detail}.`, {
    fix: 'Install the acl package (it provides setfacl) on the VM, or give access through a single group.',
  });
}

/** Looks a name (or numeric id) up in an /etc/passwd- or /etc/group-style file: id is the third field. */
export function lookupIdInFile(file: string, name: string): number | undefined {
  if (/^\d+$/.test(name)) return isAccountName(name) ? Number(name) : undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields[2] !== undefined && /^\d+$/.test(fields[2])) return Number(fields[2]);
  }
  return undefined;
}

/**
 * Default resolvers: `getent` first because it asks NSS (LDAP/SSSD/AD accounts are not in /etc/passwd), the files
 * when getent is missing (minimal containers).
 */
export function resolveUserDefault(name: string): number | undefined {
  return lookupWithGetent('passwd', name) ?? lookupIdInFile('/etc/passwd', name);
}

export function resolveGroupDefault(name: string): number | undefined {
  return lookupWithGetent('group', name) ?? lookupIdInFile('/etc/group', name);
}

function lookupWithGetent(db: 'passwd' | 'group', name: string): number | undefined {
  if (!isAccountName(name)) return undefined;
  try {
    const out = execFileSync('getent', [db, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    const id = out.split('\n')[0]?.split(':')[2];
    return id !== undefined && /^\d+$/.test(id) ? Number(id) : undefined;
  } catch {
    return undefined; // not found (exit 2) or getent missing
  }
}

/**
 * Owner of one certificate's files and links: its own "owner"/"group" settings (names or numeric ids), else the
 * store's. An account that does not exist is the operator's to fix, before anything is written.
 */
export function certificateOwner(
  cert: ObservedCertificate,
  base: { uid?: number; gid?: number },
  resolve: { resolveUser(name: string): number | undefined; resolveGroup(name: string): number | undefined },
): { uid?: number; gid?: number } {
  const out = { ...base };
  const target = linuxTarget(cert);
  for (const [name, kind] of [
    [target.fileOwner, 'user'],
    [target.fileGroup, 'group'],
  ] as const) {
    if (name === undefined) continue;
    const id = /^\d+$/.test(name) ? Number(name) : kind === 'user' ? resolve.resolveUser(name) : resolve.resolveGroup(name);
    const key = kind === 'user' ? 'owner' : 'group';
    if (id === undefined) {
      throw new KvvmError('file-owner-unknown', `The ${kind} "${name}" (${key} of ${cert.vaultName}/${cert.secretName}'s files) does not exist on this machine.`, {
        fix: `Create the ${kind} first (e.g. install the package that owns it), or correct "${key}" in the settings.`,
      });
    }
    if (kind === 'user') out.uid = id;
    else out.gid = id;
  }
  return out;
}

/** Who needs to traverse the store directory: the acls, plus this certificate's own file owner/group. */
export function traverseAcls(target: LinuxCertificateTarget): FileAcl[] {
  const own: FileAcl = {};
  if (target.fileOwner !== undefined) own.user = target.fileOwner;
  if (target.fileGroup !== undefined) own.group = target.fileGroup;
  return own.user === undefined && own.group === undefined ? target.acls : [...target.acls, own];
}
