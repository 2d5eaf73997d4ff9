/**
 * Figure 4: the service at rest after its first cycle: resident memory against a bare Node process holding one
 * timer, and CPU over an idle window (both processes measured over the same window, from /proc). At rest the
 * worker has exited (restartLoop.ts: it rests between cycles) and the service is its supervisor's shell and the
 * `sleep` it waits on; the window is checked to lie inside one rest (no worker at either end, the same wake record).
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { posixSupervisor } from '../handler/service/posixSupervisor.js';
import { NODE_VERSION } from '../build/platforms.js';
import { CLK_TCK, dropFromPageCache, procCpuMs, procRssMiB, procRssSplitMiB, sessionPids, sleep } from './common.js';
import { packagedKvvm, startAgentBench, type AgentBench } from './agentRun.js';
import { measuredFloor, timing, type BenchEntry } from './report.js';

const { isRunning } = posixSupervisor;

/** One clock tick: CPU below this is not measurable from /proc, so the floor is never smaller. */
const MIN_CPU_FLOOR_MS = 10;
/** The issue's target (issue 12): every process of the service together within 1.5 bare Node processes. */
const IDLE_RSS_TARGET = 1.5;
/** Chosen here (the issue sets none): at rest the service should use no CPU beyond a bare timer's. */
const IDLE_CPU_TARGET = 2;

/** The poll interval of the wake-cost runs (development override): short, so that several cycles fit in the run. */
const WAKE_POLL_S = 5;

