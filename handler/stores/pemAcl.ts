import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, chown, stat } from 'node:fs/promises';
import { KvvmError } from '../errors.js';
import type { FileAcl, ObservedCertificate } from '../settings/config.js';

/**
 * Read access for the `acls` setting of KeyVaultForLinux 3.x ([{user, group}]).
 *
 * Preferred: POSIX ACLs with `setfacl` — "r" on each PEM file and "x" (traverse, not list) on the store
 * directory, for every user and group, leaving owner and mode alone.
 * Fallback when setfacl is not installed: plain ownership can express exactly one group, so a single
 * `{group}` entry becomes file group + mode 0640 and directory group + mode 0710. Anything more (users, several
 * groups) without setfacl is refused with a fix ("install the acl package") rather than silently widened.
 */

export type CommandResult = { exitCode: number; stdout: string; stderr: string } | { notFound: true };
export type CommandRunner = (file: string, args: readonly string[]) => Promise<CommandResult>;
export type AclStrategy = 'auto' | 'setfacl' | 'group';

export const defaultCommandRunner: CommandRunner = (file, args) =>
  new Promise((resolve) => {
    execFile(file, [...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') resolve({ notFound: true });
      else resolve({ exitCode: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });

export interface AclOptions {
  runCommand: CommandRunner;
  strategy: AclStrategy;
  resolveUser: (name: string) => number | undefined;
  resolveGroup: (name: string) => number | undefined;
  /** Group the store directory has when kvvm created it (the process's gid or the configured one). */
  ownGid: number;
}

/** User/group names as useradd accepts them, or numeric ids; anything else could inject into a setfacl spec. */
const ACCOUNT = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?$/;

export interface AclApplier {
  /** Grants read on one file (a temp file before its rename). Returns how it was done, for logs. */
  applyToFile(path: string, acls: FileAcl[]): Promise<'none' | 'setfacl' | 'group'>;
  /** Grants traverse on the store directory. */
  applyToDir(path: string, acls: FileAcl[]): Promise<'none' | 'setfacl' | 'group'>;
}

export function createAclApplier(options: AclOptions): AclApplier {
  const apply = async (path: string, acls: FileAcl[], perm: 'r' | 'x'): Promise<'none' | 'setfacl' | 'group'> => {
    const entries = validate(acls, options);
    if (entries.users.length === 0 && entries.groups.length === 0) return 'none';
    if (options.strategy !== 'group') {
      const specs = [...entries.users.map((u) => `u:${u}:${perm}`), ...entries.groups.map((g) => `g:${g}:${perm}`)];
      const result = await options.runCommand('setfacl', ['-m', specs.join(','), path]);
      if (!('notFound' in result)) {
        if (result.exitCode !== 0) {
          throw new KvvmError('acl-failed', `setfacl could not grant read access on ${path}: ${result.stderr.trim()}`, {
            fix: 'Check that the users and groups in "acls" exist and that the file system supports POSIX ACLs.',
          });
        }
        return 'setfacl';
      }
      if (options.strategy === 'setfacl') throw aclUnsupported('setfacl is not installed');
    }
    return groupFallback(path, entries, perm, options);
  };
  return {
    applyToFile: (path, acls) => apply(path, acls, 'r'),
    applyToDir: (path, acls) => apply(path, acls, 'x'),
  };
}

async function groupFallback(
  path: string,
  entries: { users: string[]; groups: string[] },
  perm: 'r' | 'x',
  options: AclOptions,
): Promise<'group'> {
  if (entries.users.length > 0 || entries.groups.length !== 1) {
    throw aclUnsupported('without setfacl only a single group can be given read access');
  }
  const group = entries.groups[0] as string;
  const gid = options.resolveGroup(group) as number; // validated above
  const current = await stat(path);
  if (perm === 'x' && current.gid !== gid && current.gid !== options.ownGid) {
    throw new KvvmError('acl-conflict', `The store directory ${path} already belongs to another group (gid ${current.gid}); it cannot also give group "${group}" access without POSIX ACLs.`, {
      fix: 'Install the acl package (setfacl), or use the same group for every certificate in this directory.',
    });
  }
  await chown(path, -1, gid);
  await chmod(path, perm === 'r' ? 0o640 : 0o710);
  return 'group';
}

function validate(acls: FileAcl[], options: AclOptions): { users: string[]; groups: string[] } {
  const users: string[] = [];
  const groups: string[] = [];
  for (const acl of acls) {
    if (acl.user !== undefined && acl.user !== '') {
      if (!ACCOUNT.test(acl.user) || options.resolveUser(acl.user) === undefined) throw unknownAccount('user', acl.user);
      users.push(acl.user);
    }
    if (acl.group !== undefined && acl.group !== '') {
      if (!ACCOUNT.test(acl.group) || options.resolveGroup(acl.group) === undefined) throw unknownAccount('group', acl.group);
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
  if (/^\d+$/.test(name)) return Number(name);
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
  if (!ACCOUNT.test(name)) return undefined;
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
  for (const [name, kind] of [[cert.fileOwner, 'user'], [cert.fileGroup, 'group']] as const) {
    if (name === undefined) continue;
    const id = /^\d+$/.test(name) ? Number(name) : (kind === 'user' ? resolve.resolveUser(name) : resolve.resolveGroup(name));
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
export function traverseAcls(cert: ObservedCertificate): FileAcl[] {
  const own: FileAcl = {};
  if (cert.fileOwner !== undefined) own.user = cert.fileOwner;
  if (cert.fileGroup !== undefined) own.group = cert.fileGroup;
  return own.user === undefined && own.group === undefined ? cert.acls : [...cert.acls, own];
}
