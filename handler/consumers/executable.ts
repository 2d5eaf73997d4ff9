import { accessSync, constants, statSync } from 'node:fs';

/**
 * Whether `path` is an executable file on this machine (an onChange command's argv[0]). Symlinks are followed,
 * as exec follows them. On Windows there is no execute bit: an existing file is enough.
 */
export function executableExists(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    if (process.platform !== 'win32') accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
