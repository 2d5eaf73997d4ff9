/**
 * Damaged handler files: status, mrseq, pid file, settings and HandlerEnvironment.json corrupted or truncated
 * before the agent runs `enable`/`disable` or the service starts. Every command runs as a real process with the
 * agent's environment against the dev vault. Each case either recovers (mrseq → absent, pid file → service not
 * running and restarted, a status file → rewritten) or reports the problem clearly (error status naming the
 * file, or, without a status folder, a message on stderr naming it) — never a stack trace.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCa, issueCertificate, toPemSecret } from '../../handler/devvault/certFactory.js';
import { startDevVault, type DevVault } from '../../handler/devvault/server.js';
import { packageRoot } from '../../handler/paths.js';
import { posixSupervisor } from '../../handler/service/posixSupervisor.js';
import { EXIT_SETTINGS_INVALID } from '../../handler/service/restartLoop.js';
import { makeAgentLayout, type AgentLayout } from '../helpers/agentFolder.js';
import { serviceProcesses } from '../helpers/serviceProcesses.js';
import { childProcessEnv } from '../helpers/devVault.js';
import { faultWorkDir, registerSecrets } from '../helpers/faults.js';

const { isRunning } = posixSupervisor;

const run = promisify(execFile);
const CLI = join(packageRoot(), 'lib', 'handler', 'cli.js');
let vault: DevVault;
let work: string;
const layouts: AgentLayout[] = [];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function command(layout: AgentLayout, seq: number, name: string): Promise<Outcome> {
  // The worker stays resident after its cycle (KVVM_DEV_REST_MIN_S above the interval): the tests check its record.
  const env = childProcessEnv(vault, { ...layout.env(seq), KVVM_NO_JITTER: '1', KVVM_DEV_REST_MIN_S: '86400' }, { PATH: process.env['PATH'] ?? '/usr/bin:/bin' });
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, name], { cwd: layout.extensionFolder, env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function assertNoStackTrace(o: Outcome): void {
  assert.doesNotMatch(o.stderr + o.stdout, /^\s+at .+\(.+:\d+:\d+\)$/m, `stack trace in output:\n${o.stderr}`);
  assert.doesNotMatch(o.stderr, /Uncaught|UnhandledPromiseRejection|TypeError|ReferenceError/);
}

let n = 0;
async function freshLayout(): Promise<AgentLayout> {
  n += 1;
  const layout = makeAgentLayout(join(work, `agent${n}`));
  layouts.push(layout);
  layout.writeSettings(0, {
    secretsManagementSettings: {
      pollingIntervalInS: '3600',
      observedCertificates: [{ url: `${vault.vaultUrl}/secrets/web`, certificateStoreLocation: join(work, `store${n}`) }],
    },
    authenticationSettings: { msiEndpoint: vault.imdsEndpoint },
  });
  return layout;
}

async function statusOf(layout: AgentLayout, seq: number): Promise<{ status: string; message: string }> {
  const view = await layout.readStatus(seq);
  assert.equal(view.state, 'valid', `status ${seq}: ${JSON.stringify(view).slice(0, 300)}`);
  const doc = (view as { document: Array<{ status: { status: string; formattedMessage: { message: string } } }> }).document;
  return { status: doc[0]!.status.status, message: doc[0]!.status.formattedMessage.message };
}

/** Liveness wait (bounded) for the service's final status. */
async function finalStatus(layout: AgentLayout, seq: number): Promise<{ status: string; message: string }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const view = await layout.readStatus(seq);
    if (view.state === 'valid') {
      const s = await statusOf(layout, seq);
      if (s.status === 'success' || s.status === 'error') return s;
    }
    if (Date.now() > deadline) throw new Error(`status ${seq} never became final`);
    await sleep(100);
  }
}

before(async () => {
  work = await faultWorkDir('files');
  vault = await startDevVault();
  const ca = createCa('files root');
  const web = issueCertificate({ issuer: ca, subjectCn: 'web.test', serverAuth: false });
  const value = toPemSecret(web.keyPem, [web.certPem]);
  registerSecrets('files', { secrets: [web.keyPem, value] });
  vault.setSecret('web', value, { contentType: 'application/x-pem-file' });
});

after(async () => {
  for (const l of layouts) await command(l, 0, 'disable');
  registerSecrets('files', { tokens: vault.issuedTokens() });
  await vault.close();
});

for (const [label, text] of [
  ['garbage', 'not a number\n'],
  ['truncated', ''],
  ['negative', '-3'],
] as const) {
  test(`a ${label} mrseq is treated as absent: enable applies the settings and starts the service`, async () => {
    const layout = await freshLayout();
    await writeFile(join(layout.extensionFolder, 'mrseq'), text);
    const o = await command(layout, 0, 'enable');
    assertNoStackTrace(o);
    assert.equal(o.code, 0, o.stderr);
    assert.match(o.stdout, /sequence 0 applied/);
    assert.equal((await readFile(join(layout.extensionFolder, 'mrseq'), 'utf8')).trim(), '0');
    assert.equal((await finalStatus(layout, 0)).status, 'success');
    await command(layout, 0, 'disable');
  });
}

