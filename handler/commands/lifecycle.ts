/**
 * The five commands the guest agent runs: install, enable, disable, update, uninstall (PROTOCOL.md).
 * Enable records the sequence number BEFORE replacing the running service, and returns as soon as the detached
 * service is started: the agent gives enable 300 s and kills its whole process group afterwards.
 */
import { cp, mkdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readMrseq, writeMrseq } from '../protocol/sequence.js';
import { describeError } from '../errors.js';
import { supervisorFor } from '../service/supervisorFor.js';
import { loadConfig, loadHandlerContext, recordOutcome, reportStatus, type CommandHost, type HandlerContext } from './context.js';

const SERVICE_STOP_TIMEOUT_MS = 30_000;

export async function installCommand(host: CommandHost): Promise<number> {
  const ctx = await loadHandlerContext(host, { needSequence: false });
  await mkdir(ctx.paths.stateDir, { recursive: true, mode: 0o700 });
  host.stdout(`kvvm: installed in ${ctx.handlerEnv.extensionFolder}\n`);
  return 0;
}

export async function enableCommand(host: CommandHost): Promise<number> {
  const ctx = await loadHandlerContext(host, { needSequence: true });
  const loaded = await loadConfig(ctx);
  if (!loaded.ok) {
    // The agent shows OUR status, not the exit code: write the error first. A running service for an older,
    // valid configuration is left alone, so a typo in new settings never costs installed certificates.
    await reportStatus(ctx, { operation: 'Enable', status: 'error', code: 1, message: loaded.message });
    host.stderr(`kvvm enable: ${loaded.message}\n`);
    await recordOutcome(ctx, 'Enable', 'error', loaded.message);
    return 1;
  }
  const mrseq = await readMrseq(ctx.handlerEnv.extensionFolder);
  const supervisor = supervisorFor(ctx.host.platform);
  const running = await supervisor.isRunning(ctx.paths.pidFile);
  if (mrseq !== undefined && ctx.seq <= mrseq) {
    if (running.running) {
      host.stdout(`kvvm enable: sequence ${ctx.seq} already applied (last applied ${mrseq}); service running (pid ${running.pid}).\n`);
      await recordOutcome(ctx, 'Enable', 'info', `sequence ${ctx.seq} already applied; service running`);
      return 0;
    }
    // Boot or agent restart: same settings, service gone. Start it for the applied sequence number.
    const { pid } = await startService(ctx, mrseq);
    host.stdout(`kvvm enable: sequence ${mrseq} already applied; service restarted (pid ${pid}).\n`);
    await recordOutcome(ctx, 'Enable', 'info', `sequence ${mrseq} already applied; service restarted (pid ${pid})`);
    return 0;
  }
  await writeMrseq(ctx.handlerEnv.extensionFolder, ctx.seq);
  if (running.running) await supervisor.stopProcess(ctx.paths.pidFile, { timeoutMs: SERVICE_STOP_TIMEOUT_MS });
  await reportStatus(ctx, {
    operation: 'Enable',
    status: 'transitioning',
    code: 0,
    message: `Starting the certificate service for ${loaded.config.observedCertificates.length} certificates.`,
  });
  const { pid } = await startService(ctx, ctx.seq);
  host.stdout(`kvvm enable: sequence ${ctx.seq} applied; service started (pid ${pid}).\n`);
  await recordOutcome(ctx, 'Enable', 'info', `sequence ${ctx.seq} applied; service started (pid ${pid})`);
  return 0;
}

export async function disableCommand(host: CommandHost): Promise<number> {
  const ctx = await loadHandlerContext(host, { needSequence: false });
  const outcome = await supervisorFor(ctx.host.platform).stopProcess(ctx.paths.pidFile, { timeoutMs: SERVICE_STOP_TIMEOUT_MS });
  await reportStatus(ctx, {
    operation: 'Disable',
    status: 'success',
    code: 0,
    message: `Certificate service ${outcome === 'not-running' ? 'was not running' : 'stopped'}; installed certificates stay in place.`,
  });
  host.stdout(`kvvm disable: service ${outcome === 'not-running' ? 'was not running' : outcome}.\n`);
  await recordOutcome(ctx, 'Disable', 'info', `service ${outcome}`);
  return 0;
}