export async function benchIdle(o: { windowS: number; certificates: number; wakes: number }, progress: (s: string) => void): Promise<BenchEntry[]> {
  const kvvm = await packagedKvvm();
  const node = kvvm.node;
  const bench = await startAgentBench(o.certificates, kvvm);
  // RSS counts every page of the Node binary a process has mapped, and a fault maps the whole page-cache folio
  // that holds the page (large folios: measured on Linux 6.18, ext4): the binary as the package build just wrote it
  // sits in large folios, and a bare Node then showed 61 MiB instead of the 42 MiB it shows when the binary was
  // read from disk (as after a reboot), the service ~17 MiB more too; which one a run got depended on the
  // machine's memory state (the recorded floor moved between 43 and 61 MiB). Both processes now start from the binary
  // read back from disk: the floor is the smaller, true one, and the same from run to run.
  dropFromPageCache(node);
  const bare = spawn(node, ['-e', 'setInterval(() => {}, 3_600_000)'], { stdio: 'ignore' });
  try {
    bench.writeSettings(0);
    await bench.command(0, 'install');
    await bench.command(0, 'enable');
    await bench.waitInstalled(120_000);
    // The service is every process of the supervisor's session (the supervisor is a shell that called setsid):
    // the supervisor, the worker that syncs while a cycle runs, and anything they started (the rest's `sleep`).
    const supervisor = (await isRunning(join(bench.layout.extensionFolder, 'kvvm-supervisor.pid'))).pid;
    if (supervisor === undefined || bare.pid === undefined) throw new Error('service or bare process not running');
    const sessionOf = (): number[] => sessionPids(supervisor);
    const wakeFile = join(bench.layout.extensionFolder, 'kvvm-service.wake');
    const rest = await atRest(wakeFile, sessionOf, 120_000);
    // "At rest" starts 60 s after the cycle, as when the worker stayed resident (a one-off burst of ~100-150 ms CPU
    // followed its cycle by 8-48 s, V8's memory reducer); the worker has exited by now, the wait is kept as it was.
    await sleep(60_000);
    progress(`idle: measuring ${o.windowS} s`);
    const startPids = sessionOf();
    if (startPids.some(isWorker)) throw new Error(`a worker runs in the supervisor's session ${supervisor}: not at rest`);
    const s0 = new Map(startPids.map((p) => [p, procCpuMs(p)]));
    const b0 = procCpuMs(bare.pid);
    await sleep(o.windowS * 1000);
    const servicePids = sessionOf();
    // The window lay inside one rest: no worker now, and the wake record is the one from before the window.
    if (servicePids.some(isWorker) || statSync(wakeFile).mtimeMs !== rest.writtenMs || Date.now() >= rest.wakeAt) {
      throw new Error('the service woke during the measured window: not at rest');
    }
    // A process that started during the window (a hook) counts from 0; one that ended is not counted (its CPU is
    // gone from /proc): the idle service starts none, so the two lists are the same (the note says how many).
    const serviceCpu = servicePids.reduce((sum, p) => sum + procCpuMs(p) - (s0.get(p) ?? 0), 0);
    const bareCpu = procCpuMs(bare.pid) - b0;
    const serviceRss = servicePids.reduce((sum, p) => sum + procRssMiB(p), 0);
    const bareRss = procRssMiB(bare.pid);
    const split = (p: number): string => {
      const { anon, file } = procRssSplitMiB(p);
      return `${anon.toFixed(1)} anon + ${file.toFixed(1)} file`;
    };
    const names = servicePids.map(processName);
    const splits = `${servicePids.map((p, i) => `${names[i]} ${split(p)}`).join(', ')}, bare ${split(bare.pid)} MiB`;
    await bench.command(0, 'disable');
    progress(`idle: CPU per wake vs per resident cycle (${o.wakes} cycles each)`);
    const wake = await cpuPerWake(bench, o.wakes);
    const resident = await cpuPerResidentCycle(bench, o.wakes);
    return [
      measuredFloor(
        timing(
          'idle: resident memory',
          serviceRss,
          bareRss,
          IDLE_RSS_TARGET,
          'MiB',
          `every process of the service's session at rest (${servicePids.length}: ${names.join(', ')}; the worker exited after its first cycle over ${o.certificates} certificates and rests until ${new Date(rest.wakeAt).toISOString()}) vs 'node -e "setInterval(...)"', both with Node ${NODE_VERSION} read from disk (not the page cache); ${splits}`,
        ),
      ),
      // CPU time, not wall time: a busy machine delays the service but does not make it use more CPU.
      measuredFloor(
        timing(
          `idle: CPU over ${o.windowS} s`,
          serviceCpu,
          Math.max(bareCpu, MIN_CPU_FLOOR_MS),
          IDLE_CPU_TARGET,
          'ms',
          `utime+stime from /proc; bare process used ${bareCpu} ms; floor at least one clock tick (${MIN_CPU_FLOOR_MS} ms)`,
        ),
      ),
      // What resting costs: each cycle pays a Node start, the module load, a token and a TLS connection.
      measuredFloor(
        timing(
          'idle: CPU per wake vs resident cycle',
          wake,
          resident,
          null,
          'ms',
          `one poll cycle of ${o.certificates} unchanged certificates (${WAKE_POLL_S} s interval, ${o.wakes} cycles): a worker started for it (its CPU as the supervisor reaps it, with the rest's sleep) vs the resident worker's CPU per cycle (KVVM_DEV_REST_MIN_S above the interval); the default interval is 300-3600 s`,
        ),
      ),
    ];
  } catch (err) {
    progress(`idle: failed: ${(err as Error).stack ?? String(err)}`); // before the clean-up, whose own failure would hide it
    throw err;
  } finally {
    bare.kill();
    await bench.close();
  }
}

/** Total CPU of a process and of its children it has reaped (utime, stime, cutime, cstime), ms. */
function procCpuWithReapedMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
}

/** Waits until `changed` says so (a liveness deadline). */
async function until(what: string, changed: () => boolean, limitMs = 120_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!changed()) {
    if (Date.now() > deadline) throw new Error(`idle: not within ${limitMs} ms: ${what}`);
    await sleep(50);
  }
}

const mtimeOr0 = (file: string): number => {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
};

