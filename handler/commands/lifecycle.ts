/**
 * The five commands the guest agent runs: install, enable, disable, update, uninstall (PROTOCOL.md).
 * Enable records the sequence number BEFORE replacing the running service, and returns as soon as the detached
 * service is started (its supervisor holds the service lock; the worker's own start is the supervisor's job): the
 * agent gives enable 300 s and kills its whole process group afterwards.
 */
import { cp, mkdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { advanceMrseq, readMrseq } from '../protocol/sequence.js';
import { wakeFileFor } from '../service/restartLoop.js';
import { loadConfig, loadHandlerContext, recordOutcome, reportStatus, type CommandHost, type HandlerContext } from './context.js';
import { serviceControlFor, type ServiceControl } from './serviceControl.js';

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
  // enable, disable and uninstall run one at a time per extension (service.oneCommandAtATime).
  const service = serviceControlFor(ctx);
  return service.oneCommandAtATime(async () => {
    const mrseq = await readMrseq(ctx.handlerEnv.extensionFolder);
    const running = await service.isRunning();
    if (mrseq !== undefined && ctx.seq <= mrseq) {
      const which = ctx.seq === mrseq ? 'already applied' : `older than the applied ${mrseq}; not applied`;
      if (running.running) {
        host.stdout(`kvvm enable: sequence ${ctx.seq} ${which}; service running (pid ${running.pid}).\n`);
        await recordOutcome(ctx, 'Enable', 'info', `sequence ${ctx.seq} ${which}; service running`);
        return 0;
      }
      // Boot or agent restart: same settings, service gone. Start it for the applied sequence number
      // (after clearing any worker its supervisor left behind).
      const { pid } = await service.replace(mrseq, async () => undefined);
      host.stdout(`kvvm enable: sequence ${ctx.seq} ${which}; service restarted for ${mrseq} (pid ${pid}).\n`);
      await recordOutcome(ctx, 'Enable', 'info', `sequence ${ctx.seq} ${which}; service restarted for ${mrseq} (pid ${pid})`);
      return 0;
    }
    await advanceMrseq(ctx.handlerEnv.extensionFolder, ctx.seq);
    // The recorded service is stopped before the new status is written, so it cannot overwrite it.
    const { pid } = await service.replace(ctx.seq, () =>
      reportStatus(ctx, {
        operation: 'Enable',
        status: 'transitioning',
        code: 0,
        message: `Starting the certificate service for ${loaded.config.observedCertificates.length} certificates.`,
      }),
    );
    host.stdout(`kvvm enable: sequence ${ctx.seq} applied; service started (pid ${pid}).\n`);
    await recordOutcome(ctx, 'Enable', 'info', `sequence ${ctx.seq} applied; service started (pid ${pid})`);
    return 0;
  });
}

export async function disableCommand(host: CommandHost): Promise<number> {
  const ctx = await loadHandlerContext(host, { needSequence: false });
  // stop() resolves only when no service is left, so "stopped" is never said while one runs on.
  const service = serviceControlFor(ctx);
  const outcome = await service.oneCommandAtATime(() => service.stop());
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
  const service = serviceControlFor(ctx);
  return service.oneCommandAtATime(() => uninstallLocked(ctx, service));
}

async function uninstallLocked(ctx: HandlerContext, service: ServiceControl): Promise<number> {
  const host = ctx.host;
  const outcome = await service.stop();
  const unregistered = await service.unregister();
  if (unregistered) host.stdout(`kvvm uninstall: ${unregistered}.\n`);
  // Certificates stay: during an upgrade the agent uninstalls the OLD version after the new one took over,
  // and applications keep using the installed certificates. Only kvvm's own state goes.
  await rm(ctx.paths.stateDir, { recursive: true, force: true });
  await rm(join(ctx.handlerEnv.extensionFolder, 'mrseq'), { force: true });
  await rm(ctx.paths.pidFile, { force: true });
  await rm(ctx.paths.supervisorPidFile, { force: true });
  await rm(wakeFileFor(ctx.paths.serviceLock), { force: true });
  // The lock files stay: removing a file another command has open and locked would let a third one lock a new
  // file of the same name. They are empty, and go with the extension folder.
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
