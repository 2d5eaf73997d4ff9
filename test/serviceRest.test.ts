/**
 * The POSIX service at rest (issue 12): between cycles no Node process is left; the worker saves what the next
 * cycle needs, writes the wake record and exits, and its supervisor (the sh loop, restartLoop.ts) sleeps and starts
 * the next worker at the recorded time. Real processes throughout: the agent's commands, the detached supervisor,
 * the worker against the dev vault over HTTPS. The poll interval and the shortest rest are development overrides
 * (KVVM_DEV_POLL_INTERVAL_S, KVVM_DEV_REST_MIN_S) so the test sees several wakes; operators get 300-3600 s and 60 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentCommand, finalStatus } from './helpers/agentCommands.js';
import { AGENT_SERVICE_CLIENT_ID, withAgentService, type AgentService } from './helpers/agentService.js';
import { createCa, issueCertificate, toPemSecret } from '../handler/devvault/certFactory.js';
import { readPidFile } from '../handler/service/pidfile.js';
import { pidAlive, serviceProcesses } from './helpers/serviceProcesses.js';

/** More versions than one page of the vault's versions listing (25): without the saved poll memory each cycle costs 2 requests. */
const VERSIONS = 30;

interface WakeRecord {
  delayMs: number;
  at: Date;
  /** When the file was written (its mtime): tells one rest from the next. */
  writtenMs: number;
}

async function readWake(extensionFolder: string): Promise<WakeRecord | undefined> {
  const file = join(extensionFolder, 'kvvm-service.wake');
  try {
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    const [delay, at] = text.trim().split(' ');
    return { delayMs: Number(delay), at: new Date(at ?? ''), writtenMs: st.mtimeMs };
  } catch {
    return undefined;
  }
}

/** Waits (a liveness deadline, not a timing assertion) until the service rests after `after`: a new wake record and no worker. */
async function nextRest(extensionFolder: string, after: WakeRecord | undefined, limitMs = 60_000): Promise<WakeRecord> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const wake = await readWake(extensionFolder);
    if (wake && (after === undefined || wake.writtenMs !== after.writtenMs) && serviceProcesses(extensionFolder).workers.length === 0) return wake;
    if (Date.now() > deadline) throw new Error(`the service did not rest again within ${limitMs} ms`);
    await sleep(20);
  }
}

/** Every process whose session is the supervisor's (the supervisor called setsid): the shell, its sleep, a worker. */
function sessionOf(supervisor: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[3]) === supervisor) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function enableOne(s: AgentService, env: Record<string, string>, pollS: number): Promise<{ version: string }> {
  const ca = createCa('rest root');
  const leaf = issueCertificate({ issuer: ca, subjectCn: 'rested.test', serverAuth: false });
  const pem = toPemSecret(leaf.keyPem, [leaf.certPem, ca.certPem]);
  let version = '';
  for (let i = 0; i < VERSIONS; i += 1) version = s.vault.setSecret('rested', pem, { contentType: 'application/x-pem-file' });
  s.layout.writeSettings(
    0,
    {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        requireInitialSync: true,
        observedCertificates: [{ url: `${s.vault.vaultUrl}/secrets/rested`, certificateStoreLocation: join(s.root, 'store') }],
      },
    },
    { authenticationSettings: { msiEndpoint: s.vault.imdsEndpoint, msiClientId: AGENT_SERVICE_CLIENT_ID } },
  );
  const full = { ...s.env, ...env, KVVM_DEV_POLL_INTERVAL_S: String(pollS), KVVM_DEV_REST_MIN_S: '1' };
  assert.equal((await agentCommand(s.layout, 0, 'install', full)).code, 0);
  const enable = await agentCommand(s.layout, 0, 'enable', full);
  assert.equal(enable.code, 0, enable.stderr);
  return { version };
}

