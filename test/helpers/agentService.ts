/**
 * A real service driven through the agent's files, against a dev vault of its own: the vault (a user-assigned
 * identity only, so a token needs the settings' msiClientId), an agent layout, the environment the service needs
 * (the dev vault's CA trusted, its host allowed, no jitter) and the clean-up every such test needs (disable, so no
 * service outlives the test; the vault closed; the folder removed).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevVault, type DevVault } from '../../handler/devvault/server.js';
import { makeAgentLayout, type AgentLayout } from './agentFolder.js';
import { agentCommand } from './agentCommands.js';

export const AGENT_SERVICE_CLIENT_ID = '6f1d3c55-8f5c-4a57-9a3e-0c4b2d7e9a11';

export interface AgentService {
  root: string;
  vault: DevVault;
  layout: AgentLayout;
  /** The service's environment; `trust` adds more trusted CA PEMs (the certificates' own roots). */
  env: Record<string, string>;
  trust(...pems: string[]): Promise<void>;
}

export async function withAgentService(prefix: string, body: (s: AgentService) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), `kvvm-${prefix}-`));
  let vault: DevVault | undefined;
  let layout: AgentLayout | undefined;
  const trustFile = join(root, 'trusted.pem');
  const env: Record<string, string> = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', NODE_EXTRA_CA_CERTS: trustFile, KVVM_NO_JITTER: '1' };
  try {
    vault = await startDevVault({ port: 0, identities: { systemAssigned: false, userAssigned: [AGENT_SERVICE_CLIENT_ID] } });
    layout = makeAgentLayout(root);
    await writeFile(trustFile, vault.caCertPem);
    const v = vault;
    await body({ root, vault: v, layout, env, trust: (...pems) => writeFile(trustFile, [v.caCertPem, ...pems].join('')) });
  } finally {
    if (layout) await agentCommand(layout, 0, 'disable', env).catch(() => undefined);
    await vault?.close();
    await rm(root, { recursive: true, force: true });
  }
}
