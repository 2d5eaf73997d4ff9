/**
 * `npm run bench -- --scale` (issue 12, item 6; not in CI): how the cost of watching certificates grows with their
 * number, at 10 / 100 / 1,000 / 10,000 observed certificates.
 * - poll CPU: one unchanged poll cycle (runSyncCycle, real vault client, shared PEM store directory, the service's
 *   parser pool) in this process, CPU / N, against the dev vault in its own process without added latency;
 * - service RSS: the real service started by `kvvm enable` (agent folder, Node of the Linux package), every process
 *   of its session summed, 30 s after its first cycle installed every certificate (at rest: its worker has exited),
 *   against a bare Node process with one timer;
 * - peak while syncing: the most the session's processes had resident during that first cycle (their VmHWM, read
 *   every 100 ms until every certificate is in place, the largest sum kept; a lower bound of the true peak), and its
 *   increment over the bare process per certificate.
 * The curve is flat when the per-certificate CPU at 10,000 is within 1.5x of that at 100 (the criterion).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrustedRoots } from '../handler/certs/chain.js';
import { createParserPool } from '../handler/certs/parserPool.js';
import { makeChainCheck } from '../handler/commands/service.js';
import { runSyncCycle, SERVICE_CONCURRENCY } from '../handler/engine/syncCycle.js';
import { posixSupervisor } from '../handler/service/posixSupervisor.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import { packagedKvvm, startAgentBench, type PackagedKvvm } from './agentRun.js';
import { countingLogger, cpuMs, procPeakRssMiB, procRssMiB, sessionPids, sleep } from './common.js';
import { buildVaultState, makeCertPool, observedCertificates, saveVaultState } from './fixtures.js';
import { startVaultProcess } from './vaultHost.js';

const SCALE_POINTS = [10, 100, 1000, 10_000] as const;
/** The flatness criterion: per-certificate cost at 10,000 within this factor of the cost at 100. */
const FLAT_WITHIN = 1.5;
const SETTLE_MS = 30_000;

export interface ScalePoint {
  certificates: number;
  pollCpuMs: number;
  serviceRssMiB: number;
  peakRssMiB: number;
  bareRssMiB: number;
}

