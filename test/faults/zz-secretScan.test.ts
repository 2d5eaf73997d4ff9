/**
 * Runs last in `npm run test:faults` (files run in name order, one at a time). Scans every log, status and event
 * file the fault run wrote under the shared fault root (test/helpers/faults.ts) for leaked private keys (PEM
 * blocks, slices of the PKCS#8 and PFX base64 the tests uploaded), secret values and bearer tokens (every token
 * the dev vaults issued, from their issuedTokens() hook), then deletes the root. Fails naming file and kind.
 * First it proves the scanner finds each kind of leak in a planted folder, so a silent scanner cannot pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { faultRoot, loadRegistry, type SecretRegistry } from '../helpers/faults.js';

interface Leak {
  file: string;
  kind: 'private-key-pem' | 'secret-value' | 'bearer-token';
}

/** Needles for one secret: the whole value, and 48-char slices of every private key / PFX base64 body. */
function needles(secret: string): string[] {
  const out = [secret];
  const keyBlocks = secret.match(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/g);
  const bodies = keyBlocks ? keyBlocks.map((b) => b.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')) : secret.includes('-----BEGIN ') ? [] : [secret.replace(/\s+/g, '')];
  for (const body of bodies) {
    // Logs may re-wrap base64, so look for line-sized slices, not only the whole body; skip the first 64 chars
    // (DER headers common to every key of a kind).
    for (let at = 64; at + 48 <= body.length; at += 256) out.push(body.slice(at, at + 48));
  }
  return out;
}

export function scanText(text: string, file: string, registry: SecretRegistry, secretNeedles: string[]): Leak[] {
  const leaks: Leak[] = [];
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) leaks.push({ file, kind: 'private-key-pem' });
  if (secretNeedles.some((n) => text.includes(n))) leaks.push({ file, kind: 'secret-value' });
  if (registry.tokens.some((t) => text.includes(t)) || /kvvmdev\.[A-Za-z0-9_-]{16,}/.test(text)) leaks.push({ file, kind: 'bearer-token' });
  return leaks;
}

/** Files an operator or the agent sees: everything under log/, status/ and events/ folders (not stores, not keys). */
async function outputFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const st = await lstat(path);
      if (st.isDirectory()) {
        if (name !== 'registry' && name !== 'store' && !name.startsWith('store')) await walk(path);
      } else if (st.isFile()) {
        const parts = relative(root, path).split(sep);
        if (parts.some((p) => p === 'log' || p === 'status' || p === 'events')) out.push(path);
      }
    }
  };
  await walk(root);
  return out;
}

async function scan(root: string, registry: SecretRegistry): Promise<{ files: number; leaks: Leak[] }> {
  const secretNeedles = [...new Set(registry.secrets.flatMap(needles))];
  const files = await outputFiles(root);
  const leaks: Leak[] = [];
  for (const f of files) leaks.push(...scanText(await readFile(f, 'utf8'), relative(root, f), registry, secretNeedles));
  return { files: files.length, leaks };
}

test('the scanner finds a planted private key, secret slice and token', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-scan-canary-'));
  try {
    const { generateKeyPairSync } = await import('node:crypto');
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const pfxLike = Buffer.from(Array.from({ length: 900 }, (_, i) => (i * 31) % 251)).toString('base64');
    const token = 'kvvmdev.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const registry: SecretRegistry = { secrets: [key, pfxLike], tokens: [token] };
    await mkdir(join(dir, 'a', 'log'), { recursive: true });
    await mkdir(join(dir, 'a', 'status'), { recursive: true });
    await mkdir(join(dir, 'a', 'events'), { recursive: true });
    await mkdir(join(dir, 'a', 'store'), { recursive: true });
    await writeFile(join(dir, 'a', 'log', 'service.log'), `{"msg":"x","key":${JSON.stringify(key)}}\n`);
    await writeFile(join(dir, 'a', 'status', '0.status'), `[{"message":"${pfxLike.slice(300, 400)}"}]`);
    await writeFile(join(dir, 'a', 'events', '1.json'), `{"Message":"Authorization: Bearer ${token}"}`);
    await writeFile(join(dir, 'a', 'log', 'clean.log'), 'nothing to see\n');
    await writeFile(join(dir, 'a', 'store', 'kvvm.x.PEM'), key); // stores hold keys by design: not scanned
    const { files, leaks } = await scan(dir, registry);
    assert.equal(files, 4);
    assert.deepEqual(
      leaks.map((l) => `${l.file}:${l.kind}`).sort(),
      ['a/events/1.json:bearer-token', 'a/log/service.log:private-key-pem', 'a/log/service.log:secret-value', 'a/status/0.status:secret-value'].sort(),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('no log, status or event file written by the fault run contains a private key, secret value or token', async () => {
  const root = faultRoot();
  try {
    const registry = loadRegistry();
    // Without what the other fault tests registered there is nothing to compare against: run the whole suite.
    assert.ok(registry.secrets.length > 0 && registry.tokens.length > 0, `no registry under ${root}: run npm run test:faults`);
    const { files, leaks } = await scan(root, registry);
    console.log(`secret scan: ${files} files, ${registry.secrets.length} secret values, ${registry.tokens.length} tokens, ${leaks.length} leaks`);
    assert.ok(files >= 10, `only ${files} output files found under ${root}`);
    assert.deepEqual(
      leaks.map((l) => `${l.file}: ${l.kind}`),
      [],
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
