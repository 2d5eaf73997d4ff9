/**
 * Figure 3: `kvvm enable` wall time (installed, a new sequence number, no service
 * running) against `node -e 0`, medians of interleaved runs. Enable returns once the detached service is started.
 */
import { median, timeProcess } from './common.js';
import { startAgentBench } from './agentRun.js';
import { measuredFloor, timing, type BenchEntry } from './report.js';

const ENABLE_TARGET = 8;

export async function benchEnable(o: { runs: number }, progress: (s: string) => void): Promise<BenchEntry[]> {
  const bench = await startAgentBench(10);
  try {
    progress(`enable: ${o.runs} runs`);
    bench.writeSettings(0);
    await bench.command(0, 'install');
    const enable: number[] = [];
    const bare: number[] = [];
    for (let seq = 0; seq < o.runs; seq++) {
      bare.push(timeProcess(process.execPath, ['-e', '0']));
      bench.writeSettings(seq);
      enable.push(await bench.command(seq, 'enable'));
      await bench.waitInstalled(60_000);
      await bench.command(seq, 'disable');
    }
    return [
      measuredFloor(
        timing(
          'enable: wall',
          median(enable),
          median(bare),
          ENABLE_TARGET,
          'ms',
          `median of ${o.runs} runs of 'kvvm enable' (new sequence number, service stopped, 10 certificates) vs 'node -e 0'`,
        ),
      ),
    ];
  } finally {
    await bench.close();
  }
}
