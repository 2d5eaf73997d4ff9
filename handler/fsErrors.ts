import { KvvmError } from './errors.js';
import type { Reason } from './reasons.js';

/**
 * A file-system failure as an operator reads it: what kvvm was doing, where, what the errno means, and the fix,
 * instead of a bare "EROFS: read-only file system, open '…'" with nothing to do about it.
 */
export function fileSystemError(action: string, path: string, err: unknown, reason: Reason = 'file-system'): KvvmError {
  if (err instanceof KvvmError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const { meaning, fix } = explainErrno(code, path);
  return new KvvmError(reason, `Cannot ${action}: ${path} ${meaning}${code ? ` (${code})` : ''}.`, { fix, cause: err });
}

function explainErrno(code: string | undefined, path: string): { meaning: string; fix: string } {
  switch (code) {
    case 'ENOTDIR':
    case 'EEXIST':
      return {
        meaning: 'is, or lies under, a file where a directory is needed',
        fix: `Move away the file that takes the place of a directory on the path ${path}; the guest agent recreates its folders when the extension is reinstalled.`,
      };
    case 'EISDIR':
      return { meaning: 'is a directory where a file is needed', fix: `Remove the directory ${path}.` };
    case 'EROFS':
      return {
        meaning: 'is on a read-only file system',
        fix: 'Make the file system writable again (it may have been remounted read-only after disk errors: check dmesg), then kvvm continues.',
      };
    case 'ENOSPC':
    case 'EDQUOT':
      return { meaning: 'is on a full file system (or over its quota)', fix: 'Free space on that file system; kvvm continues once it can write.' };
    case 'EACCES':
    case 'EPERM':
      return {
        meaning: `cannot be written by kvvm (uid ${process.geteuid?.() ?? '?'})`,
        fix: `Give root write access to ${path} (kvvm runs as root); check for an immutable attribute (lsattr) or a security module denial.`,
      };
    case 'ENOENT':
      return {
        meaning: 'does not exist (a folder on the path is missing)',
        fix: 'Reinstall the extension so the guest agent recreates its folders, or check HandlerEnvironment.json.',
      };
    case 'ENAMETOOLONG':
      return { meaning: 'is too long a path', fix: 'Use a shorter path.' };
    case 'ELOOP':
      return { meaning: 'leads through too many symbolic links (a loop)', fix: `Fix the symbolic links on the path ${path}.` };
    default:
      return { meaning: 'cannot be written', fix: 'Check that the path is on a writable local file system with free space.' };
  }
}