test('between cycles no worker runs; the supervisor starts the next at the recorded time, which goes on from the saved poll memory and status', { timeout: 180_000 }, () =>
  withAgentService('rest', async (s) => {
    const ext = s.layout.extensionFolder;
    // Every status the service writes, as it lands (each write is a rename into the status folder).
    const seen: string[] = [];
    const watcher = watch(s.layout.statusFolder, () => {
      void s.layout.readStatus(0).then((view) => {
        if (view.state === 'valid') seen.push((view.document as Array<{ status: { status: string } }>)[0]!.status.status);
      });
    });
    try {
      await enableOne(s, {}, 2);
      const first = await finalStatus(s.layout, 0);
      assert.equal(first.status, 'success', first.message);
      let rest = await nextRest(ext, undefined);
      const supervisor = (await readPidFile(join(ext, 'kvvm-supervisor.pid')))?.pid;
      assert.ok(supervisor !== undefined && pidAlive(supervisor));
      const firstWorker = (await readPidFile(join(ext, 'kvvm-service.pid')))?.pid;
      assert.equal(firstWorker, undefined, 'a resting worker removes its record');
      const startsBefore = seen.length;
      const requestsPerCycle: number[] = [];
      const challengesPerCycle: number[] = [];
      const workers = new Set<number>();
      for (let wake = 0; wake < 3; wake += 1) {
        const atRest = { ...s.vault.stats().vault };
        // At rest: the supervisor's session is the shell and its sleep, no Node.
        assert.deepEqual(serviceProcesses(ext).workers, []);
        // (a) The next worker starts at the recorded time, not before: its own record says when it started.
        let record;
        const deadline = Date.now() + 60_000;
        for (;;) {
          record = await readPidFile(join(ext, 'kvvm-service.pid'));
          if (record && !workers.has(record.pid)) break;
          const next = await readWake(ext);
          if (next && next.writtenMs !== rest.writtenMs) break; // a worker that ran and rested between two looks
          if (Date.now() > deadline) throw new Error('no worker started after the rest');
          await sleep(5);
        }
        if (record && !workers.has(record.pid)) {
          workers.add(record.pid);
          assert.ok(new Date(record.startedAt).getTime() >= rest.at.getTime(), `worker started ${record.startedAt}, wake recorded for ${rest.at.toISOString()}`);
        }
        const next = await nextRest(ext, rest);
        // (b) One cycle ran between the two rests; it cost at most one vault request for the unchanged certificate,
        // besides the SDK's unauthenticated first request of each new process (the 401 that names the token's scope).
        const now = s.vault.stats().vault;
        challengesPerCycle.push(now.unauthorized - atRest.unauthorized);
        requestsPerCycle.push(now.requests - atRest.requests - (now.unauthorized - atRest.unauthorized));
        rest = next;
      }
      assert.ok(workers.size >= 2, `new workers seen: ${workers.size}`);
      assert.ok(
        requestsPerCycle.every((n) => n <= 1),
        `authenticated vault requests per cycle after a rest: ${requestsPerCycle.join(', ')} (a listing of ${VERSIONS} versions takes 2)`,
      );
      assert.deepEqual(challengesPerCycle, [1, 1, 1], 'one 401 challenge per new process and vault');
      const log = await readFile(join(s.layout.logFolder, 'kvvm-service.log'), 'utf8');
      assert.ok((log.match(/resting until/g) ?? []).length >= 4, 'the worker logs each rest');
      assert.doesNotMatch(log, /woke without a saved state/);
      // (d) The status written by the woken workers never went back to transitioning.
      await sleep(300); // the watcher's last reads
      const afterWakes = seen.slice(startsBefore);
      assert.ok(afterWakes.length >= 3, `status writes seen after the first rest: ${afterWakes.length}`);
      assert.deepEqual([...new Set(afterWakes)], ['success'], `statuses written across wakes: ${afterWakes.join(', ')}`);
      assert.ok(seen.slice(0, startsBefore).includes('transitioning'), 'the first start did report the initial sync (so the watcher sees writes)');
      assert.equal((await finalStatus(s.layout, 0)).status, 'success');
    } finally {
      watcher.close();
    }
  }),
);

test('disable during the rest stops the supervisor and its sleep at once, leaving no process of the service', { timeout: 120_000 }, () =>
  withAgentService('rest-stop', async (s) => {
    const ext = s.layout.extensionFolder;
    // A 10-minute rest: a stop that waited for it, or needed disable's 30 s SIGKILL, would show in what is left.
    await enableOne(s, {}, 600);
    assert.equal((await finalStatus(s.layout, 0)).status, 'success');
    const rest = await nextRest(ext, undefined);
    assert.ok(rest.delayMs >= 590_000, `delay ${rest.delayMs}`);
    const supervisor = (await readPidFile(join(ext, 'kvvm-supervisor.pid')))?.pid;
    assert.ok(supervisor !== undefined && pidAlive(supervisor));
    // The wake record is written before the worker exits and the shell starts its sleep: wait (a liveness deadline,
    // not a timing assertion) until the rest has begun.
    let session = sessionOf(supervisor);
    for (const deadline = Date.now() + 30_000; session.length !== 2 && Date.now() < deadline; session = sessionOf(supervisor)) await sleep(20);
    assert.equal(session.length, 2, `at rest the service is the shell and its sleep: ${session.join(', ')}`);
    const disable = await agentCommand(s.layout, 0, 'disable', { ...s.env });
    assert.equal(disable.code, 0, disable.stderr);
    assert.deepEqual(
      session.filter((p) => pidAlive(p) && sessionOf(supervisor).includes(p)),
      [],
      'no process of the service is left',
    );
    assert.deepEqual(serviceProcesses(ext), { supervisors: [], workers: [] });
    // The shell ended through its own TERM trap (it says so), not disable's SIGKILL after the grace period.
    const out = await readFile(join(s.layout.logFolder, 'kvvm-service.out'), 'utf8');
    assert.match(out, new RegExp(`kvvm-supervisor ${supervisor}: stopped`));
  }),
);
