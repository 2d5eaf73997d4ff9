/**
 * A full disk under the status and log folders (issue 13, item 5). The agent's status folder and the extension's
 * log folder (with its events folder) are each a small tmpfs mounted by the test (root here and in CI), filled to
 * ENOSPC while the real service runs. A certificate rotated in the vault meanwhile is still installed (the store
 * is elsewhere), the same worker process keeps running the whole time (no crash, no restart), and once space is
 * freed the status catches up with the new version and says when and why it could not be written; the log
 * resumes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCa, issueCertificate, toPemSecret } from '../../handler/devvault/certFactory.js';
import { startDevVault } from '../../handler/devvault/server.js';
import { packageRoot } from '../../handler/paths.js';
import { readPidFile } from '../../handler/service/pidfile.js';
import { makeAgentLayout, type AgentLayout } from '../helpers/agentFolder.js';
import { childProcessEnv } from '../helpers/devVault.js';
import { faultWorkDir, registerSecrets } from '../helpers/faults.js';
import { pidAlive, serviceProcesses } from '../helpers/serviceProcesses.js';

const run = promisify(execFile);
const CLI = join(packageRoot(), 'lib', 'handler', 'cli.js');

async function until<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 90_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${limitMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Fills a file system to ENOSPC; returns the big filler's path (the small ones stay: freeing one is enough). */
function fill(dir: string): string {
  const file = join(dir, 'filler');
  try {
    execFileSync('sh', ['-c', 'cat /dev/zero > "$1"', 'fill', file], { stdio: 'ignore' });
  } catch {
    // cat stops with ENOSPC: that is the point
  }
  // Top up the last partial block so even a one-byte write fails.
  for (let i = 0; i < 64; i++) {
    try {
      writeFileSync(join(dir, `filler-${i}`), 'x');
    } catch {
      break;
    }
  }
  return file;
}

async function statusOf(layout: AgentLayout): Promise<{ status: string; message: string; sub: string } | undefined> {
  const view = await layout.readStatus(0);
  if (view.state !== 'valid') return undefined;
  const s = (view.document as Array<{ status: { status: string; formattedMessage: { message: string }; substatus?: Array<{ formattedMessage: { message: string } }> } }>)[0]!
    .status;
  return { status: s.status, message: s.formattedMessage.message, sub: (s.substatus ?? []).map((x) => x.formattedMessage.message).join(' ') };
}

test('ENOSPC on the status and log folders: the service keeps syncing, never exits, and the status catches up once space is freed', { timeout: 300_000 }, async () => {
  const work = await faultWorkDir('diskfull');
  const vault = await startDevVault();
  const layout = makeAgentLayout(join(work, 'agent'));
  const mounts = [layout.statusFolder, layout.logFolder];
  for (const m of mounts) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0755', 'kvvm-diskfull', m], { stdio: 'pipe' });
    } catch (err) {
      assert.fail(`this test mounts a small tmpfs and needs root with CAP_SYS_ADMIN (it has it here and in CI): ${(err as Error).message}`);
    }
  }
  mkdirSync(layout.eventsFolder, { recursive: true });
  const env = childProcessEnv(vault, { ...layout.env(0), KVVM_NO_JITTER: '1', KVVM_DEV_POLL_INTERVAL_S: '1' });
  const store = join(work, 'store');
  try {
    const ca = createCa('diskfull root');
    const rotate = (): string => {
      const leaf = issueCertificate({ issuer: ca, subjectCn: 'full.test', serverAuth: false });
      const pem = toPemSecret(leaf.keyPem, [leaf.certPem, ca.certPem]);
      registerSecrets('diskfull', { secrets: [leaf.keyPem, pem] });
      return vault.setSecret('full', pem, { contentType: 'application/x-pem-file' });
    };
    const v1 = rotate();
    layout.writeSettings(0, {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: [{ url: `${vault.vaultUrl}/secrets/full`, certificateStoreLocation: store }],
      },
      authenticationSettings: { msiEndpoint: vault.imdsEndpoint },
    });
    await run(process.execPath, [CLI, 'enable'], { cwd: layout.extensionFolder, env });
    await until('status success with the first version', async () => {
      const s = await statusOf(layout);
      return s?.status === 'success' && s.sub.includes(v1) ? s : undefined;
    });
    const worker = (await readPidFile(join(layout.extensionFolder, 'kvvm-service.pid')))?.pid;
    assert.ok(worker !== undefined && pidAlive(worker));
    const procsBefore = serviceProcesses(layout.extensionFolder);

    const fillers = mounts.map(fill);
    const frozen = await readFile(join(layout.statusFolder, '0.status'), 'utf8');
    const v2 = rotate();
    // The store is on another file system: syncing goes on while neither status nor log can be written.
    await until('the rotated version installed while the disk is full', async () => ((await readlink(join(store, 'kvvm.full'))).includes(v2) ? true : undefined));
    await sleep(3000); // several polls and status retries against the full disk
    assert.equal(await readFile(join(layout.statusFolder, '0.status'), 'utf8'), frozen, 'the status could not be written (the disk really is full)');
    assert.ok(pidAlive(worker), 'the worker is alive while the disk is full');

    for (const f of fillers) await rm(f, { force: true });
    const caught = await until('the status to catch up', async () => {
      const s = await statusOf(layout);
      return s?.sub.includes(v2) && /could not be written/.test(s.message) ? s : undefined;
    });
    assert.equal(caught.status, 'success', caught.message);
    assert.match(caught.message, /no space left on device|ENOSPC/i);
    assert.match(caught.message, /The service kept syncing/);
    // The same processes throughout: no exit, no restart.
    assert.deepEqual(serviceProcesses(layout.extensionFolder), procsBefore);
    assert.equal((await readPidFile(join(layout.extensionFolder, 'kvvm-service.pid')))?.pid, worker);
    // The log resumes: the line saying the status is written again reaches the log file.
    await until('the log to resume', async () =>
      (await readFile(join(layout.logFolder, 'kvvm-service.log'), 'utf8')).includes('the status file is written again') ? true : undefined,
    );
  } finally {
    await run(process.execPath, [CLI, 'disable'], { cwd: layout.extensionFolder, env }).catch(() => undefined);
    registerSecrets('diskfull', { tokens: vault.issuedTokens() });
    await vault.close();
    // Keep what the service wrote there for the suite's secret scan, which reads the work folder afterwards.
    for (const m of mounts.reverse()) {
      execFileSync('sh', ['-c', 'mkdir -p "$2" && cp -a "$1/." "$2/" && rm -f "$2"/filler*', 'keep', m, `${m}.on-tmpfs`], { stdio: 'ignore' });
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    }
  }
});
