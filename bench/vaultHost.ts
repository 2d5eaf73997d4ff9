/**
 * Runs the dev vault in its own process, so the CPU the benchmarks measure in the engine's process is the
 * engine's alone (the vault's TLS, routing and JSON would otherwise be counted as kvvm's cost).
 *
 * Parent side: startVaultProcess(options) forks this file and talks to it over IPC.
 * Child side (this module run as the entry): starts startDevVault(options) and answers stats/reset/close.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DevVaultOptions, DevVaultStats } from '../handler/devvault/server.js';
import { ipcRequester } from './ipcRequests.js';

export interface VaultProcessOptions {
  stateDir: string;
  port?: number;
  latencyMs?: number;
  rateLimit?: { requests: number; windowMs: number };
}

export interface VaultProcess {
  vaultUrl: string;
  imdsEndpoint: string;
  caCertFile: string;
  caCertPem: string;
  pid: number;
  stats(): Promise<DevVaultStats>;
  resetStats(): Promise<void>;
  close(): Promise<void>;
}

type Request = { id: number; op: 'stats' | 'reset' | 'close' };
type Reply = { id: number; stats?: DevVaultStats };
type Ready = { ready: { vaultUrl: string; imdsEndpoint: string; caCertFile: string; caCertPem: string } } | { error: string };

const SELF = fileURLToPath(import.meta.url);

export function startVaultProcess(options: VaultProcessOptions): Promise<VaultProcess> {
  const child: ChildProcess = fork(SELF, ['--child', JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = ipcRequester<{ op: Request['op'] }, Reply>(child, 'dev vault process');
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`dev vault process exited early (${code})`)));
    child.on('message', (m: Ready | Reply) => {
      if ('id' in m) return; // a reply: ipcRequester's
      if ('error' in m) {
        reject(new Error(m.error));
        return;
      }
      resolve({
        ...m.ready,
        pid: child.pid ?? -1,
        stats: async () => (await ask({ op: 'stats' })).stats as DevVaultStats,
        resetStats: async () => void (await ask({ op: 'reset' })),
        close: async () => {
          const exited = new Promise<void>((res) => child.once('exit', () => res()));
          await ask({ op: 'close' });
          await exited;
        },
      });
    });
  });
}

async function childMain(raw: string): Promise<void> {
  const { startDevVault } = await import('../handler/devvault/server.js');
  const options = JSON.parse(raw) as VaultProcessOptions;
  const devOptions: DevVaultOptions = { stateDir: options.stateDir, port: options.port ?? 0 };
  if (options.latencyMs !== undefined) devOptions.latencyMs = options.latencyMs;
  if (options.rateLimit !== undefined) devOptions.rateLimit = options.rateLimit;
  try {
    const vault = await startDevVault(devOptions);
    process.on('message', (m: Request) => {
      if (m.op === 'stats') process.send?.({ id: m.id, stats: vault.stats() } satisfies Reply);
      else if (m.op === 'reset') {
        vault.resetStats();
        process.send?.({ id: m.id } satisfies Reply);
      } else {
        void vault.close().then(() => {
          process.send?.({ id: m.id } satisfies Reply, () => process.disconnect());
        });
      }
    });
    process.send?.({ ready: { vaultUrl: vault.vaultUrl, imdsEndpoint: vault.imdsEndpoint, caCertFile: vault.caCertFile, caCertPem: vault.caCertPem } } satisfies Ready);
  } catch (err) {
    process.send?.({ error: String(err) } satisfies Ready, () => process.disconnect());
  }
}

if (process.argv[2] === '--child' && process.argv[3] !== undefined) void childMain(process.argv[3]);