/**
 * CPU per cycle when the worker rests between cycles: the supervisor's reaped children (every worker and sleep it
 * ran) over `cycles` wakes, counted from one rest to another, so whole workers are counted.
 */
async function cpuPerWake(bench: AgentBench, cycles: number): Promise<number> {
  const ext = bench.layout.extensionFolder;
  const wakeFile = join(ext, 'kvvm-service.wake');
  const earlier = mtimeOr0(wakeFile); // the record of the service measured before
  await bench.command(0, 'enable', { KVVM_DEV_POLL_INTERVAL_S: String(WAKE_POLL_S), KVVM_DEV_REST_MIN_S: '1' });
  const supervisor = (await isRunning(join(ext, 'kvvm-supervisor.pid'))).pid;
  if (supervisor === undefined) throw new Error('idle: no supervisor');
  const session = (): number[] => sessionPids(supervisor);
  let rest = await atRest(wakeFile, session, 120_000, earlier); // after the first cycle (first sight: every version listed)
  const c0 = procCpuWithReapedMs(supervisor);
  for (let i = 0; i < cycles; i += 1) {
    const before = rest.writtenMs;
    await until('the next rest', () => mtimeOr0(wakeFile) !== before);
    rest = await atRest(wakeFile, session, 120_000);
  }
  const c1 = procCpuWithReapedMs(supervisor);
  await bench.command(0, 'disable');
  return (c1 - c0) / cycles;
}

/** CPU per cycle of a worker that stays resident (the same interval; resting only above a day's wait). */
async function cpuPerResidentCycle(bench: AgentBench, cycles: number): Promise<number> {
  const ext = bench.layout.extensionFolder;
  const statusFile = join(bench.layout.statusFolder, '0.status');
  // Each cycle ends with a status naming its next poll: counted from the end of the first (first sight) to the end of another.
  const nextPoll = (): string => /next poll at (\S+)/.exec(readFileOr(statusFile))?.[1] ?? '';
  let seen = nextPoll(); // the earlier service's
  await bench.command(0, 'enable', { KVVM_DEV_POLL_INTERVAL_S: String(WAKE_POLL_S), KVVM_DEV_REST_MIN_S: '86400' });
  await until('the first cycle', () => nextPoll() !== seen);
  seen = nextPoll();
  const worker = readPidRecordSync(join(ext, 'kvvm-service.pid'));
  if (worker === undefined) throw new Error('idle: no resident worker recorded');
  const c0 = procCpuMs(worker);
  for (let i = 0; i < cycles; i += 1) {
    await until('the next cycle', () => nextPoll() !== seen);
    seen = nextPoll();
  }
  const c1 = procCpuMs(worker);
  await bench.command(0, 'disable');
  return (c1 - c0) / cycles;
}

function readFileOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function readPidRecordSync(file: string): number | undefined {
  try {
    const pid = (JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown }).pid;
    return typeof pid === 'number' ? pid : undefined;
  } catch {
    return undefined;
  }
}

function processName(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

/** The Node worker (`… cli.js service`), not the supervisor's shell or its sleep. */
function isWorker(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('service');
  } catch {
    return false;
  }
}

/** Waits until the worker has rested after its cycle: a wake record, and no worker in the session. */
async function atRest(wakeFile: string, session: () => number[], limitMs: number, notWrittenAt = 0): Promise<{ writtenMs: number; wakeAt: number }> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    try {
      const writtenMs = statSync(wakeFile).mtimeMs;
      const at = Date.parse(readFileSync(wakeFile, 'utf8').trim().split(' ')[1] ?? '');
      if (writtenMs !== notWrittenAt && Number.isFinite(at) && !session().some(isWorker)) return { writtenMs, wakeAt: at };
    } catch {
      // not written yet
    }
    if (Date.now() > deadline) throw new Error(`the service did not rest within ${limitMs} ms of its first cycle`);
    await sleep(100);
  }
}
