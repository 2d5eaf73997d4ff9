import { KvvmError } from '../errors.js';

/** One `-----BEGIN <label>-----` … `-----END <label>-----` block, decoded. */
export interface PemBlock {
  label: string;
  /** Header lines inside the block ("Proc-Type: 4,ENCRYPTED"): legacy OpenSSL encryption lives there. */
  headers: string[];
  der: Buffer;
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]{1,64})-----$/;
const END = /^-----END ([A-Z0-9 ]{1,64})-----$/;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const HEADER_LINE = /^[A-Za-z][A-Za-z0-9-]*: ?.*$/;

/**
 * Splits PEM text into blocks with a line scanner rather than one big regular expression, so that hostile input
 * (megabytes without newlines, unterminated blocks) costs linear time and never backtracks.
 * Text outside blocks is ignored on purpose: `openssl pkcs12` output carries "Bag Attributes" lines there and
 * users upload such files. Text INSIDE a block must be base64 (or RFC 1421 headers before the body).
 */
export function splitPemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const lines = text.split(/\r?\n/);
  let open: { label: string; headers: string[]; body: string[]; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (open === undefined) {
      const begin = BEGIN.exec(line);
      if (begin) open = { label: begin[1] ?? '', headers: [], body: [], line: i + 1 };
      else if (line.startsWith('-----BEGIN') || line.startsWith('-----END')) {
        throw malformed(`line ${i + 1} is a broken PEM boundary`);
      }
      continue;
    }
    const end = END.exec(line);
    if (end) {
      if (end[1] !== open.label) {
        throw malformed(`the "${open.label}" block opened on line ${open.line} is closed by an END "${end[1] ?? ''}" line`);
      }
      blocks.push({ label: open.label, headers: open.headers, der: decodeBody(open.body.join(''), open.label, open.line) });
      open = undefined;
      continue;
    }
    if (line.startsWith('-----')) throw malformed(`line ${i + 1} starts a PEM boundary inside the "${open.label}" block`);
    if (line === '') continue;
    if (open.body.length === 0 && HEADER_LINE.test(line) && !BASE64_LINE.test(line)) {
      open.headers.push(line);
      continue;
    }
    if (!BASE64_LINE.test(line)) throw malformed(`line ${i + 1} inside the "${open.label}" block is not base64`);
    open.body.push(line);
  }
  if (open !== undefined) throw malformed(`the "${open.label}" block opened on line ${open.line} has no END line`);
  return blocks;
}

function decodeBody(body: string, label: string, line: number): Buffer {
  if (body.length === 0 || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) {
    throw malformed(`the "${label}" block opened on line ${line} does not hold valid base64`);
  }
  return Buffer.from(body, 'base64');
}

function malformed(detail: string): KvvmError {
  return new KvvmError('malformed-pem', `The certificate secret is not valid PEM: ${detail}.`, {
    fix: 'Upload the certificate again in Key Vault (PEM: an unencrypted PKCS#8 "PRIVATE KEY" block followed by the certificates).',
  });
}

/** DER → PEM with 64-character lines (the layout OpenSSL and Key Vault write). */
export function derToPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Strict base64 as Key Vault writes it (no line breaks, `=` padding). Surrounding whitespace is tolerated because
 * secrets set by hand from a file often end in a newline; anything else returns undefined.
 */
export function decodeStrictBase64(value: string): Buffer | undefined {
  const trimmed = value.trim();
  if (trimmed.length === 0 || trimmed.length % 4 !== 0) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) return undefined;
  return Buffer.from(trimmed, 'base64');
}
