/**
 * The service survives its own crash (issue 9, item 4), driven as the agent drives it: `enable` in an agent-like
 * folder starts the supervised service against the dev vault over HTTPS, then the test kills the process named
 * in kvvm-service.pid with SIGKILL and never calls the handler again.
 *  - a certificate rotated in the vault during the outage is installed by the restarted worker, within the
 *    2 minutes the issue allows (the polling interval is an hour, so only the restart can install it);
 *  - five crashes inside the window turn the status to `error` with the crash reason, and the supervisor keeps
 *    retrying (slowly): the next start turns the status back to success;
 *  - a worker killed while the onChange command of a new version runs: the restarted worker runs it again for that
 *    version (the change was recorded as pending in the state folder), so the server is reloaded after all;
 *  - a worker that cannot start at all (a damaged install) is reported the same way: enable returns once the
 *    supervisor holds the service lock, without waiting for the worker, so the supervisor's crash loop is what
 *    puts the failure in the status file.
 * The supervisor's resident memory is printed: it is a shell, not a second Node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, cp, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCa, issueCertificate, toPemSecret } from '../handler/devvault/certFactory.js';
import { startDevVault, type DevVault } from '../handler/devvault/server.js';
import { packageRoot } from '../handler/paths.js';
import { readPidFile } from '../handler/service/pidfile.js';
import { makeAgentLayout, type AgentLayout } from './helpers/agentFolder.js';
import { childProcessEnv } from './helpers/devVault.js';
import { pidAlive, serviceProcesses } from './helpers/serviceProcesses.js';

const run = promisify(execFile);
const CLI = join(packageRoot(), 'lib', 'handler', 'cli.js');

async function agent(layout: AgentLayout, env: Record<string, string | undefined>, seq: number, command: string): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, command], { cwd: layout.extensionFolder, env: { ...env, ...layout.env(seq) } });
  return stdout;
}

/** Polls until `probe` returns a value (a liveness deadline, not a timing assertion). */
async function until<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 120_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${limitMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function statusOf(layout: AgentLayout, seq: number): Promise<{ status: string; message: string } | undefined> {
  const view = await layout.readStatus(seq);
  if (view.state !== 'valid') return undefined;
  const s = (view.document as Array<{ status: { status: string; formattedMessage: { message: string } } }>)[0]!.status;
  return { status: s.status, message: s.formattedMessage.message };
}

/** The live worker named by kvvm-service.pid, when it is not `other`. */
async function workerOtherThan(layout: AgentLayout, other: number | undefined): Promise<number | undefined> {
  const record = await readPidFile(join(layout.extensionFolder, 'kvvm-service.pid'));
  if (!record || record.pid === other || !pidAlive(record.pid)) return undefined;
  return serviceProcesses(layout.extensionFolder).workers.includes(record.pid) ? record.pid : undefined;
}

function rssKiB(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmRSS:\s+(\d+)/.exec(s)?.[1]));
}

async function setup(
  label: string,
  extraEnv: Record<string, string>,
  onChange?: { command: string[] },
): Promise<{ root: string; vault: DevVault; layout: AgentLayout; env: Record<string, string | undefined>; store: string; rotate: () => string }> {
  const root = await mkdtemp(join(tmpdir(), `kvvm-restart-${label}-`));
  const vault = await startDevVault();
  const layout = makeAgentLayout(join(root, 'agent'));
  const store = join(root, 'store');
  const ca = createCa(`${label} root`);
  const rotate = (): string => {
    const leaf = issueCertificate({ issuer: ca, subjectCn: 'web.test', serverAuth: false });
    return vault.setSecret('web', toPemSecret(leaf.keyPem, [leaf.certPem, ca.certPem]), { contentType: 'application/x-pem-file' });
  };
  layout.writeSettings(0, {
    secretsManagementSettings: {
      pollingIntervalInS: '3600',
      requireInitialSync: true,
      observedCertificates: [{ url: `${vault.vaultUrl}/secrets/web`, certificateStoreLocation: store, ...(onChange ? { onChange } : {}) }],
    },
    authenticationSettings: { msiEndpoint: vault.imdsEndpoint },
  });
  // KVVM_DEV_REST_MIN_S above the interval: the worker stays resident after its cycle, so these tests can kill it
  // whenever they look (a resting worker exits after each cycle: serviceRest.test.ts).
  return { root, vault, layout, env: childProcessEnv(vault, { KVVM_NO_JITTER: '1', KVVM_DEV_REST_MIN_S: '86400', ...extraEnv }), store, rotate };
}