/** CPU of one unchanged poll over `n` certificates already installed, in this process (parser threads included). */
async function unchangedPollCpu(n: number, progress: (s: string) => void): Promise<number> {
  const root = mkdtempSync(join(tmpdir(), 'kvvm-bench-scale-'));
  const parser = createParserPool();
  const pool = makeCertPool(2);
  // PEM secrets: an unchanged poll parses nothing, and PEM makes the setup install of 10,000 quick.
  saveVaultState(join(root, 'vault'), buildVaultState(pool, n, 'pem'));
  // The service's own 4,000 requests / 10 s would only stretch the wall time; CPU is what is measured here.
  const vault = await startVaultProcess({ stateDir: join(root, 'vault'), rateLimit: { requests: 1_000_000, windowMs: 10_000 } });
  try {
    writeFileSync(join(root, 'roots.pem'), pool.ca.certPem);
    const log = countingLogger();
    const deps = {
      vault: createVaultReader({ authentication: { msiEndpoint: vault.imdsEndpoint }, env: { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' }, tlsCa: [vault.caCertPem] }),
      store: createPemStore({}),
      parse: parser.parse,
      checkChain: makeChainCheck(loadTrustedRoots({ NODE_EXTRA_CA_CERTS: join(root, 'roots.pem') })),
      now: () => new Date(),
      log,
    };
    const certs = observedCertificates(vault.vaultUrl, join(root, 'store'), 0, n);
    progress(`scale ${n}: installing (setup)`);
    const setup = await runSyncCycle(certs, deps, { concurrency: SERVICE_CONCURRENCY });
    if (setup.some((r) => r.state !== 'installed')) throw new Error(`scale ${n}: setup failed: ${log.firstError ?? ''}`);
    progress(`scale ${n}: unchanged poll`);
    const cpu0 = process.cpuUsage();
    const polled = await runSyncCycle(certs, deps, { concurrency: SERVICE_CONCURRENCY });
    const cpu = cpuMs(process.cpuUsage(cpu0));
    if (polled.some((r) => r.state !== 'unchanged')) throw new Error(`scale ${n}: the unchanged poll changed something: ${log.firstError ?? ''}`);
    return cpu;
  } finally {
    await parser.close();
    await vault.close();
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Summed RSS of every process of the real service's session after its first cycle over `n` certificates, and the
 * largest sum of their peaks (VmHWM) seen during that cycle.
 */
async function serviceMemory(n: number, kvvm: PackagedKvvm, progress: (s: string) => void): Promise<{ rest: number; peak: number }> {
  const bench = await startAgentBench(n, kvvm);
  try {
    bench.writeSettings(0);
    await bench.command(0, 'install');
    await bench.command(0, 'enable');
    progress(`scale ${n}: service's first cycle`);
    // Enable returns once the supervisor holds the service lock, so its pid file names it from here on.
    const supervisor = (await posixSupervisor.isRunning(join(bench.layout.extensionFolder, 'kvvm-supervisor.pid'))).pid;
    if (supervisor === undefined) throw new Error(`scale ${n}: no service supervisor`);
    let peak = 0;
    const sample = (): void => {
      peak = Math.max(
        peak,
        sessionPids(supervisor).reduce((sum, p) => sum + procPeakRssMiB(p), 0),
      );
    };
    const sampler = setInterval(sample, 100);
    try {
      await bench.waitInstalled(30 * 60_000);
      sample();
    } finally {
      clearInterval(sampler);
    }
    await sleep(SETTLE_MS);
    const rss = sessionPids(supervisor).reduce((sum, p) => sum + procRssMiB(p), 0);
    await bench.command(0, 'disable');
    return { rest: rss, peak };
  } finally {
    await bench.close();
  }
}

export async function benchScale(progress: (s: string) => void, counts: readonly number[] = SCALE_POINTS): Promise<ScalePoint[]> {
  const kvvm = await packagedKvvm();
  const bare = spawn(kvvm.node, ['-e', 'setInterval(() => {}, 3_600_000)'], { stdio: 'ignore' });
  const points: ScalePoint[] = [];
  try {
    for (const n of counts) {
      const pollCpuMs = await unchangedPollCpu(n, progress);
      const { rest: serviceRssMiB, peak: peakRssMiB } = await serviceMemory(n, kvvm, progress);
      if (bare.pid === undefined) throw new Error('the bare process did not start');
      points.push({ certificates: n, pollCpuMs, serviceRssMiB, peakRssMiB, bareRssMiB: procRssMiB(bare.pid) });
      progress(`scale ${n}: poll CPU ${pollCpuMs.toFixed(0)} ms, service RSS ${serviceRssMiB.toFixed(1)} MiB at rest, ${peakRssMiB.toFixed(1)} MiB at most while syncing`);
    }
  } finally {
    bare.kill();
  }
  return points;
}

export function formatScale(points: readonly ScalePoint[]): string {
  const rows = points.map((p) => [
    p.certificates.toLocaleString('en-US'),
    `${p.pollCpuMs.toFixed(0)} ms`,
    `${(p.pollCpuMs / p.certificates).toFixed(3)} ms`,
    `${p.serviceRssMiB.toFixed(1)} MiB`,
    (p.serviceRssMiB / p.bareRssMiB).toFixed(2),
    `${p.peakRssMiB.toFixed(1)} MiB`,
    `${(((p.peakRssMiB - p.bareRssMiB) * 1024) / p.certificates).toFixed(1)} KiB`,
  ]);
  const head = ['certificates', 'unchanged poll CPU', 'per certificate', 'service RSS at rest', 'x bare Node', 'peak while syncing', 'peak over bare / certificate'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const per = (n: number): number | undefined => {
    const p = points.find((x) => x.certificates === n);
    return p === undefined ? undefined : p.pollCpuMs / p.certificates;
  };
  const [at100, at10k] = [per(100), per(10_000)];
  const flat =
    at100 === undefined || at10k === undefined
      ? 'flatness not computed (100 or 10,000 missing)'
      : `poll CPU per certificate at 10,000 / at 100 = ${(at10k / at100).toFixed(2)} (${at10k / at100 <= FLAT_WITHIN ? 'flat' : 'NOT flat'}: the issue asks for <= ${FLAT_WITHIN})`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line), '', flat].join('\n');
}
