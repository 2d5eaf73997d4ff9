/**
 * Concurrent agent commands (issue 13, item 4): two `enable`s with different sequence numbers started at the same
 * moment, in a random order, over and over, as real processes against the dev vault. After every round exactly
 * one supervisor and one worker run (found in /proc, not through kvvm's pid files), kvvm-service.pid names that
 * worker, and mrseq holds the highest sequence number seen so far (it never moves back). An enable for an older
 * sequence number mixed in changes nothing. A disable at the end leaves no process, and says "stopped" only then.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCa, issueCertificate, toPemSecret } from '../../handler/devvault/certFactory.js';
import { startDevVault } from '../../handler/devvault/server.js';
import { packageRoot } from '../../handler/paths.js';
import { makeAgentLayout, type AgentLayout } from '../helpers/agentFolder.js';
import { childProcessEnv } from '../helpers/devVault.js';
import { faultWorkDir, registerSecrets, seededRandom, seedFromEnv } from '../helpers/faults.js';
import { recordedWorker, serviceProcesses } from '../helpers/serviceProcesses.js';

const run = promisify(execFile);
const CLI = join(packageRoot(), 'lib', 'handler', 'cli.js');
const ROUNDS = Number(process.env['KVVM_CONCURRENT_ROUNDS'] ?? 20);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function agent(layout: AgentLayout, env: Record<string, string | undefined>, seq: number, command: string): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, command], { cwd: layout.extensionFolder, env: { ...env, ...layout.env(seq) } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test(`concurrent enables with different sequence numbers leave exactly one service and mrseq never moves back (${ROUNDS} rounds)`, { timeout: 600_000 }, async () => {
  const seed = seedFromEnv('KVVM_CONCURRENT_SEED');
  console.log(`concurrent enable seed: ${seed} (replay with KVVM_CONCURRENT_SEED=${seed})`);
  const random = seededRandom(seed);
  const work = await faultWorkDir('concurrent');
  const vault = await startDevVault();
  const layout = makeAgentLayout(join(work, 'agent'));
  // The worker stays resident after its cycle (KVVM_DEV_REST_MIN_S above the interval), so each round can check it.
  const env = childProcessEnv(vault, { KVVM_NO_JITTER: '1', KVVM_DEV_REST_MIN_S: '86400' });
  try {
    const ca = createCa('concurrent root');
    const leaf = issueCertificate({ issuer: ca, subjectCn: 'one.test', serverAuth: false });
    const pem = toPemSecret(leaf.keyPem, [leaf.certPem, ca.certPem]);
    registerSecrets('concurrent', { secrets: [leaf.keyPem, pem] });
    vault.setSecret('one', pem, { contentType: 'application/x-pem-file' });
    const settings = {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: [{ url: `${vault.vaultUrl}/secrets/one`, certificateStoreLocation: join(work, 'store') }],
      },
      authenticationSettings: { msiEndpoint: vault.imdsEndpoint },
    };
    let highest = -1;
    let olderMixedIn = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const seqs = [2 * round + 1, 2 * round + 2];
      for (const s of seqs) layout.writeSettings(s, settings);
      // Random start order; every third round an enable for an already superseded number races along.
      const order = random() < 0.5 ? seqs : [...seqs].reverse();
      if (round > 0 && round % 3 === 0) {
        order.splice(Math.floor(random() * 3), 0, 2 * round - 1);
        olderMixedIn += 1;
      }
      const outcomes = await Promise.all(order.map((s) => agent(layout, env, s, 'enable')));
      for (const o of outcomes) assert.equal(o.code, 0, o.stderr);
      highest = Math.max(highest, ...seqs);

      const mrseq = Number((await readFile(join(layout.extensionFolder, 'mrseq'), 'utf8')).trim());
      assert.equal(mrseq, highest, `round ${round}: mrseq ${mrseq} after enables of ${order.join(', ')}`);
      // The enables returned once the last one's supervisor held the service lock; its worker records itself as it starts.
      const worker = await recordedWorker(layout.extensionFolder);
      const procs = serviceProcesses(layout.extensionFolder);
      assert.equal(procs.supervisors.length, 1, `round ${round}: supervisors ${procs.supervisors.join(', ')}`);
      assert.deepEqual(procs.workers, [worker], `round ${round}: one worker, the one kvvm-service.pid names (workers ${procs.workers.join(', ')})`);
      const workerEnv = await readFile(`/proc/${worker}/environ`, 'utf8');
      assert.ok(workerEnv.split('\0').includes(`ConfigSequenceNumber=${highest}`), `round ${round}: the worker runs the newest sequence number`);
    }

    const disable = await agent(layout, env, highest, 'disable');
    assert.equal(disable.code, 0, disable.stderr);
    assert.match(disable.stdout, /service (stopped|killed)/);
    // disable has returned: no process may be left (zombies awaiting their reaper excepted, they have exited).
    assert.deepEqual(serviceProcesses(layout.extensionFolder), { supervisors: [], workers: [] });
    const again = await agent(layout, env, highest, 'disable');
    assert.match(again.stdout, /was not running/);
    console.log(`concurrent enable: ${ROUNDS} rounds, ${ROUNDS * 2 + olderMixedIn} enables (${olderMixedIn} for an older sequence number), one service after each round`);
  } finally {
    await agent(layout, env, 0, 'disable').catch(() => undefined);
    registerSecrets('concurrent', { tokens: vault.issuedTokens() });
    await vault.close();
  }
});