test('kill -9 of the process in kvvm-service.pid: a certificate rotated during the outage is installed without the agent calling anything', { timeout: 240_000 }, async () => {
  const { root, vault, layout, env, store, rotate } = await setup('kill', {});
  try {
    const v1 = rotate();
    await agent(layout, env, 0, 'enable');
    await until('the first version installed', async () => ((await readlink(join(store, 'kvvm.web'))).includes(v1) ? true : undefined));
    const worker1 = await until('the worker recorded in kvvm-service.pid', () => workerOtherThan(layout, undefined));
    const [supervisor] = serviceProcesses(layout.extensionFolder).supervisors;
    assert.ok(supervisor !== undefined);

    const killedAt = performance.now();
    process.kill(worker1, 'SIGKILL');
    const v2 = rotate(); // rotated in the vault while the service is down
    await until('the rotated version installed', async () => ((await readlink(join(store, 'kvvm.web'))).includes(v2) ? true : undefined), 120_000);
    const latencyMs = Math.round(performance.now() - killedAt);
    const worker2 = await until('kvvm-service.pid naming the new worker', () => workerOtherThan(layout, worker1));
    assert.notEqual(worker2, worker1);
    assert.deepEqual(serviceProcesses(layout.extensionFolder), { supervisors: [supervisor], workers: [worker2] }, 'the same supervisor, one new worker');
    const status = await until('a success status', async () => ((await statusOf(layout, 0))?.status === 'success' ? statusOf(layout, 0) : undefined));
    assert.match(status.message, /1 of 1 certificates in place/);
    console.log(
      `restart after kill -9: rotated certificate installed ${latencyMs} ms after the kill; supervisor RSS ${await rssKiB(supervisor)} KiB, worker RSS ${await rssKiB(worker2)} KiB`,
    );
  } finally {
    await agent(layout, env, 0, 'disable').catch(() => undefined);
    await vault.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('five crashes in the window: the status says error with the crash reason, and the supervisor keeps retrying slowly', { timeout: 240_000 }, async () => {
  // Restarts after 100, 200, 400, 800 ms; the crash-loop retry after 2 s (KVVM_RESTART_BASE_MS scales the policy).
  const { root, vault, layout, env, store, rotate } = await setup('loop', { KVVM_RESTART_BASE_MS: '100' });
  try {
    const v1 = rotate();
    await agent(layout, env, 0, 'enable');
    await until('the first version installed', async () => ((await readlink(join(store, 'kvvm.web'))).includes(v1) ? true : undefined));
    let previous: number | undefined;
    for (let crash = 1; crash <= 5; crash++) {
      const worker = await until(`worker ${crash}`, () => workerOtherThan(layout, previous));
      process.kill(worker, 'SIGKILL');
      previous = worker;
    }
    const crashed = await until('the crash-loop status', async () => {
      const s = await statusOf(layout, 0);
      return s?.status === 'error' ? s : undefined;
    });
    assert.match(crashed.message, /crashed 5 times in 10 minutes/);
    assert.match(crashed.message, /last crash: killed by signal KILL/);
    assert.match(crashed.message, /Fix: read .*kvvm-service\.out/);
    // Still supervised: the slow retry starts a worker again, which reports success again.
    const after = await until('a worker after the slow retry', () => workerOtherThan(layout, previous));
    assert.ok(after > 0);
    const recovered = await until('the status back to success', async () => ((await statusOf(layout, 0))?.status === 'success' ? statusOf(layout, 0) : undefined));
    assert.match(recovered.message, /1 of 1 certificates in place/);
  } finally {
    await agent(layout, env, 0, 'disable').catch(() => undefined);
    await vault.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('kill -9 while the onChange command of a new version runs: the restarted worker runs it again for that version', { timeout: 240_000 }, async () => {
  // The command records each run (the version it was given) and, the first time, hangs until the test kills the worker.
  const work = await mkdtemp(join(tmpdir(), 'kvvm-restart-onchange-'));
  const runs = join(work, 'runs');
  const sleeper = join(work, 'sleeper.pid');
  const script = join(work, 'reload.sh');
  await writeFile(runs, '');
  await writeFile(
    script,
    `echo "$KVVM_VERSION previous=$KVVM_PREVIOUS_VERSION" >> '${runs}'\n[ "$(wc -l < '${runs}')" -ge 2 ] && exit 0\necho $$ > '${sleeper}'\nexec sleep 120\n`,
  );
  const { root, vault, layout, env, rotate } = await setup('onchange', { KVVM_RESTART_BASE_MS: '100' }, { command: ['/bin/sh', script] });
  try {
    const v1 = rotate();
    await agent(layout, env, 0, 'enable');
    await until('the first onChange run', async () => ((await readFile(runs, 'utf8')).includes(v1) ? true : undefined));
    const worker1 = await until('the worker recorded in kvvm-service.pid', () => workerOtherThan(layout, undefined));
    process.kill(worker1, 'SIGKILL');
    // Only the command's second run can end this wait: the certificate is installed and unchanged in the vault.
    const second = await until('the onChange command run again by the restarted worker', async () => {
      const lines = (await readFile(runs, 'utf8')).split('\n').filter((l) => l !== '');
      return lines.length >= 2 ? lines : undefined;
    });
    assert.deepEqual(second, [`${v1} previous=`, `${v1} previous=`], 'the same change both times (a first install: no previous version)');
    const status = await until('a success status naming the reload', async () => {
      const s = await statusOf(layout, 0);
      const view = await layout.readStatus(0);
      const document = view.state === 'valid' ? JSON.stringify(view.document) : '';
      return s?.status === 'success' && document.includes('onChange command /bin/sh succeeded') ? s : undefined;
    });
    assert.match(status.message, /1 of 1 certificates in place/);
  } finally {
    await agent(layout, env, 0, 'disable').catch(() => undefined);
    const pid = Number(await readFile(sleeper, 'utf8').catch(() => ''));
    if (pid > 1) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone with the service's process group
      }
    }
    await vault.close();
    await rm(root, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
});

/**
 * A copy of this checkout's CLI whose service module cannot be loaded, as in a damaged install: enable, disable and
 * `service-crashed` run, the worker fails as it starts (kvvm service: exit code 1 with the load error).
 */
async function damagedCli(root: string): Promise<string> {
  const pkg = join(root, 'damaged-package');
  await cp(join(packageRoot(), 'lib', 'handler'), join(pkg, 'lib', 'handler'), { recursive: true });
  await copyFile(join(packageRoot(), 'package.json'), join(pkg, 'package.json'));
  await symlink(join(packageRoot(), 'node_modules'), join(pkg, 'node_modules'));
  await symlink(join(packageRoot(), 'schemas'), join(pkg, 'schemas'));
  await writeFile(join(pkg, 'lib', 'handler', 'commands', 'service.js'), "throw new Error('kvvm test: the service module is damaged');\n");
  return join(pkg, 'lib', 'handler', 'cli.js');
}

test('a worker that cannot start: enable returns without waiting for it, and the crash loop reports it in the status', { timeout: 240_000 }, async () => {
  // Restarts after 50, 100, 200, 400 ms (KVVM_RESTART_BASE_MS scales the policy); the fifth crash is the loop.
  const { root, vault, layout, env } = await setup('damaged', { KVVM_RESTART_BASE_MS: '50' });
  const cli = await damagedCli(root);
  const command = (name: string) => run(process.execPath, [cli, name], { cwd: layout.extensionFolder, env: { ...env, ...layout.env(0) } });
  try {
    const enable = await command('enable');
    assert.match(enable.stdout, /sequence 0 applied; service started \(pid \d+\)/);
    // Returned before any worker could report: the status is still the one enable wrote.
    assert.equal((await statusOf(layout, 0))?.status, 'transitioning');
    assert.equal(serviceProcesses(layout.extensionFolder).supervisors.length, 1);
    const crashed = await until('the crash-loop status', async () => {
      const s = await statusOf(layout, 0);
      return s?.status === 'error' ? s : undefined;
    });
    assert.match(crashed.message, /crashed 5 times in 10 minutes/);
    assert.match(crashed.message, /last crash: exit code 1: kvvm service: .*the service module is damaged/);
    assert.equal(serviceProcesses(layout.extensionFolder).supervisors.length, 1, 'still supervised, retrying slowly');
  } finally {
    await command('disable').catch(() => undefined);
    await vault.close();
    await rm(root, { recursive: true, force: true });
  }
  assert.deepEqual(serviceProcesses(layout.extensionFolder), { supervisors: [], workers: [] });
});
