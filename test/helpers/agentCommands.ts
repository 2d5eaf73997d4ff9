/**
 * The guest agent's side of a lifecycle test on Linux: run one handler command as a separate process with the
 * agent's environment, and wait for a sequence number's status to become final.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { packageRoot } from '../../handler/paths.js';
import type { AgentLayout } from './agentFolder.js';

const run = promisify(execFile);
const CLI = join(packageRoot(), 'lib', 'handler', 'cli.js');

export async function agentCommand(layout: AgentLayout, seq: number, command: string, extraEnv: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, command], {
      cwd: layout.extensionFolder,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...layout.env(seq), ...extraEnv },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export interface StatusView {
  status: string;
  message: string;
  substatus: Array<{ name: string; status: string; formattedMessage: { message: string } }>;
}

/** Waits (bounded, a liveness deadline rather than a timing assertion) until the status file reaches a final state. */
export function finalStatus(layout: AgentLayout, seq: number): Promise<StatusView> {
  return waitForStatus(layout, seq, (s) => s.status === 'success' || s.status === 'error');
}

/** Waits (bounded, as above) until status `seq` satisfies `until`. */
export async function waitForStatus(layout: AgentLayout, seq: number, until: (s: StatusView) => boolean): Promise<StatusView> {
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    const view = await layout.readStatus(seq);
    if (view.state === 'valid') {
      const doc = view.document as Array<{ status: { status: string; formattedMessage: { message: string }; substatus?: StatusView['substatus'] } }>;
      const s = doc[0]!.status;
      last = `${s.status}: ${s.formattedMessage.message}`;
      const current = { status: s.status, message: s.formattedMessage.message, substatus: s.substatus ?? [] };
      if (until(current)) return current;
    }
    await sleep(200);
  }
  throw new Error(`status ${seq} never reached the awaited state; last: ${last}`);
}
