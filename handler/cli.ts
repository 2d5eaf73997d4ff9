#!/usr/bin/env node
/**
 * `kvvm`: the one entry point. The guest agent runs `kvvm install|enable|disable|update|uninstall` from the
 * extension folder; people run `kvvm validate`, `kvvm dev-vault`, `kvvm demo`.
 */
import { describeError } from './errors.js';
import { processHost, type CommandHost } from './commands/context.js';
import {
  disableCommand,
  enableCommand,
  installCommand,
  uninstallCommand,
  updateCommand,
} from './commands/lifecycle.js';
import { serviceCommand } from './commands/service.js';
import { runValidateCommand } from './settings/validateCommand.js';
import { runDevVaultCommand } from './devvault/command.js';
import { runDemoCommand } from './demo/command.js';
import { DEPLOY_USAGE, runDeployCommand } from './deploy/deployCommand.js';
import { runStatusCommand, STATUS_USAGE } from './deploy/statusCommand.js';
import { DOCTOR_USAGE, runDoctorCommand } from './doctor/command.js';

interface CommandSpec {
  summary: string;
  usage: string;
  /** Agent-driven commands find HandlerEnvironment.json and report status; tools do not. */
  agent: boolean;
  run: (argv: string[], host: CommandHost) => Promise<number>;
}

const AGENT_HELP =
  'Run by the Azure guest agent from the extension folder. HandlerEnvironment.json is found through\n' +
  'AZURE_GUEST_AGENT_EXTENSION_PATH, next to the executable, or one folder up; the sequence number comes from\n' +
  'ConfigSequenceNumber or the newest <n>.settings file.';

const COMMANDS: Record<string, CommandSpec> = {
  install: { summary: 'prepare the extension folder (agent)', usage: 'kvvm install', agent: true, run: (_a, h) => installCommand(h) },
  enable: {
    summary: 'validate settings, record the sequence number, start or reconfigure the service (agent)',
    usage: 'kvvm enable',
    agent: true,
    run: (_a, h) => enableCommand(h),
  },
  disable: { summary: 'stop the service; certificates stay installed (agent)', usage: 'kvvm disable', agent: true, run: (_a, h) => disableCommand(h) },
  update: { summary: "carry state over from the previous version's folder (agent)", usage: 'kvvm update', agent: true, run: (_a, h) => updateCommand(h) },
  uninstall: {
    summary: "stop the service and remove kvvm's state; certificates stay (agent)",
    usage: 'kvvm uninstall',
    agent: true,
    run: (_a, h) => uninstallCommand(h),
  },
  service: {
    summary: 'run the certificate sync service in the foreground (started by enable)',
    usage: 'kvvm service',
    agent: true,
    run: (_a, h) => serviceCommand(h),
  },
  validate: {
    summary: 'check a settings file and print the verdict',
    usage: 'kvvm validate <settings.json> [--platform linux|win32] [--json]',
    agent: false,
    run: (a, h) => runValidateCommand(a, { stdout: h.stdout, stderr: h.stderr, env: h.env, platform: h.platform === 'win32' ? 'win32' : 'linux' }),
  },
  'dev-vault': {
    summary: 'run a local Key Vault + managed-identity endpoint for development and tests',
    usage: 'kvvm dev-vault [--port N] [--state DIR] [--rate N] [--latency-ms N] [--fault-rate F]',
    agent: false,
    run: (a, h) => runDevVaultCommand(a, { stdout: { write: h.stdout }, stderr: { write: h.stderr }, env: h.env }),
  },
  demo: {
    summary: 'sync and rotate certificates from a local dev vault into a local store, with a live table',
    usage: 'kvvm demo [--dir DIR]',
    agent: false,
    run: (a, h) => runDemoCommand(a, h),
  },
  doctor: {
    summary: 'on the VM: check identity, network, vault access, clock, store and service, with the fix for each problem',
    usage: DOCTOR_USAGE,
    agent: false,
    run: (a, h) => runDoctorCommand(a, { stdout: h.stdout, stderr: h.stderr, env: h.env, platform: h.platform }),
  },
  deploy: {
    summary: 'validate settings, then add or update the extension on a VM or scale set through Azure Resource Manager',
    usage: DEPLOY_USAGE,
    agent: false,
    run: (a, h) => runDeployCommand(a, { stdout: h.stdout, stderr: h.stderr, env: h.env }),
  },
  status: {
    summary: "show the extension's instance view (status and per-certificate substatus) from Azure Resource Manager",
    usage: STATUS_USAGE,
    agent: false,
    run: (a, h) => runStatusCommand(a, { stdout: h.stdout, stderr: h.stderr, env: h.env }),
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`);
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
    host.stdout(`Usage: ${spec.usage}\n\n${spec.summary}.\n${spec.agent ? `\n${AGENT_HELP}\n` : ''}`);
    return 0;
  }
  try {
    return await spec.run(rest, host);
  } catch (err) {
    host.stderr(`kvvm ${name}: ${describeError(err)}\n`);
    return 1;
  }
}

// process.exitCode, not process.exit(): let log transports flush.
main(process.argv.slice(2), processHost()).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kvvm: ${describeError(err)}\n`);
    process.exitCode = 1;
  },
);
