/**
 * The `kvvm` command table and dispatcher (cli.ts runs it). The guest agent runs `kvvm install|enable|disable|update|uninstall` from the
 * extension folder; people run `kvvm validate`, `kvvm dev-vault`, `kvvm demo`.
 */
import { describeError } from './errors.js';
import { invalidOverridesError, overrideLogLines, readOverrides } from './overrides.js';
import type { CommandHost } from './commands/context.js';

// Command modules are imported when their command runs: the agent's enable must not pay for loading the ARM
// client, the dev vault or the doctor (measured in bench/, figure 3), and the service keeps less in memory.

interface CommandSpec {
  summary: string;
  usage: string;
  /** Agent-driven commands find HandlerEnvironment.json and report status; tools do not. */
  agent: boolean;
  run: (argv: string[], host: CommandHost) => Promise<number>;
  /** The command's own, longer usage text, loaded only for --help. */
  helpText?: () => Promise<string>;
  /** Not listed in the main help (run by the system, not by people). */
  hidden?: boolean;
}

const AGENT_HELP =
  'Run by the Azure guest agent from the extension folder. HandlerEnvironment.json is found through\n' +
  'AZURE_GUEST_AGENT_EXTENSION_PATH, next to the executable, or one folder up; the sequence number comes from\n' +
  'ConfigSequenceNumber or the newest <n>.settings file.';

const COMMANDS: Record<string, CommandSpec> = {
  install: {
    summary: 'prepare the extension folder (agent)',
    usage: 'kvvm install',
    agent: true,
    run: async (_a, h) => (await import('./commands/lifecycle.js')).installCommand(h),
  },
  enable: {
    summary: 'validate settings, record the sequence number, start or reconfigure the service (agent)',
    usage: 'kvvm enable',
    agent: true,
    run: async (_a, h) => (await import('./commands/lifecycle.js')).enableCommand(h),
  },
  disable: {
    summary: 'stop the service; certificates stay installed (agent)',
    usage: 'kvvm disable',
    agent: true,
    run: async (_a, h) => (await import('./commands/lifecycle.js')).disableCommand(h),
  },
  update: {
    summary: "carry state over from the previous version's folder (agent)",
    usage: 'kvvm update',
    agent: true,
    run: async (_a, h) => (await import('./commands/lifecycle.js')).updateCommand(h),
  },
  uninstall: {
    summary: "stop the service and remove kvvm's state; certificates stay (agent)",
    usage: 'kvvm uninstall',
    agent: true,
    run: async (_a, h) => (await import('./commands/lifecycle.js')).uninstallCommand(h),
  },
  service: {
    summary: 'run the certificate sync service in the foreground (started by enable)',
    usage: 'kvvm service',
    agent: true,
    run: async (_a, h) => (await import('./commands/serviceWorker.js')).serviceWorkerCommand(h),
  },
  'service-crashed': {
    summary: 'report a crash loop of the certificate service in the status (run by the service supervisor)',
    usage: 'kvvm service-crashed <count> <reason> <retry ms>',
    agent: true,
    hidden: true,
    run: async (a, h) => (await import('./commands/serviceCrashed.js')).serviceCrashedCommand(a, h),
  },
  'windows-service-host': {
    summary: 'the kvvm Windows service process, started by the Service Control Manager (registered by enable)',
    usage: 'kvvm windows-service-host <launch file>',
    agent: false,
    hidden: true,
    run: async (a, h) => {
      if (a.length !== 1 || h.platform !== 'win32') {
        h.stderr('usage: kvvm windows-service-host <launch file>  (Windows only; started by the Service Control Manager)\n');
        return 2;
      }
      return (await import('./service/windowsServiceHost.js')).runServiceHost(a[0] as string);
    },
  },
  validate: {
    summary: 'check a settings file and print the verdict',
    usage: 'kvvm validate <settings.json> [--platform linux|win32] [--json]',
    agent: false,
    run: async (a, h) =>
      (await import('./settings/validateCommand.js')).runValidateCommand(a, {
        stdout: h.stdout,
        stderr: h.stderr,
        env: h.env,
        platform: h.platform === 'win32' ? 'win32' : 'linux',
      }),
  },
  'dev-vault': {
    summary: 'run a local Key Vault + managed-identity endpoint for development and tests',
    usage: 'kvvm dev-vault [--host NAME] [--seed DIR] [--port N] [--state DIR] ... | kvvm dev-vault put <name> <file> --vault-url URL',
    agent: false,
    // The full text ends with put's usage, so it also answers `kvvm dev-vault put --help`.
    helpText: async () => (await import('./devvault/command.js')).DEV_VAULT_USAGE,
    run: async (a, h) => (await import('./devvault/command.js')).runDevVaultCommand(a, { stdout: { write: h.stdout }, stderr: { write: h.stderr }, env: h.env }),
  },
  demo: {
    summary: 'sync and rotate certificates from a local dev vault into a local store, with a live table',
    usage: 'kvvm demo [--dir DIR]',
    agent: false,
    run: async (a, h) => (await import('./demo/command.js')).runDemoCommand(a, h),
  },
  doctor: {
    summary: 'on the VM: check identity, network, vault access, clock, store and service, with the fix for each problem',
    usage: 'kvvm doctor [--settings FILE | --extension-folder DIR] [--json]',
    helpText: async () => (await import('./doctor/command.js')).DOCTOR_USAGE,
    agent: false,
    run: async (a, h) => (await import('./doctor/command.js')).runDoctorCommand(a, { stdout: h.stdout, stderr: h.stderr, env: h.env, platform: h.platform }),
  },
  deploy: {
    summary: 'validate settings, then add or update the extension on a VM or scale set through Azure Resource Manager',
    usage: 'kvvm deploy vm|vmss --resource-group RG --name NAME --settings FILE [options]',
    helpText: async () => (await import('./deploy/deployCommand.js')).DEPLOY_USAGE,
    agent: false,
    run: async (a, h) => (await import('./deploy/deployCommand.js')).runDeployCommand(a, { stdout: h.stdout, stderr: h.stderr, env: h.env }),
  },
  status: {
    summary: "show the extension's instance view (status and per-certificate substatus) from Azure Resource Manager",
    usage: 'kvvm status vm|vmss --resource-group RG --name NAME [--instance-id N] [--json]',
    helpText: async () => (await import('./deploy/statusCommand.js')).STATUS_USAGE,
    agent: false,
    run: async (a, h) => (await import('./deploy/statusCommand.js')).runStatusCommand(a, { stdout: h.stdout, stderr: h.stderr, env: h.env }),
  },
};

