/** Standalone entry for `kvvm dev-vault` (the CLI wires the same function): node lib/handler/devvault/command-main.js */
import { runDevVaultCommand } from './command.js';

process.exitCode = await runDevVaultCommand(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
