/** A plain-text table for the demo's live view (pure, so it is tested without a terminal). */
export interface DemoRow {
  certificate: string;
  version: string;
  thumbprint: string;
  expires: string;
  state: string;
}

const HEADERS: DemoRow = { certificate: 'CERTIFICATE', version: 'VERSION', thumbprint: 'THUMBPRINT', expires: 'EXPIRES', state: 'STATE' };
const COLUMNS: (keyof DemoRow)[] = ['certificate', 'version', 'thumbprint', 'expires', 'state'];

export function renderTable(rows: readonly DemoRow[]): string {
  const all = [HEADERS, ...rows];
  const widths = COLUMNS.map((c) => Math.max(...all.map((r) => r[c].length)));
  const line = (r: DemoRow): string =>
    COLUMNS.map((c, i) => r[c].padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(HEADERS), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}