function mainHelp(): string {
  const listed = Object.entries(COMMANDS).filter(([, spec]) => spec.hidden !== true);
  const width = Math.max(...listed.map(([k]) => k.length));
  const lines = listed.map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`);
  return `kvvm — keeps Azure Key Vault certificates installed on this machine\n\nUsage: kvvm <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'kvvm <command> --help' for a command's options.\n`;
}

export async function main(argv: string[], host: CommandHost): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    host.stdout(mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    const { packageVersion } = await import('./version.js');
    host.stdout(`${packageVersion()}\n`);
    return 0;
  }
  const spec = COMMANDS[name];
  if (!spec) {
    host.stderr(`kvvm: unknown command '${name}'.\n\n${mainHelp()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    const usage = spec.helpText ? await spec.helpText() : `Usage: ${spec.usage}`;
    host.stdout(`${usage.trimEnd()}\n\n${spec.summary}.\n${spec.agent ? `\n${AGENT_HELP}\n` : ''}`);
    return 0;
  }
  // Every KVVM_* variable is read in overrides.ts: refuse one that does not parse, and say which are in effect
  // (stderr: stdout may be parsed). Not from the service, which writes the same lines to its own log, nor from
  // the Windows service host, which the SCM starts without a console (its child, the service, logs them), nor from
  // service-crashed, whose stderr is the service's output file it reads the crash reason from.
  const overrides = readOverrides(host.env);
  const invalid = invalidOverridesError(overrides);
  if (invalid) {
    host.stderr(`kvvm ${name}: ${invalid.describe()}\n`);
    return 2;
  }
  if (name !== 'service' && name !== 'windows-service-host' && name !== 'service-crashed')
    for (const line of overrideLogLines(overrides)) host.stderr(`kvvm ${name}: ${line.message}\n`);
  try {
    return await spec.run(rest, host);
  } catch (err) {
    host.stderr(`kvvm ${name}: ${describeError(err)}\n`);
    return 1;
  }
}
