/**
 * What `start` of the detached service (posixService.ts) promises, with the real /bin/sh supervisor (restartLoop.ts)
 * and the real flock: it resolves once the supervisor holds the service lock (it says so on a pipe), without
 * waiting for the worker's Node start, and it fails with a service-start error when the supervisor exits before it
 * holds the lock. The worker here is a stand-in node process that records when it runs and then waits: the
 * supervisor's handshake is what is under test (lifecycle.test.ts and serviceRestart.test.ts run the real worker).
 */
import assert from 'node:assert/strict';
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
function serviceFiles(): { files: ExtensionServiceFiles; workerRan: string; workerGo: string } {
  const dir = join(root, `ext-${n++}`);
  return {
    files: {
      extensionFolder: dir,
      pidFile: join(dir, 'kvvm-service.pid'),
      supervisorPidFile: join(dir, 'kvvm-supervisor.pid'),
      serviceLock: join(dir, 'kvvm-service.lock'),
      commandLock: join(dir, 'kvvm-command.lock'),
      serviceOutput: join(dir, 'kvvm-service.out'),
    },
    workerRan: join(dir, 'worker-ran'),
    workerGo: join(dir, 'worker-go'),
  };
}

async function mkdirFor(files: ExtensionServiceFiles): Promise<void> {
  await mkdir(files.extensionFolder, { recursive: true });
}

async function waitFor(what: string, predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(20);
  }
}

test('start resolves once the supervisor holds the service lock, and names the supervisor', async () => {
  const { files, workerRan, workerGo } = serviceFiles();
  await mkdirFor(files);
  const service = detachedExtensionService(files, restartPolicyFor(undefined));
  const scriptFile = join(files.extensionFolder, 'worker.cjs');
  writeFileSync(scriptFile, WORKER);
  try {
    const { pid } = await service.start({
      kvvmCommand: [process.execPath, scriptFile],
      env: { WORKER_RAN: workerRan, WORKER_GO: workerGo },
      cwd: files.extensionFolder,
      version: '',
    });
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
  const { files, workerRan, workerGo } = serviceFiles();
  await mkdirFor(files);
  const service = detachedExtensionService(files, restartPolicyFor(undefined));
  const scriptFile = join(files.extensionFolder, 'worker.cjs');
  writeFileSync(scriptFile, WORKER);
  // Another "service" holds the lock: this test process.
  const held = await tryAcquireLock(files.serviceLock, { waitMs: 0, purpose: 'test' });
  assert.ok(held);
  try {
    await assert.rejects(
      service.start({ kvvmCommand: [process.execPath, scriptFile], env: { WORKER_RAN: workerRan, WORKER_GO: workerGo }, cwd: files.extensionFolder, version: '' }),
      (err: unknown) => err instanceof KvvmError && err.reason === 'service-start' && err.fix !== undefined && err.fix.includes(files.serviceOutput),
    );
    assert.match(readFileSync(files.serviceOutput, 'utf8'), /another service holds/);
    assert.deepEqual(await service.isRunning(), { running: false });
    assert.equal(existsSync(workerRan), false, 'no worker was started');
  } finally {
    await held.release();
  }
});
