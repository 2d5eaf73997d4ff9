/**
 * node:crypto, loaded at the first call instead of with the module that uses it. Loading it costs a Node start
 * about 5 ms (measured 2026-12-03, Node 22.23.2: `node -e` 34.6 ms with it, 29.5 without), and `kvvm enable` with
 * valid settings and no protected settings needs none of it; modules on enable's path that need it only on some
 * paths (protected settings, the Windows store) take it from here.
 */
import { createRequire } from 'node:module';

type NodeCrypto = typeof import('node:crypto');

let loaded: NodeCrypto | undefined;

export function nodeCrypto(): NodeCrypto {
  loaded ??= createRequire(import.meta.url)('node:crypto') as NodeCrypto;
  return loaded;
}
