import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root (the folder holding package.json or HandlerManifest.json), found from this file's location so
 * it works from the TypeScript build in lib/ and from a packaged extension alike.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) || existsSync(join(dir, 'HandlerManifest.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`kvvm: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export function schemasDir(): string {
  return join(packageRoot(), 'schemas');
}
