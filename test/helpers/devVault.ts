/**
 * Start the dev vault in-process for a test, and build the env/options that make kvvm code trust and reach it.
 *
 *   const tv = await startTestVault();            // or: await withDevVault({}, async (tv) => { ... })
 *   tv.vault.setSecret('web', pemText, { contentType: 'application/x-pem-file' });
 *   const reader = createVaultReader(tv.readerOptions());
 *   spawn('node', [...], { env: tv.childEnv() });  // child processes trust the dev CA via NODE_EXTRA_CA_CERTS
 *   await tv.close();
 *
 * The vault URL is https://kvvm.localhost:PORT (see handler/devvault/server.ts for why not plain localhost).
 */
import { startDevVault, type DevVault, type DevVaultOptions } from '../../handler/devvault/server.js';
import type { CreateVaultReaderOptions } from '../../handler/vault/secretsClient.js';

export interface TestVault {
  vault: DevVault;
  /** Env for in-process kvvm code: allows the *.localhost vault host. */
  env: Record<string, string>;
  caPem: string;
  /** createVaultReader options using the dev IMDS endpoint and trusting the dev CA; sleeps are recorded, not waited. */
  readerOptions(extra?: Partial<CreateVaultReaderOptions>): CreateVaultReaderOptions;
  /** Env for a child process: process.env + NODE_EXTRA_CA_CERTS + KVVM_EXTRA_VAULT_SUFFIXES (+ extra). */
  childEnv(extra?: Record<string, string>): Record<string, string | undefined>;
  /** Every delay kvvm asked to sleep, in order (readerOptions' default sleep records here). */
  sleeps: number[];
  close(): Promise<void>;
}

export function childProcessEnv(vault: DevVault, extra: Record<string, string> = {}, base: NodeJS.ProcessEnv = process.env): Record<string, string | undefined> {
  return { ...base, NODE_EXTRA_CA_CERTS: vault.caCertFile, KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', ...extra };
}

export async function startTestVault(options: DevVaultOptions = {}): Promise<TestVault> {
  const vault = await startDevVault(options);
  const env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' };
  const sleeps: number[] = [];
  return {
    vault,
    env,
    caPem: vault.caCertPem,
    sleeps,
    readerOptions: (extra = {}) => ({
      authentication: { msiEndpoint: vault.imdsEndpoint },
      env,
      tlsCa: [vault.caCertPem],
      sleep: async (ms: number) => {
        sleeps.push(ms);
      },
      ...extra,
    }),
    childEnv: (extra = {}) => childProcessEnv(vault, extra),
    close: () => vault.close(),
  };
}

export async function withDevVault<T>(options: DevVaultOptions, fn: (tv: TestVault) => Promise<T>): Promise<T> {
  const tv = await startTestVault(options);
  try {
    return await fn(tv);
  } finally {
    await tv.close();
  }
}
