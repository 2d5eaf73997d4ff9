import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KvvmError } from '../errors.js';
import { fileSystemError } from '../fsErrors.js';
import { isNotFound, writeFileAtomic } from './atomicFile.js';
import { truncateChars, truncateUtf8 } from './text.js';

type StatusState = 'transitioning' | 'warning' | 'error' | 'success';
const STATUS_STATES: readonly StatusState[] = ['transitioning', 'warning', 'error', 'success'];

export interface SubStatus {
  name: string;
  status: StatusState;
  code: number;
  message: string;
}

export interface HandlerStatusReport {
  operation: string;
  status: StatusState;
  code: number;
  message: string;
  substatus?: SubStatus[];
}

/**
 * The agent's limits (WALinuxAgent exthandlers.py) and ours. The agent truncates a file over 128 KiB, the top
 * message at 1024 chars and substatus fields at 10 KiB; we stay under all of them so the agent never edits what
 * we report. The whole-file budget is half the agent's limit ("keep well under").
 */
export const STATUS_LIMITS = {
  agentFileBytes: 128 * 1024,
  fileBytes: 64 * 1024,
  topMessageChars: 1024,
  substatusMessageBytes: 10 * 1024,
  substatusNameChars: 256,
} as const;

export const OMITTED_SUBSTATUS_NAME = 'kvvm.omittedSubstatus';

export function statusFilePath(statusFolder: string, seq: number): string {
  return join(statusFolder, `${seq}.status`);
}

