/**
 * The first poll installs every certificate at once, so a new store directory is created by many callers at the
 * same moment (16 in the service): all of them must get the managed store, none an EEXIST on its marker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureStoreDirectory, STORE_MARKER } from '../handler/stores/storeDirectory.js';

test('concurrent first installs into a new store directory all succeed and leave one marker', async () => {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-store-race-'));
  try {
    for (let round = 0; round < 5; round++) {
      const dir = join(root, `round-${round}`, 'store');
      const policy = { trustedUids: new Set([process.geteuid?.() ?? 0]), defaultStore: '/var/lib/waagent/Microsoft.Azure.KeyVault.Store' };
      const results = await Promise.all(Array.from({ length: 16 }, () => ensureStoreDirectory(dir, policy, {})));
      assert.ok(
        results.every((r) => r.managed),
        `round ${round}: every caller sees a managed store`,
      );
      assert.deepEqual(await readdir(dir), [STORE_MARKER]);
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
