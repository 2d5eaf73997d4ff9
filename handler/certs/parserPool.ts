/**
 * Certificate secrets are parsed in worker threads, never on the service's main thread: key derivation is CPU
 * work a secret chooses (bounded per file by pkcs12.ts, but still up to seconds), and on the main thread it would
 * delay every other certificate, status writes and `disable`. Each parse has a CPU-time budget; a worker past it
 * is terminated and the secret reported. Two workers, so one slow secret never holds up the others; a worker
 * idle for a moment exits, so the resting service carries no extra heap.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { KvvmError } from '../errors.js';
import type { CertificateMaterial } from './material.js';
import type { ParseReply, ParseRequest } from './parserWorker.js';

export interface ParserPoolOptions {
  /** CPU time one parse may use before its worker is terminated. */
  cpuBudgetMs?: number;
  /** Workers running at once. */
  size?: number;
  /** An idle worker exits after this long. */
  idleMs?: number;
}

export interface ParserPool {
  parse(value: string, contentType: string | undefined): Promise<CertificateMaterial>;
  /** Stops every worker; parses in flight or queued reject. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * 10 s of CPU: the worst PFX the work limit admits costs ~3 s on a busy 2-core VM, a Key Vault PFX a few
 * milliseconds.
 */
const PARSE_CPU_BUDGET_MS = 10_000;
const CHECK_EVERY_MS = 100;
/** Linux reports thread CPU time in clock ticks of 1/100 s (USER_HZ, the same on every architecture). */
const TICK_MS = 10;

interface Job extends ParseRequest {
  resolve(material: CertificateMaterial): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  /** The worker has loaded its modules (startup is not the secret's cost and is not charged to it). */
  ready: boolean;
  /**
   * /proc/self/task/<tid>/stat of the worker's thread, open for as long as the worker lives: re-read with one
   * pread(2) per reading (~7 us) instead of opened and read again (~80 us, twice per parse).
   */
  cpuStat: number | undefined;
  job: Job | undefined;
  /** CPU ms of the worker thread when the current job started (or wall ms where thread CPU is unreadable). */
  startedAt: number;
  idle: NodeJS.Timeout | undefined;
}

export function createParserPool(options: ParserPoolOptions = {}): ParserPool {
  const budgetMs = options.cpuBudgetMs ?? PARSE_CPU_BUDGET_MS;
  const size = options.size ?? 2;
  const idleMs = options.idleMs ?? 2000;
  const slots = new Set<Slot>();
  const queue: Job[] = [];
  let nextId = 1;
  let closed = false;
  /** One budget check for every busy worker, running while any parse is (not a timer per parse). */
  let checker: NodeJS.Timeout | undefined;

  const pump = (): void => {
    while (queue.length > 0 && !closed) {
      const slot = [...slots].find((s) => s.job === undefined) ?? (slots.size < size ? spawn() : undefined);
      if (!slot) return;
      start(slot, queue.shift() as Job);
    }
  };

  const spawn = (): Slot => {
    const worker = new Worker(new URL('./parserWorker.js', import.meta.url));
    const slot: Slot = { worker, ready: false, cpuStat: undefined, job: undefined, startedAt: 0, idle: undefined };
    slots.add(slot);
    worker.on('message', (reply: ParseReply) => onReply(slot, reply));
    worker.on('error', (err) => retire(slot, new KvvmError('parser-failed', `The certificate parser stopped unexpectedly: ${err.message}`, { cause: err })));
    worker.on('exit', () => retire(slot, new KvvmError('parser-failed', 'The certificate parser exited unexpectedly.')));
    return slot;
  };

  const checkBudgets = (): void => {
    for (const slot of [...slots]) {
      if (slot.job && slot.ready && elapsed(slot) - slot.startedAt > budgetMs) {
        const limit = `${(budgetMs / 1000).toFixed(budgetMs < 1000 ? 2 : 0)} s`;
        retire(
          slot,
          new KvvmError('parse-budget', `Reading the certificate secret used more than ${limit} of CPU time, so kvvm stopped it.`, {
            fix: 'Re-import the certificate into Key Vault (Key Vault writes PFX that read in milliseconds); a PFX exported with a very high iteration count (openssl pkcs12 -iter) is the usual cause.',
          }),
        );
      }
    }
  };

  const start = (slot: Slot, job: Job): void => {
    clearTimeout(slot.idle);
    slot.job = job;
    slot.worker.ref();
    slot.startedAt = elapsed(slot);
    checker ??= setInterval(checkBudgets, CHECK_EVERY_MS);
    const { resolve: _r, reject: _j, ...request } = job;
    slot.worker.postMessage(request satisfies ParseRequest);
  };

  const onReply = (slot: Slot, reply: ParseReply): void => {
    if (reply.kind === 'ready') {
      slot.ready = true;
      slot.cpuStat = openThreadStat(reply.tid);
      if (slot.job) slot.startedAt = elapsed(slot);
      return;
    }
    const job = slot.job;
    if (!job || job.id !== reply.id) return;
    finish(slot);
    if (reply.kind === 'done') job.resolve(reply.material);
    else job.reject(new KvvmError(reply.reason, reply.message, { ...(reply.fix === undefined ? {} : { fix: reply.fix }), code: reply.code }));
    slot.idle = setTimeout(() => retire(slot, undefined), idleMs).unref();
    pump();
  };

  const finish = (slot: Slot): void => {
    slot.job = undefined;
    slot.worker.unref();
    if (checker !== undefined && ![...slots].some((s) => s.job !== undefined)) {
      clearInterval(checker);
      checker = undefined;
    }
  };

  /** Removes a worker (budget spent, crashed, idle or closing) and fails its job with `err`. */
  const retire = (slot: Slot, err: KvvmError | undefined): void => {
    if (!slots.delete(slot)) return;
    const job = slot.job;
    finish(slot);
    clearTimeout(slot.idle);
    if (slot.cpuStat !== undefined) closeSync(slot.cpuStat);
    slot.cpuStat = undefined;
    void slot.worker.terminate().catch(() => undefined);
    if (job) job.reject(err ?? new KvvmError('parser-failed', 'The certificate parser stopped.'));
    pump();
  };

  return {
    parse(value, contentType) {
      if (closed) return Promise.reject(stopped());
      return new Promise<CertificateMaterial>((resolve, reject) => {
        queue.push({ id: nextId++, value, contentType, resolve, reject });
        pump();
      });
    },
    async close() {
      closed = true;
      for (const job of queue.splice(0)) job.reject(stopped());
      const workers = [...slots].map((s) => s.worker);
      for (const slot of [...slots]) retire(slot, stopped());
      await Promise.all(workers.map((w) => w.terminate().catch(() => undefined)));
    },
  };
}

function stopped(): KvvmError {
  return new KvvmError('service-stopping', 'The service is stopping; the certificate secret was not read.');
}

/** The worker thread's /proc stat file, open (Linux); undefined where the thread's id is unknown or it cannot be opened. */
function openThreadStat(tid: number | undefined): number | undefined {
  if (tid === undefined) return undefined;
  try {
    return openSync(`/proc/self/task/${tid}/stat`, 'r');
  } catch {
    return undefined;
  }
}

const statBuffer = Buffer.alloc(1024);

/**
 * CPU ms of the worker's thread from /proc (Linux; the file is generated again by each read from offset 0); wall
 * time where the thread's stat file is not open (other systems), a stricter measure of the same budget. NaN when
 * the thread is already gone, which no budget check acts on.
 */
function elapsed(slot: Slot): number {
  if (slot.cpuStat === undefined) return performance.now();
  try {
    const stat = statBuffer.toString('latin1', 0, readSync(slot.cpuStat, statBuffer, 0, statBuffer.length, 0));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return Number.NaN;
  }
}
