/**
 * The Windows guest agent, played inside Windows Node under Wine: the C:\Packages\Plugins\<Publisher.Type>\<version>\
 * layout (HandlerEnvironment.json with the Windows keys, RuntimeSettings\N.settings, Status\N.status), logs in
 * C:\WindowsAzure\Logs\Plugins\..., and each command run as `node.exe lib\handler\cli.js <cmd>` with the agent's
 * environment. Shared by lifecycle.test (the service's life) and profilesEnable.test (one agent folder per profile row).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readStatus, statusFilePath } from '../../../handler/protocol/status.js';

const KEYVAULT_FOR_WINDOWS = 'Microsoft.Azure.KeyVault.KeyVaultForWindows';
const root = process.env['KVVM_WINE_ROOT'] ?? process.cwd();
const CLI = join(root, 'lib', 'handler', 'cli.js');

export interface AgentFolder {
  extensionFolder: string;
  logFolder: string;
  configFolder: string;
  statusFolder: string;
  /** The version the folder name carries (`...\<Publisher>.<Type>\<version>`). */
  folderVersion: string;
  /** What the agent puts in AZURE_GUEST_AGENT_EXTENSION_VERSION; undefined: the variable is not set at all. */
  envVersion: string | undefined;
  /** The dev vault's IMDS host (AZURE_POD_IDENTITY_AUTHORITY_HOST). */
  imdsHost: string;
}

export interface AgentStatus {
  status: string;
  message: string;
  substatus: Array<{ name: string; status: string; formattedMessage: { message: string } }>;
}

/** A fresh agent folder for `folderVersion` (an earlier one at the same place is removed). */
export function windowsAgentFolder(folderVersion: string, envVersion: string | undefined, imdsHost: string): AgentFolder {
  const extensionFolder = `C:\\Packages\\Plugins\\${KEYVAULT_FOR_WINDOWS}\\${folderVersion}`;
  const logFolder = `C:\\WindowsAzure\\Logs\\Plugins\\${KEYVAULT_FOR_WINDOWS}\\${folderVersion}`;
  const configFolder = join(extensionFolder, 'RuntimeSettings');
  const statusFolder = join(extensionFolder, 'Status');
  rmSync(extensionFolder, { recursive: true, force: true });
  rmSync(logFolder, { recursive: true, force: true });
  for (const d of [configFolder, statusFolder, logFolder]) mkdirSync(d, { recursive: true });
  // What the Windows agent writes: UTF-8 with BOM, version "1", the Windows-only keys.
  writeFileSync(
    join(extensionFolder, 'HandlerEnvironment.json'),
    `\uFEFF${JSON.stringify([
      {
        name: KEYVAULT_FOR_WINDOWS,
        version: '1',
        seqNo: '0',
        handlerEnvironment: {
          logFolder,
          configFolder,
          statusFolder,
          heartbeatFile: join(statusFolder, 'HeartBeat.Json'),
          deploymentid: 'a1b2c3',
          rolename: '_kvvm-wine',
          instance: '_kvvm-wine',
          hostResolverAddress: '168.63.129.16',
        },
      },
    ])}`,
  );
  return { extensionFolder, logFolder, configFolder, statusFolder, folderVersion, envVersion, imdsHost };
}

export function writeSettings(layout: AgentFolder, seq: number, publicSettings: unknown): void {
  writeFileSync(
    join(layout.configFolder, `${seq}.settings`),
    JSON.stringify({
      runtimeSettings: [{ handlerSettings: { publicSettings, protectedSettings: null, protectedSettingsCertThumbprint: null } }],
    }),
  );
}

/** One agent command: node.exe cli.js <cmd>, output to files (no pipes under Wine), the agent's environment. */
export function agent(layout: AgentFolder, seq: number, command: string): { code: number; stdout: string; stderr: string } {
  const out = join(layout.extensionFolder, `${command}.${seq}.out`);
  const err = join(layout.extensionFolder, `${command}.${seq}.err`);
  const o = openSync(out, 'w');
  const e = openSync(err, 'w');
  const env: Record<string, string | undefined> = {
    ...process.env,
    AZURE_GUEST_AGENT_EXTENSION_PATH: layout.extensionFolder,
    AZURE_GUEST_AGENT_EXTENSION_VERSION: layout.envVersion,
    ConfigSequenceNumber: String(seq),
    AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN',
    KVVM_EXTRA_VAULT_SUFFIXES: 'localhost',
    KVVM_NO_JITTER: '1',
    // The library identity path (MSAL over node:http) with its documented IMDS host override. kvvm's own IMDS
    // client (msiEndpoint) uses fetch, and undici cannot connect under Wine 8 ("connect UNKNOWN"; measured).
    AZURE_POD_IDENTITY_AUTHORITY_HOST: layout.imdsHost,
  };
  if (layout.envVersion === undefined) delete env['AZURE_GUEST_AGENT_EXTENSION_VERSION'];
  try {
    const run = spawnSync(process.execPath, [CLI, command], { cwd: layout.extensionFolder, stdio: ['ignore', o, e], timeout: 300_000, env });
    return { code: run.status ?? -1, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
  } finally {
    closeSync(o);
    closeSync(e);
  }
}

const isFinal = (s: AgentStatus): boolean => s.status === 'success' || s.status === 'error';

/** Bounded wait (a liveness deadline, not a timing assertion) until `done` holds: by default a final status. */
export async function finalStatus(layout: AgentFolder, seq: number, done: (s: AgentStatus) => boolean = isFinal): Promise<AgentStatus> {
  const deadline = Date.now() + 120_000;
  let last = 'no status file';
  while (Date.now() < deadline) {
    const view = await readStatus(statusFilePath(layout.statusFolder, seq));
    if (view.state === 'valid') {
      const s = (view.document as Array<{ status: { status: string; formattedMessage: { message: string }; substatus?: AgentStatus['substatus'] } }>)[0]!.status;
      const status: AgentStatus = { status: s.status, message: s.formattedMessage.message, substatus: s.substatus ?? [] };
      last = JSON.stringify(status);
      if (done(status)) return status;
    }
    await sleep(500);
  }
  let logs = '';
  try {
    logs = readFileSync(join(layout.logFolder, 'kvvm-windows-service.log'), 'utf8') + readFileSync(join(layout.logFolder, 'kvvm-service.out'), 'utf8');
  } catch {
    // no logs yet
  }
  throw new Error(`status ${seq} never reached the expected state; last: ${last}\n${logs.slice(-3000)}`);
}
