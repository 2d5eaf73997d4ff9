/**
 * A guest-agent folder tree as the Linux agent lays it out, under `root` instead of `/`, for the demo, the tests
 * and the benchmark (the one writer of these files outside a real agent):
 *   <root>/var/lib/waagent/<Name>-<version>/{HandlerEnvironment.json,config/,status/}   (extension folder)
 *   <root>/log/azure/<Name>/{,events/}                                                 (logs, telemetry)
 * Files are written as the agent writes them (Python's json.dumps layout); status is read back through the
 * protocol module, as kvvm itself reads it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readStatus as readStatusFile, statusFilePath, type StatusFileView } from '../protocol/status.js';

/** Protected settings as the platform delivers them: base64 CMS EnvelopedData and the certificate it is encrypted to. */
interface EncryptedSettings {
  protectedSettings: string;
  thumbprint: string;
}

export interface AgentFolder {
  root: string;
  name: string;
  version: string;
  waagentDir: string;
  extensionFolder: string;
  configFolder: string;
  statusFolder: string;
  logFolder: string;
  eventsFolder: string;
  heartbeatFile: string;
  /** Writes <seq>.settings; no public and no protected settings write an EMPTY file, as the agent does without settings. */
  writeSettings(seq: number, publicSettings: unknown, encrypted?: EncryptedSettings): string;
  /** Writes <seq>.settings with any text (for corrupt-input tests). */
  writeSettingsText(seq: number, text: string): string;
  readStatus(seq: number): Promise<StatusFileView>;
  /** The environment the agent sets for a command of sequence number `seq`. */
  env(seq: number): Record<string, string>;
}

export function makeAgentFolder(root: string, name: string, version: string): AgentFolder {
  const waagentDir = join(root, 'var', 'lib', 'waagent');
  const extensionFolder = join(waagentDir, `${name}-${version}`);
  const configFolder = join(extensionFolder, 'config');
  const statusFolder = join(extensionFolder, 'status');
  const heartbeatFile = join(extensionFolder, 'heartbeat.log');
  const logFolder = join(root, 'log', 'azure', name);
  const eventsFolder = join(logFolder, 'events');
  for (const dir of [configFolder, statusFolder, eventsFolder]) mkdirSync(dir, { recursive: true });

  const handlerEnv = [
    {
      name,
      version: 1.0,
      handlerEnvironment: { logFolder, configFolder, statusFolder, heartbeatFile, eventsFolder, eventsFolder_preview: eventsFolder },
    },
  ];
  writeFileSync(join(extensionFolder, 'HandlerEnvironment.json'), pythonJsonDumps(handlerEnv));

  const writeSettingsText = (seq: number, text: string): string => {
    const file = join(configFolder, `${seq}.settings`);
    writeFileSync(file, text);
    return file;
  };
  return {
    root,
    name,
    version,
    waagentDir,
    extensionFolder,
    configFolder,
    statusFolder,
    logFolder,
    eventsFolder,
    heartbeatFile,
    writeSettings(seq, publicSettings, encrypted) {
      if ((publicSettings === null || publicSettings === undefined) && encrypted === undefined) return writeSettingsText(seq, '');
      const handlerSettings = {
        publicSettings: publicSettings ?? null,
        protectedSettings: encrypted?.protectedSettings ?? null,
        protectedSettingsCertThumbprint: encrypted?.thumbprint ?? null,
      };
      return writeSettingsText(seq, pythonJsonDumps({ runtimeSettings: [{ handlerSettings }] }));
    },
    writeSettingsText,
    readStatus: (seq) => readStatusFile(statusFilePath(statusFolder, seq)),
    env: (seq) => ({
      AZURE_GUEST_AGENT_EXTENSION_PATH: extensionFolder,
      AZURE_GUEST_AGENT_EXTENSION_VERSION: version,
      ConfigSequenceNumber: String(seq),
      AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN',
    }),
  };
}

/** json.dumps(obj) with Python's default separators; integral floats are not representable in JS, so 1.0 is special-cased. */
function pythonJsonDumps(value: unknown): string {
  return JSON.stringify(value)
    .replace(/"version":1(?=[,}])/g, '"version":1.0')
    .replace(/("(?:[^"\\]|\\.)*")|([,:])/g, (_m, str: string | undefined, sep: string | undefined) => (str !== undefined ? str : sep === ',' ? ', ' : ': '));
}
