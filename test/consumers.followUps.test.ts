/**
 * What consumers did, kept across workers (consumers/followUps.ts) in a real file: a change whose consumers did not
 * run to the end is resumed by the next worker with the same `activated`; a finished one is not run again, and its
 * outcome (a failed reload) is still reported; a damaged file is ignored with a warning.
 * The end-to-end case (kill -9 during the command, the restarted worker runs it) is in serviceRestart.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createFollowUpMemory } from '../handler/consumers/followUps.js';
import type { CertificateSyncResult, FollowUp } from '../handler/engine/certificateSync.js';
import type { ObservedCertificate } from '../handler/settings/config.js';

const cert = {
  vaultHost: 'v.vault.azure.net',
  vaultName: 'v',
  secretName: 'web',
  target: { platform: 'linux', directory: '/store', linkName: 'web.pem' },
} as unknown as ObservedCertificate;
const changed = (): CertificateSyncResult => ({ cert, state: 'installed', changed: true, activeVersion: 'v2', activated: { previousVersion: 'v1', previousThumbprint: 'AA' } });
const unchanged = (version = 'v2'): CertificateSyncResult => ({ cert, state: 'unchanged', changed: false, activeVersion: version });

async function withFile(fn: (path: string, warnings: string[]) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-followups-'));
  const warnings: string[] = [];
  try {
    await fn(join(dir, 'state', 'consumers.json'), warnings);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
const log = (warnings: string[]) => ({ info: () => undefined, error: () => undefined, warn: (m: string) => void warnings.push(m) });

/** One cycle of a new worker's memory over `results` (a fresh process reading the file), recording `outcome` if given. */
async function workerCycle(path: string, warnings: string[], results: CertificateSyncResult[], outcome?: FollowUp): Promise<CertificateSyncResult[]> {
  const memory = createFollowUpMemory({ path, log: log(warnings) });
  await memory.begin(results);
  if (outcome) memory.record(results[0]!, outcome);
  await memory.finish(results);
  return results;
}

test('a change whose consumers did not finish is resumed by the next worker, with the same previous version', () =>
  withFile(async (path, warnings) => {
    const first = createFollowUpMemory({ path, log: log(warnings) });
    await first.begin([changed()]); // the worker dies here, before its command ran
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const results = await workerCycle(path, warnings, [unchanged()], { ok: true, text: 'onChange command /bin/sh succeeded.' });
    assert.deepEqual(results[0]!.activated, { previousVersion: 'v1', previousThumbprint: 'AA' });
    // Done now: a third worker neither runs it again nor forgets what it did.
    const later = await workerCycle(path, warnings, [unchanged()]);
    assert.equal(later[0]!.activated, undefined);
    assert.deepEqual(later[0]!.followUps, [{ ok: true, text: 'onChange command /bin/sh succeeded.' }]);
    assert.deepEqual(warnings, []);
  }));

test('a failed reload is still reported by the next worker, and not run again', () =>
  withFile(async (path, warnings) => {
    await workerCycle(path, warnings, [changed()], { ok: false, text: 'onChange command /usr/sbin/nginx exited with code 1.' });
    const again = await workerCycle(path, warnings, [unchanged()]);
    assert.equal(again[0]!.activated, undefined);
    assert.deepEqual(again[0]!.followUps, [{ ok: false, text: 'onChange command /usr/sbin/nginx exited with code 1.' }]);
  }));

test('a pending change of a version no longer active is dropped, not resumed', () =>
  withFile(async (path, warnings) => {
    await createFollowUpMemory({ path, log: log(warnings) }).begin([changed()]);
    const results = await workerCycle(path, warnings, [unchanged('v3')]);
    assert.equal(results[0]!.activated, undefined);
    assert.equal(results[0]!.followUps, undefined);
  }));

test('a damaged or foreign file is ignored with a warning; the service goes on without it', async () => {
  for (const content of ['{"truncated', '[1,2]', '{"k":{"version":5}}', 'null']) {
    await withFile(async (path, warnings) => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content);
      const results = await workerCycle(path, warnings, [unchanged()]);
      assert.equal(results[0]!.activated, undefined, content);
      if (content === '{"truncated') assert.match(warnings.join(' '), /cannot read .*consumers\.json/);
    });
  }
});
