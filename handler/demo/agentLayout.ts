/**
 * A folder laid out the way the Linux guest agent lays out an extension (/var/lib/waagent/<Name>-<version>),
 * for the demo: HandlerEnvironment.json and <seq>.settings written exactly as the agent writes them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface AgentLayout {
  waagentDir: string;
  extensionFolder: string;
  configFolder: string;
  statusFolder: string;
  logFolder: string;
  /** Writes <seq>.settings with the given public settings. */
  writeSettings(seq: number, publicSettings: unknown): Promise<void>;
  /** The environment the agent sets for a command. */
  commandEnv(seq: number): Record<string, string>;
}

export async function createAgentLayout(root: string, name: string, version: string): Promise<AgentLayout> {
  const waagentDir = join(root, 'waagent');
  const extensionFolder = join(waagentDir, `${name}-${version}`);
  const configFolder = join(extensionFolder, 'config');
  const statusFolder = join(extensionFolder, 'status');
  const logFolder = join(root, 'log', name);
  for (const dir of [configFolder, statusFolder, logFolder, join(logFolder, 'events')]) await mkdir(dir, { recursive: true });
  const handlerEnvironment = [
    {
      name,
      version: 1.0,
      handlerEnvironment: {
        logFolder,
        configFolder,
        statusFolder,
        heartbeatFile: join(extensionFolder, 'heartbeat.log'),
        eventsFolder: join(logFolder, 'events'),
      },
    },
  ];
  await writeFile(join(extensionFolder, 'HandlerEnvironment.json'), JSON.stringify(handlerEnvironment));
  return {
    waagentDir,
    extensionFolder,
    configFolder,
    statusFolder,
    logFolder,
    writeSettings: async (seq, publicSettings) => {
      const doc = { runtimeSettings: [{ handlerSettings: { publicSettings, protectedSettings: null, protectedSettingsCertThumbprint: null } }] };
      await writeFile(join(configFolder, `${seq}.settings`), JSON.stringify(doc));
    },
    commandEnv: (seq) => ({
      AZURE_GUEST_AGENT_EXTENSION_PATH: extensionFolder,
      AZURE_GUEST_AGENT_EXTENSION_VERSION: version,
      ConfigSequenceNumber: String(seq),
    }),
  };
}
