/**
 * The guest agent's side for figures 3 and 4: an agent folder (handler/demo/agentFolder.ts), the dev vault in its
 * own process, and the real CLI run as the agent runs it (a separate process with the agent's environment).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildPackages } from '../build/package.js';
import { platformById } from '../build/platforms.js';
import { unpackZip } from '../build/zip.js';
import { packageRoot } from '../handler/paths.js';
import { makeAgentFolder, type AgentFolder } from '../handler/demo/agentFolder.js';
import { nowMs } from './common.js';
import { startProcessTimer } from './processTimer.js';
import { buildVaultState, makeCertPool, saveVaultState, secretName } from './fixtures.js';
import { startVaultProcess, type VaultProcess } from './vaultHost.js';

const run = promisify(execFile);

/** The Linux package of this machine's architecture, unpacked as the agent unpacks it. */
export interface PackagedKvvm {
  /** runtime/node: the Node runtime the package ships (build/platforms.ts NODE_VERSION). */
  node: string;
  /** lib/handler/cli.js: the bundled CLI the package ships (build/bundle.ts). */
  cli: string;
  /** bin/kvvm: the launcher HandlerManifest.json names, which the guest agent runs (it picks runtime/node). */
  launcher: string;
}

let packaged: Promise<PackagedKvvm> | undefined;

/**
 * What the Linux package ships, built by the package build from this checkout's lib/ (tsc -p . first) and unpacked
 * into a temporary folder (removed when this process exits): enable and the idle service are measured running
 * its bundled CLI on its runtime, and so is their floor, since that is what runs on a VM (its module loading and
 * compile cache differ from the Node on PATH and from tsc's unbundled lib/). Built once per process.
 */
export function packagedKvvm(): Promise<PackagedKvvm> {
  packaged ??= (async () => {
    const root = packageRoot();
    const dir = mkdtempSync(join(tmpdir(), 'kvvm-bench-package-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const platform = platformById(`linux-${arch()}`);
    const [built] = await buildPackages({ repoRoot: root, outDir: join(dir, 'dist'), platforms: [platform], cacheDir: join(root, '.cache', 'npm'), log: () => undefined });
    if (!built) throw new Error('the package build made no package');
    const unpacked = join(dir, 'package');
    await unpackZip(await readFile(built.file), unpacked, { executeBitOnEveryFile: true });
    return { node: join(unpacked, 'runtime', 'node'), cli: join(unpacked, 'lib', 'handler', 'cli.js'), launcher: join(unpacked, 'bin', 'kvvm') };
  })();
  return packaged;
}

export interface AgentBench {
  layout: AgentFolder;
  /** The package the commands run (and the service, which enable starts with the same runtime and CLI). */
  kvvm: PackagedKvvm;
  vault: VaultProcess;
  storeDir: string;
  certificates: number;
  /** Writes settings for `seq` (hourly polling; the 4.x profile of the agent folder, where requireInitialSync is gone). */
  writeSettings(seq: number): void;
  /** Runs a handler command (with `env` added to the agent's); returns its wall time in ms. Throws on a non-zero exit. */
  command(seq: number, command: string, env?: Record<string, string>): Promise<number>;
  /**
   * Wall time of a handler command as the agent runs it (the launcher bin/kvvm, output piped), timed synchronously
   * in a small helper process (processTimer.ts: a process forked from this one would carry this one's size).
   * Figure 3 times enable and its floor, `node -e 0` (timeRuntime), this way.
   */
  timedCommand(seq: number, command: string): Promise<number>;
  /** Wall time of the package's runtime with `args`, timed as timedCommand times a command. */
  timeRuntime(args: readonly string[]): Promise<number>;
  /** Resolves when every certificate's link is in the store (the service's first cycle is done). */
  waitInstalled(timeoutMs: number): Promise<void>;
  /**
   * Resolves when status <seq> says the service for that sequence number finished a poll cycle with every
   * certificate in place (success, "next poll at"): the service this run's enable started works. The store's
   * links alone cannot say so after the first run, when they are already there.
   */
  waitSynced(seq: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startAgentBench(certificates: number, kvvm: PackagedKvvm): Promise<AgentBench> {
  const root = mkdtempSync(join(tmpdir(), 'kvvm-bench-agent-'));
  const pool = makeCertPool(2);
  saveVaultState(join(root, 'vault'), buildVaultState(pool, certificates, 'pem'));
  const vault = await startVaultProcess({ stateDir: join(root, 'vault') });
  const layout = makeAgentFolder(join(root, 'agent'), 'Microsoft.Azure.KeyVault.KeyVaultForLinux', '4.0.0');
  const trust = join(root, 'trusted.pem');
  writeFileSync(trust, readFileSync(vault.caCertFile, 'utf8') + pool.ca.certPem);
  const storeDir = join(root, 'store');
  const timer = startProcessTimer();
  const baseEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', NODE_EXTRA_CA_CERTS: trust, KVVM_NO_JITTER: '1' };
  const settings = {
    secretsManagementSettings: {
      pollingIntervalInS: '3600',
      observedCertificates: Array.from({ length: certificates }, (_, i) => ({ url: `${vault.vaultUrl}/secrets/${secretName(i)}`, certificateStoreLocation: storeDir })),
    },
    authenticationSettings: { msiEndpoint: vault.imdsEndpoint },
  };
  return {
    layout,
    kvvm,
    vault,
    storeDir,
    certificates,
    writeSettings: (seq) => void layout.writeSettings(seq, settings),
    async command(seq, command, env = {}) {
      const t0 = nowMs();
      await run(kvvm.node, [kvvm.cli, command], { cwd: layout.extensionFolder, env: { ...baseEnv, ...layout.env(seq), ...env } });
      return nowMs() - t0;
    },
    timedCommand(seq, command) {
      return timer.time({ command: kvvm.launcher, args: [command], cwd: layout.extensionFolder, env: { ...baseEnv, ...layout.env(seq) }, pipeOutput: true });
    },
    timeRuntime(args) {
      return timer.time({ command: kvvm.node, args, cwd: layout.extensionFolder, env: baseEnv, pipeOutput: true });
    },
    async waitInstalled(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        let links = 0;
        try {
          links = readdirSync(storeDir).filter((f) => !f.endsWith('.PEM') && f.startsWith('kvvm.')).length;
        } catch {
          // not created yet
        }
        if (links >= certificates) return;
        if (Date.now() > deadline) throw new Error(`service installed ${links}/${certificates} certificates in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async waitSynced(seq, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        const view = await layout.readStatus(seq);
        if (view.state === 'valid') {
          const status = (view.document as Array<{ status: { status: string; formattedMessage: { message: string } } }>)[0]?.status;
          last = `${status?.status}: ${status?.formattedMessage.message}`;
          if (
            status?.status === 'success' &&
            status.formattedMessage.message.includes(`${certificates} of ${certificates} certificates in place`) &&
            status.formattedMessage.message.includes('next poll at')
          )
            return;
        }
        if (Date.now() > deadline) throw new Error(`status ${seq} not synced after ${timeoutMs} ms; last: ${last}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      await timer.close();
      await vault.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