export async function uninstallCommand(host: CommandHost): Promise<number> {
  const ctx = await loadHandlerContext(host, { needSequence: false });
  const supervisor = supervisorFor(ctx.host.platform);
  const outcome = await supervisor.stopProcess(ctx.paths.pidFile, { timeoutMs: SERVICE_STOP_TIMEOUT_MS });
  // The service registration goes too where the platform has one (Windows: when it is this version's, since an
  // upgrade may have handed it on).
  const removed = await supervisor.remove(ctx.paths.pidFile);
  if (removed !== undefined) host.stdout(`kvvm uninstall: ${removed}.\n`);
  // Certificates stay: during an upgrade the agent uninstalls the OLD version after the new one took over,
  // and applications keep using the installed certificates. Only kvvm's own state goes.
  await rm(ctx.paths.stateDir, { recursive: true, force: true });
  await rm(join(ctx.handlerEnv.extensionFolder, 'mrseq'), { force: true });
  await rm(ctx.paths.pidFile, { force: true });
  host.stdout(`kvvm uninstall: service ${outcome === 'not-running' ? 'was not running' : outcome}; state removed; installed certificates kept.\n`);
  await recordOutcome(ctx, 'Uninstall', 'info', `service ${outcome}; state removed; installed certificates kept`);
  return 0;
}

/**
 * Update runs in the NEW version's folder while the old one still exists. The Linux agent copies mrseq and
 * status itself; kvvm carries its own state folder over as well.
 */
export async function updateCommand(host: CommandHost): Promise<number> {
  const ctx = await loadHandlerContext(host, { needSequence: false });
  const from = host.env['AZURE_GUEST_AGENT_UPDATING_FROM_VERSION'] ?? host.env['VERSION_FROM'];
  const oldFolder = from ? previousVersionFolder(ctx, from) : undefined;
  if (!oldFolder || !(await exists(oldFolder))) {
    host.stdout(`kvvm update: no previous version folder found${from ? ` for ${from}` : ''}; nothing to carry over.\n`);
    return 0;
  }
  for (const name of ['state', 'mrseq']) {
    const source = join(oldFolder, name);
    const target = join(ctx.handlerEnv.extensionFolder, name);
    if ((await exists(source)) && !(await exists(target))) await cp(source, target, { recursive: true });
  }
  host.stdout(`kvvm update: state carried over from ${oldFolder}.\n`);
  return 0;
}

function previousVersionFolder(ctx: HandlerContext, fromVersion: string): string {
  const folder = ctx.handlerEnv.extensionFolder;
  const parent = dirname(folder);
  const own = basename(folder);
  // Linux: /var/lib/waagent/<Pub.Type>-<version>; Windows: C:\Packages\Plugins\<Pub.Type>\<version>.
  const dash = own.lastIndexOf('-');
  if (dash > 0 && own.slice(dash + 1) === ctx.host.env['AZURE_GUEST_AGENT_EXTENSION_VERSION']) {
    return join(parent, `${own.slice(0, dash)}-${fromVersion}`);
  }
  return join(parent, fromVersion);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function startService(ctx: HandlerContext, seq: number): Promise<{ pid: number }> {
  const args = ctx.host.scriptPath ? [ctx.host.scriptPath, 'service'] : ['service'];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.host.env)) if (v !== undefined) env[k] = v;
  env['AZURE_GUEST_AGENT_EXTENSION_PATH'] = ctx.handlerEnv.extensionFolder;
  env['ConfigSequenceNumber'] = String(seq);
  try {
    return await supervisorFor(ctx.host.platform).startDetached({
      command: ctx.host.execPath,
      args,
      env,
      cwd: ctx.handlerEnv.extensionFolder,
      pidFile: ctx.paths.pidFile,
      logFile: ctx.paths.serviceOutput,
    });
  } catch (err) {
    await reportStatus(ctx, { operation: 'Enable', status: 'error', code: -1, message: `Could not start the service: ${describeError(err)}` }, seq);
    throw err;
  }
}