for (const [label, text] of [
  ['garbage', '%%%'],
  ['truncated JSON', '{"pid": 12'],
  ['wrong shape', '{"pid": "x", "markerKind": 7}'],
  ['pid of init', '{"pid": 1, "markerKind": "none"}'],
] as const) {
  test(`a ${label} pid file means the service is not running: enable restarts it, disable still stops it`, async () => {
    const layout = await freshLayout();
    await writeFile(join(layout.extensionFolder, 'mrseq'), '0');
    const pidFile = join(layout.extensionFolder, 'kvvm-service.pid');
    await writeFile(pidFile, text);
    const o = await command(layout, 0, 'enable');
    assertNoStackTrace(o);
    assert.equal(o.code, 0, o.stderr);
    assert.match(o.stdout, /service restarted/);
    assert.equal((await finalStatus(layout, 0)).status, 'success');
    const running = await isRunning(pidFile);
    assert.ok(running.running, 'a new service runs and its pid file is valid');
    // Clobbered again while the service runs: disable still finds it (its supervisor's record and the service
    // lock), stops it, and says so; no process is left.
    await writeFile(pidFile, text);
    const d = await command(layout, 0, 'disable');
    assertNoStackTrace(d);
    assert.equal(d.code, 0);
    assert.match(d.stdout, /service stopped/);
    assert.deepEqual(serviceProcesses(layout.extensionFolder), { supervisors: [], workers: [] });
  });
}

test('a corrupt status file from an earlier run is replaced by a valid one', async () => {
  const layout = await freshLayout();
  await writeFile(join(layout.statusFolder, '0.status'), '[{"version": 1.0, "status": {"status": "succ');
  const o = await command(layout, 0, 'enable');
  assertNoStackTrace(o);
  assert.equal(o.code, 0, o.stderr);
  assert.equal((await finalStatus(layout, 0)).status, 'success');
  await command(layout, 0, 'disable');
});

for (const [label, text] of [
  ['truncated', '{"runtimeSettings": [{"handlerSettings": {"publicSettings": {"secretsManagementSettings": {"pollingInt'],
  ['binary garbage', '\u0000\u00ff\u00fe{{{'],
  ['wrong shape', '{"runtimeSettings": "yes"}'],
  ['an array', '[1, 2, 3]'],
] as const) {
  test(`${label} settings make enable and the service report an error status naming the settings file`, async () => {
    const layout = await freshLayout();
    layout.writeSettingsText(0, text);
    const o = await command(layout, 0, 'enable');
    assertNoStackTrace(o);
    assert.equal(o.code, 1);
    const s = await statusOf(layout, 0);
    assert.equal(s.status, 'error');
    assert.match(s.message, /0\.settings|settings/i);
    assert.match(o.stderr, /settings/i);
    // The service started by hand (or left from before) on the same file reports the same way.
    await rm(join(layout.statusFolder, '0.status'));
    const svc = await command(layout, 0, 'service');
    assertNoStackTrace(svc);
    assert.equal(svc.code, EXIT_SETTINGS_INVALID, 'not a crash: the supervisor does not restart it');
    const s2 = await statusOf(layout, 0);
    assert.equal(s2.status, 'error');
    assert.match(s2.message, /settings/i);
  });
}

test('truncated settings name the file itself in the status', async () => {
  const layout = await freshLayout();
  layout.writeSettingsText(0, '{"runtimeSettings": [{"handlerSett');
  const o = await command(layout, 0, 'enable');
  assert.equal(o.code, 1);
  assert.match((await statusOf(layout, 0)).message, /0\.settings/);
});

for (const [label, text] of [
  ['truncated', '[{"name": "Microsoft.Azure.KeyVault.KeyVaultForLinux", "version": 1.0, "handlerEnvironment": {"logFol'],
  ['empty', ''],
  ['not an array', '{"handlerEnvironment": 3}'],
  ['missing folders', '[{"name": "x", "version": 1.0, "handlerEnvironment": {}}]'],
] as const) {
  // Each run re-reads the file a few times a second apart (the agent may be writing it): only the truncated
  // case runs all three commands, to keep the suite short.
  const commands = label === 'truncated' ? ['enable', 'disable', 'service'] : ['enable'];
  test(`a ${label} HandlerEnvironment.json makes ${commands.join(', ')} fail clearly, naming the file`, async () => {
    const layout = await freshLayout();
    await writeFile(join(layout.extensionFolder, 'HandlerEnvironment.json'), text);
    for (const name of commands) {
      const o = await command(layout, 0, name);
      assertNoStackTrace(o);
      assert.notEqual(o.code, 0, `${name} must fail`);
      assert.match(o.stderr, /HandlerEnvironment\.json/, `${name}: ${o.stderr}`);
    }
  });
}
