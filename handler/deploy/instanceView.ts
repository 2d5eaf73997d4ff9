/**
 * The extension instance view as an operator reads it (pure): the top status and one row per certificate
 * substatus. ARM reports a handler substatus named N with status S as code "ComponentStatus/N/S"; kvvm names
 * substatuses "<vault>/<certificate>", so the name may itself contain a slash.
 */
import type { InstanceViewStatus, VirtualMachineExtensionInstanceView } from '@azure/arm-compute';

interface StatusLine {
  code: string;
  level: string;
  displayStatus: string;
  message: string;
  time?: string;
}

interface CertificateRow {
  name: string;
  status: string;
  message: string;
}

export interface ExtensionStatusView {
  /** "VM myVM" or "VMSS myScaleSet instance 0". */
  target: string;
  extension: string;
  type?: string;
  typeHandlerVersion?: string;
  provisioningState?: string;
  statuses: StatusLine[];
  certificates: CertificateRow[];
}

function line(s: InstanceViewStatus): StatusLine {
  const out: StatusLine = { code: s.code ?? '', level: s.level ?? '', displayStatus: s.displayStatus ?? '', message: s.message ?? '' };
  if (s.time !== undefined) out.time = s.time instanceof Date ? s.time.toISOString() : String(s.time);
  return out;
}

function certificateRow(s: InstanceViewStatus): CertificateRow {
  const code = s.code ?? '';
  const m = /^ComponentStatus\/(.+)\/([^/]+)$/.exec(code);
  if (m) return { name: m[1] ?? code, status: m[2] ?? '', message: s.message ?? '' };
  return { name: code || '(unnamed)', status: (s.displayStatus ?? s.level ?? '').toString(), message: s.message ?? '' };
}

export function buildStatusView(
  target: string,
  extension: string,
  instanceView: VirtualMachineExtensionInstanceView | undefined,
  extra: { provisioningState?: string | undefined; type?: string | undefined; typeHandlerVersion?: string | undefined } = {},
): ExtensionStatusView {
  const view: ExtensionStatusView = {
    target,
    extension,
    statuses: (instanceView?.statuses ?? []).map(line),
    certificates: (instanceView?.substatuses ?? []).map(certificateRow),
  };
  const type = extra.type ?? instanceView?.type;
  const thv = extra.typeHandlerVersion ?? instanceView?.typeHandlerVersion;
  if (type !== undefined) view.type = type;
  if (thv !== undefined) view.typeHandlerVersion = thv;
  if (extra.provisioningState !== undefined) view.provisioningState = extra.provisioningState;
  return view;
}

/** The messages worth showing when provisioning failed: error-level statuses first, then any with a message. */
export function failureMessages(view: ExtensionStatusView): string[] {
  const errors = view.statuses.filter((s) => s.level === 'Error' || /failed|error/i.test(s.code));
  const chosen = errors.length > 0 ? errors : view.statuses;
  const msgs = chosen.map((s) => s.message).filter((m) => m !== '');
  for (const c of view.certificates) if (/error|failed/i.test(c.status) && c.message) msgs.push(`${c.name}: ${c.message}`);
  return msgs;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatStatusView(view: ExtensionStatusView): string {
  const out: string[] = [];
  const kind = view.type ? ` (${view.type}${view.typeHandlerVersion ? ` ${view.typeHandlerVersion}` : ''})` : '';
  out.push(`${view.target}, extension ${view.extension}${kind}`);
  if (view.provisioningState) out.push(`provisioning: ${view.provisioningState}`);
  if (view.statuses.length === 0) out.push('status: (no instance view reported yet: the guest agent has not reported this extension)');
  for (const s of view.statuses) {
    out.push(`status: ${s.displayStatus || s.code}${s.level ? ` [${s.level}]` : ''}${s.time ? ` at ${s.time}` : ''}${s.message ? ` — ${s.message}` : ''}`);
  }
  if (view.certificates.length > 0) {
    out.push('');
    out.push(table([['CERTIFICATE', 'STATUS', 'MESSAGE'], ...view.certificates.map((c) => [c.name, c.status, c.message])]));
  }
  return out.join('\n') + '\n';
}
