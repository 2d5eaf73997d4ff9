/**
 * Runs handler commands as the guest agent does (a separate process, the agent's environment, the extension folder
 * as working directory) and waits for a sequence number's status to reach a final state.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { packageRoot } from '../../handler/paths.js';
import type { AgentLayout } from './agentFolder.js';

const run = promisify(execFile);
export const CLI = join(packageRoot(), 'lib', 'handler', 'cli.js');

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function agentCommand(layout: AgentLayout, seq: number, command: string, extraEnv: Record<string, string>): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, command], {
      cwd: layout.extensionFolder,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...layout.env(seq), ...extraEnv },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export interface FinalStatus {
  status: string;
  message: string;
  substatus: Array<{ name: string; status: string; formattedMessage: { message: string } }>;
}

/** Waits (bounded: a liveness deadline, not a timing assertion) until status `seq` is success or error. */
export function finalStatus(layout: AgentLayout, seq: number, deadlineMs = 60_000): Promise<FinalStatus> {
  return waitForStatus(layout, seq, (s) => s.status === 'success' || s.status === 'error', deadlineMs);
}

/** Waits (bounded, as above) until status `seq` satisfies `until`. */
export async function waitForStatus(layout: AgentLayout, seq: number, until: (s: FinalStatus) => boolean, deadlineMs = 60_000): Promise<FinalStatus> {
  const deadline = Date.now() + deadlineMs;
  let last = '';
  while (Date.now() < deadline) {
    const view = await layout.readStatus(seq);
    if (view.state === 'valid') {
      const doc = view.document as Array<{ status: { status: string; formattedMessage: { message: string }; substatus?: FinalStatus['substatus'] } }>;
      const s = doc[0]!.status;
      last = `${s.status}: ${s.formattedMessage.message}`;
      const current = { status: s.status, message: s.formattedMessage.message, substatus: s.substatus ?? [] };
      if (until(current)) return current;
    }
    await sleep(100);
  }
  throw new Error(`status ${seq} never reached the awaited state; last: ${last}`);
}
