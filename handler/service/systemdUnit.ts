/**
 * Where systemd is PID 1, the service is the unit operators of KeyVaultForLinux know: `akvvm_service`
 * (`systemctl status akvvm_service`, `journalctl -u akvvm_service`). The unit runs the same supervisor as
 * everywhere else (restartLoop.ts: service lock, restart with backoff, crash-loop status), so behaviour does not
 * depend on the init system; systemd adds start at boot and restarts the supervisor itself should it die.
 * enable writes the unit and restarts it, disable stops it, uninstall disables and removes it, but only when
 * the unit belongs to this extension folder (during an upgrade the old version's uninstall runs after the new
 * version's enable has taken the unit over).
 *
 * This file is pure text and argument building; the caller runs systemctl. It has not been run under systemd
 * here (neither this machine nor CI boots with systemd): tests check the unit text and the systemctl argv.
 */
import { RESTART_LOOP_SCRIPT, restartLoopArgs, type RestartPolicy } from './restartLoop.js';

export const SYSTEMD_UNIT_NAME = 'akvvm_service.service';
export const SYSTEMD_UNIT_DIR = '/etc/systemd/system';
/** sd_booted(3): systemd is the init system exactly when this directory exists. */
export const SYSTEMD_RUNTIME_DIR = '/run/systemd/system';
/** The supervisor script as a file next to the extension, because a unit's ExecStart cannot hold a multi-line script. */
export const SUPERVISOR_SCRIPT_FILE = 'kvvm-supervisor.sh';
const OWNER_MARK = '# kvvm-extension-folder: ';

export interface UnitOptions {
  extensionFolder: string;
  /** The extension's version, for the description. */
  version: string;
  supervisorScript: string;
  serviceLock: string;
  /** node [cli.js] */
  kvvmCommand: readonly string[];
  /** Variables the worker needs (sequence number, extension path, proxies, dev-vault trust in tests). */
  env: Record<string, string>;
  outputFile: string;
  policy?: RestartPolicy | undefined;
}

/** The variables passed into the unit: the agent's, kvvm's own knobs, trust and proxy settings. Nothing else. */
export function unitEnvironment(env: Record<string, string | undefined>): Record<string, string> {
  const keep = /^(AZURE_GUEST_AGENT_\w+|ConfigSequenceNumber|KVVM_\w+|NODE_EXTRA_CA_CERTS|HTTPS?_PROXY|https?_proxy|NO_PROXY|no_proxy|PATH)$/;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && keep.test(k)) out[k] = v;
  return out;
}

export function renderUnit(options: UnitOptions): string {
  // restartLoopArgs gives [-c, script, $0, lock, policy…, command…]; the unit runs the script file instead.
  const loopArgs = restartLoopArgs(options.serviceLock, options.kvvmCommand, options.policy).slice(3);
  const execStart = ['/bin/sh', options.supervisorScript, ...loopArgs].map((a) => quoteUnitArg(a, true)).join(' ');
  const environment = Object.entries(options.env)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `Environment=${quoteUnitArg(`${k}=${v}`, false)}`);
  return [
    `# Written by kvvm enable; removed by kvvm uninstall. Edits are overwritten on the next enable.`,
    `${OWNER_MARK}${options.extensionFolder}`,
    '[Unit]',
    `Description=Azure Key Vault VM extension certificate service (kvvm, KeyVaultForLinux ${options.version})`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `WorkingDirectory=${escapeSpecifiers(options.extensionFolder)}`,
    ...environment,
    `ExecStart=${execStart}`,
    // The supervisor restarts the worker; systemd restarts the supervisor. Stop reaches both (control group).
    'Restart=on-failure',
    'RestartSec=5',
    'KillMode=control-group',
    'TimeoutStopSec=40',
    `StandardOutput=append:${escapeSpecifiers(options.outputFile)}`,
    `StandardError=append:${escapeSpecifiers(options.outputFile)}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** The script file's text: the same loop, run by `sh <file> <args>` ($0 is the file). */
export function supervisorScriptFile(): string {
  return `#!/bin/sh\n# kvvm service supervisor (written by kvvm enable): see handler/service/restartLoop.ts\n${RESTART_LOOP_SCRIPT}`;
}

/** The folder named in a unit kvvm wrote, or undefined for a unit someone else wrote. */
export function unitOwner(unitText: string): string | undefined {
  const line = unitText.split('\n').find((l) => l.startsWith(OWNER_MARK));
  return line?.slice(OWNER_MARK.length);
}

/** systemctl invocations, in order, for each lifecycle step. */
export const systemctlSteps = {
  start: (): string[][] => [['daemon-reload'], ['enable', SYSTEMD_UNIT_NAME], ['restart', SYSTEMD_UNIT_NAME]],
  /**
   * Disable stops the unit AND disables it: a unit left enabled would start at the next boot, and the agent does
   * not call disable again, so a disabled extension's service would sync certificates until the next enable.
   */
  stop: (active: boolean): string[][] => [active ? ['disable', '--now', SYSTEMD_UNIT_NAME] : ['disable', SYSTEMD_UNIT_NAME]],
  isActive: (): string[] => ['is-active', '--quiet', SYSTEMD_UNIT_NAME],
  isEnabled: (): string[] => ['is-enabled', '--quiet', SYSTEMD_UNIT_NAME],
  remove: (): { before: string[][]; after: string[][] } => ({ before: [['disable', '--now', SYSTEMD_UNIT_NAME]], after: [['daemon-reload']] }),
} as const;

/**
 * systemd's quoting (systemd.syntax(7)): double quotes, backslash escapes for `"` and `\`, a newline as \n,
 * `%` doubled (specifiers everywhere); `$` doubled only in ExecStart, the one place variables are expanded.
 */
export function quoteUnitArg(arg: string, exec: boolean): string {
  let escaped = arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/%/g, '%%');
  if (exec) escaped = escaped.replace(/\$/g, '$$$$');
  return `"${escaped}"`;
}

function escapeSpecifiers(path: string): string {
  return path.replace(/%/g, '%%');
}
