import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './paths.js';

/** The one version number, read from package.json (the packaging step writes it everywhere else). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

let agentPrefix: string | undefined;

/**
 * The User-Agent prefix of kvvm's Azure requests (Key Vault, Resource Manager): "kvvm/<package version>". Read once
 * per process: every vault client asks for it, and a synchronous read of package.json per client cost a fleet of
 * simulated instances (bench/README.md figure 5) 0.4 % of its CPU.
 */
export function userAgentPrefix(): string {
  if (agentPrefix === undefined) {
    try {
      agentPrefix = `kvvm/${packageVersion()}`;
    } catch {
      agentPrefix = 'kvvm'; // no package.json beside the code: a missing version must not stop vault requests
    }
  }
  return agentPrefix;
}
