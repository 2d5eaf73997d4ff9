/**
 * What `start` of the detached service (posixService.ts) promises, with the real /bin/sh supervisor (restartLoop.ts)
 * and the real flock: it resolves once the supervisor holds the service lock (it says so on a pipe), without
 * waiting for the worker's Node start, and it fails with a service-start error when the supervisor exits before it
 * holds the lock. `replace` (enable) relies on that instead of checking the lock itself first: a leftover holding
 * the lock is found only when the supervisor could not take it, then killed, and the start repeated. The worker here is a stand-in node process that records when it runs and then waits: the
 * supervisor's handshake is what is under test (lifecycle.test.ts and serviceRestart.test.ts run the real worker).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { KvvmError } from '../handler/errors.js';
import { tryAcquireLock } from '../handler/service/fileLock.js';
import { readPidFile } from '../handler/service/pidfile.js';
import { detachedExtensionService } from '../handler/service/posixService.js';
import { restartPolicyFor } from '../handler/service/restartLoop.js';
import type { ExtensionServiceFiles } from '../handler/service/supervisor.js';

const root = mkdtempSync(join(tmpdir(), 'kvvm-service-start-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Stands in for `node cli.js` (the loop appends `service`): records its pid, then waits for the test to let it go. */
const WORKER = `
  const fs = require('node:fs');
  fs.writeFileSync(process.env.WORKER_RAN, String(process.pid));
  const wait = setInterval(() => { if (fs.existsSync(process.env.WORKER_GO)) { clearInterval(wait); setInterval(() => {}, 1000); } }, 20);
  process.on('SIGTERM', () => process.exit(0));`;

let n = 0;
/** A fresh extension folder with the stand-in worker, the detached service for it, and the launch that runs it. */
async function standInService() {
  const dir = join(root, `ext-${n++}`);
  const files: ExtensionServiceFiles = {
    extensionFolder: dir,
    pidFile: join(dir, 'kvvm-service.pid'),
    supervisorPidFile: join(dir, 'kvvm-supervisor.pid'),
    serviceLock: join(dir, 'kvvm-service.lock'),
    commandLock: join(dir, 'kvvm-command.lock'),
    serviceOutput: join(dir, 'kvvm-service.out'),
  };
  await mkdir(dir, { recursive: true });
  const workerRan = join(dir, 'worker-ran');
  const workerGo = join(dir, 'worker-go');
  const scriptFile = join(dir, 'worker.cjs');
  writeFileSync(scriptFile, WORKER);
  const launch = { kvvmCommand: [process.execPath, scriptFile], env: { WORKER_RAN: workerRan, WORKER_GO: workerGo }, cwd: dir, version: '' };
  return { files, workerRan, workerGo, service: detachedExtensionService(files, restartPolicyFor(undefined)), launch };
}

async function waitFor(what: string, predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(20);
  }
}

test('start resolves once the supervisor holds the service lock, and names the supervisor', async () => {
  const { files, workerRan, workerGo, service, launch } = await standInService();
  try {
    const { pid } = await service.start(launch);
    // The lock is held by the time start resolves: nobody else can take it, not even for an instant.
    assert.equal(await tryAcquireLock(files.serviceLock, { waitMs: 0, purpose: 'test' }), undefined, 'the service lock is held');
    assert.equal((await readPidFile(files.supervisorPidFile))?.pid, pid, 'start names the supervisor');
    assert.deepEqual(await service.isRunning(), { running: true, pid });
    // The worker runs under that supervisor (it was not waited for; it may have started by now).
    await waitFor('the worker to start', () => existsSync(workerRan));
    writeFileSync(workerGo, '');
    assert.ok(!readFileSync(files.serviceOutput, 'utf8').includes('another service holds'));
  } finally {
    await service.stop(10_000);
  }
  assert.deepEqual(await service.isRunning(), { running: false });
  const free = await tryAcquireLock(files.serviceLock, { waitMs: 0, purpose: 'test' });
  assert.ok(free, 'stop leaves the lock free');
  await free.release();
});

test('a supervisor that cannot take the service lock makes start fail with service-start, and starts no worker', async () => {
  const { files, workerRan, service, launch } = await standInService();
  // Another "service" holds the lock: this test process.
  const held = await tryAcquireLock(files.serviceLock, { waitMs: 0, purpose: 'test' });
  assert.ok(held);
  try {
    await assert.rejects(
      service.start(launch),
      (err: unknown) => err instanceof KvvmError && err.reason === 'service-start' && err.fix !== undefined && err.fix.includes(files.serviceOutput),
    );
    assert.match(readFileSync(files.serviceOutput, 'utf8'), /another service holds/);
    assert.deepEqual(await service.isRunning(), { running: false });
    assert.equal(existsSync(workerRan), false, 'no worker was started');
  } finally {
    await held.release();
  }
});

test('replace (enable): a process holding the service lock that no record names is killed, and the service starts', async () => {
  const { files, workerGo, service, launch } = await standInService();
  // A leftover holding the lock (an older kvvm's supervisor, or one whose record was lost): util-linux flock
  // running sleep while it holds the lock.
  const flock = ['/usr/bin/flock', '/bin/flock'].find((p) => existsSync(p)) ?? 'flock';
  const rogue = spawn(flock, ['-x', files.serviceLock, 'sleep', '300'], { stdio: 'ignore', detached: true });
  const rogueGone = new Promise((resolve) => rogue.once('exit', resolve));
  try {
    await waitFor('the leftover to hold the lock', () => existsSync(files.serviceLock));
    for (const deadline = Date.now() + 15_000; ;) {
      const probe = await tryAcquireLock(files.serviceLock, { waitMs: 0, purpose: 'test' });
      if (!probe) break;
      await probe.release();
      assert.ok(Date.now() < deadline, 'the leftover never took the lock');
      await delay(20);
    }
    let afterStopRan = false;
    const { pid } = await service.replace(launch, 10_000, async () => {
      afterStopRan = true;
    });
    assert.ok(afterStopRan);
    await rogueGone;
    assert.equal(rogue.signalCode, 'SIGKILL', 'the leftover was killed');
    assert.deepEqual(await service.isRunning(), { running: true, pid });
    assert.equal(await tryAcquireLock(files.serviceLock, { waitMs: 0, purpose: 'test' }), undefined, 'the new supervisor holds the lock');
    writeFileSync(workerGo, '');
  } finally {
    await service.stop(10_000);
    try {
      process.kill(-rogue.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});