/** "2026-01-01T00:00:00Z": the agent's examples and CRP use whole seconds. */
function formatTimestampUTC(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Write <statusFolder>/<seq>.status atomically, in the exact shape the agents parse. */
export async function writeStatus(statusFolder: string, seq: number, handlerName: string, report: HandlerStatusReport, now: Date): Promise<void> {
  if (!Number.isSafeInteger(seq) || seq < 0) throw invalid(`sequence number ${String(seq)} is not a non-negative integer`);
  const text = renderStatusDocument(handlerName, report, now);
  const file = statusFilePath(statusFolder, seq);
  try {
    // The agent creates the folder; a manual run or a half-removed extension may not have it.
    mkdirSync(statusFolder, { recursive: true });
    await writeFileAtomic(file, text);
  } catch (err) {
    throw fileSystemError('write the status file', file, err, 'status-write');
  }
}

/** The file's text (pure; exported for tests and for the size rules). */
export function renderStatusDocument(handlerName: string, report: HandlerStatusReport, now: Date): string {
  checkReport(report);
  const status: Record<string, unknown> = {
    name: handlerName,
    operation: report.operation,
    status: report.status,
    code: report.code,
    formattedMessage: { lang: 'en-US', message: truncateChars(report.message, STATUS_LIMITS.topMessageChars) },
  };
  // JSON.stringify writes 1.0 as 1; the protocol examples (and the Linux agent's own files) say 1.0, so the
  // envelope is written by hand around the serialised status object.
  const envelope = (s: Record<string, unknown>) => `[{"version":1.0,"timestampUTC":${JSON.stringify(formatTimestampUTC(now))},"status":${JSON.stringify(s)}}]`;
  if (report.substatus === undefined) return envelope(status);

  const entries = report.substatus.map(renderSubstatus);
  status['substatus'] = entries;
  let text = envelope(status);
  if (Buffer.byteLength(text) <= STATUS_LIMITS.fileBytes) return text;

  // Too big: keep the most severe entries that fit next to one summary entry, in their original order.
  const base = Buffer.byteLength(envelope({ ...status, substatus: [] }));
  const order = entries.map((e, i) => ({ e, i, size: Buffer.byteLength(JSON.stringify(e)) + 1 }));
  order.sort((a, b) => severity(b.e.status) - severity(a.e.status) || a.i - b.i);
  const summaryReserve = 2 * 1024;
  let used = base + summaryReserve;
  const kept = new Set<number>();
  for (const item of order) {
    if (used + item.size > STATUS_LIMITS.fileBytes) break;
    used += item.size;
    kept.add(item.i);
  }
  const keptInOrder = order.filter((item) => kept.has(item.i));
  for (;;) {
    const omitted = entries.filter((_, i) => !kept.has(i));
    status['substatus'] = [...entries.filter((_, i) => kept.has(i)), summarise(omitted)];
    text = envelope(status);
    // The reserve covers any ordinary summary; JSON escaping of odd names can exceed it, so drop more if needed.
    const last = keptInOrder.pop();
    if (Buffer.byteLength(text) <= STATUS_LIMITS.fileBytes || last === undefined) return text;
    kept.delete(last.i);
  }
}

type RenderedSubstatus = { name: string; status: StatusState; code: number; formattedMessage: { lang: string; message: string } };

function renderSubstatus(s: SubStatus): RenderedSubstatus {
  return {
    name: truncateChars(s.name, STATUS_LIMITS.substatusNameChars),
    status: s.status,
    code: s.code,
    formattedMessage: { lang: 'en-US', message: truncateUtf8(s.message, STATUS_LIMITS.substatusMessageBytes) },
  };
}

function summarise(omitted: RenderedSubstatus[]): RenderedSubstatus {
  const worst = omitted.reduce<StatusState>((w, e) => (severity(e.status) > severity(w) ? e.status : w), 'success');
  const counts = STATUS_STATES.map((s) => [s, omitted.filter((e) => e.status === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const names = omitted.map((e) => e.name).join(', ');
  const message = truncateUtf8(`${omitted.length} more substatus entries omitted to keep the status file small (${counts}): ${names}`, 1024);
  const code = omitted.find((e) => e.status === worst)?.code ?? 0;
  return { name: OMITTED_SUBSTATUS_NAME, status: worst, code, formattedMessage: { lang: 'en-US', message } };
}

function severity(s: StatusState): number {
  return s === 'error' ? 3 : s === 'warning' ? 2 : s === 'transitioning' ? 1 : 0;
}

function checkReport(report: HandlerStatusReport): void {
  const check = (what: string, r: { status: unknown; code: unknown; message: unknown }) => {
    if (!STATUS_STATES.includes(r.status as StatusState)) throw invalid(`${what} status ${JSON.stringify(r.status)} is not one of ${STATUS_STATES.join('|')}`);
    if (!Number.isSafeInteger(r.code)) throw invalid(`${what} code ${String(r.code)} is not an integer`);
    if (typeof r.message !== 'string') throw invalid(`${what} message is not a string`);
  };
  check('the', report);
  if (typeof report.operation !== 'string' || report.operation === '') throw invalid('operation is empty');
  report.substatus?.forEach((s, i) => {
    check(`substatus[${i}]`, s);
    if (typeof s.name !== 'string') throw invalid(`substatus[${i}] name is not a string`);
  });
}

function invalid(what: string): KvvmError {
  return new KvvmError('status-invalid', `Refusing to write an invalid status: ${what}.`);
}

export type StatusValidation = { ok: true } | { ok: false; reason: string };

/**
 * The Linux agent's judgement (parse_ext_status): an array whose element [0] has status.status in the four
 * lower-case values; formattedMessage, where present and not null, has lang and message; every non-null substatus
 * has a valid status and a well-formed formattedMessage. `code` is not checked, as the agent does not check it
 * (its own fixture has "code": "0"). An empty array or null is "no status reported" for the agent: not ok here.
 */
export function validateStatusDocument(doc: unknown): StatusValidation {
  if (!Array.isArray(doc)) return { ok: false, reason: 'the status document must be a JSON array' };
  if (doc.length === 0) return { ok: false, reason: 'the status array is empty (the agent sees no status)' };
  const first: unknown = doc[0];
  if (!isObject(first) || !('status' in first)) return { ok: false, reason: 'missing key: status' };
  const status = first['status'];
  if (!isObject(status) || !('status' in status)) return { ok: false, reason: 'missing key: status/status' };
  if (!STATUS_STATES.includes(status['status'] as StatusState)) {
    return { ok: false, reason: `status/status ${JSON.stringify(status['status'])} is not one of ${STATUS_STATES.join('|')}` };
  }
  const fm = checkFormattedMessage(status['formattedMessage'], 'formattedMessage');
  if (fm) return { ok: false, reason: fm };
  const sub = status['substatus'];
  if (sub === undefined || sub === null) return { ok: true };
  if (!Array.isArray(sub)) return { ok: false, reason: 'substatus must be an array' };
  for (const [i, entry] of sub.entries()) {
    if (entry === null) continue;
    if (!isObject(entry) || !('status' in entry)) return { ok: false, reason: `missing key: substatus[${i}]/status` };
    if (!STATUS_STATES.includes(entry['status'] as StatusState)) {
      return { ok: false, reason: `substatus[${i}]/status ${JSON.stringify(entry['status'])} is not one of ${STATUS_STATES.join('|')}` };
    }
    const sfm = checkFormattedMessage(entry['formattedMessage'], `substatus[${i}]/formattedMessage`);
    if (sfm) return { ok: false, reason: sfm };
  }
  return { ok: true };
}

function checkFormattedMessage(fm: unknown, where: string): string | undefined {
  if (fm === undefined || fm === null) return undefined;
  if (!isObject(fm)) return `${where} must be an object`;
  if (!('lang' in fm)) return `missing key: ${where}/lang`;
  if (!('message' in fm)) return `missing key: ${where}/message`;
  return undefined;
}

/** What the agent would make of a status file: the state it reports, and why. */
export type StatusFileView =
  | { state: 'missing'; agentStatus: 'transitioning' }
  | { state: 'invalid'; agentStatus: 'error'; reason: string }
  | {
      state: 'valid';
      agentStatus: StatusState;
      document: unknown;
      bytes: number;
      /** Over 128 KiB: the agent would truncate messages and drop substatus entries. */
      exceedsAgentLimit: boolean;
      operation: unknown;
      code: unknown;
      message: string | undefined;
    };

/** Read and judge a status file; never throws (an unreadable file is what the agent reports as an error). */
export async function readStatus(file: string): Promise<StatusFileView> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return { state: 'missing', agentStatus: 'transitioning' };
    return { state: 'invalid', agentStatus: 'error', reason: `cannot read ${file}: ${(err as Error).message}` };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { state: 'invalid', agentStatus: 'error', reason: `${file} is not valid JSON: ${(err as Error).message.slice(0, 200)}` };
  }
  const verdict = validateStatusDocument(doc);
  if (!verdict.ok) return { state: 'invalid', agentStatus: 'error', reason: verdict.reason };
  const status = ((doc as unknown[])[0] as { status: Record<string, unknown> }).status;
  const fm = status['formattedMessage'];
  return {
    state: 'valid',
    agentStatus: status['status'] as StatusState,
    document: doc,
    bytes: Buffer.byteLength(text),
    exceedsAgentLimit: Buffer.byteLength(text) > STATUS_LIMITS.agentFileBytes,
    operation: status['operation'],
    code: status['code'] ?? 0,
    message: isObject(fm) && typeof fm['message'] === 'string' ? fm['message'] : undefined,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
