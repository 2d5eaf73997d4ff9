import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './paths.js';

/** The one version number, read from package.json (the packaging step writes it everywhere else). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

/** The User-Agent prefix of kvvm's Azure requests (Key Vault, Resource Manager): "kvvm/<package version>". */
export function userAgentPrefix(): string {
  try {
    return `kvvm/${packageVersion()}`;
  } catch {
    return 'kvvm'; // no package.json beside the code: a missing version must not stop vault requests
  }
}
