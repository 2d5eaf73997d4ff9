/**
 * What must never reach a status file, a telemetry event or a log, and the functions that keep it out.
 *
 * - `redactSecrets`: anything shaped like key material or a token (PEM blocks, "Bearer …", JWTs, long base64).
 * - `ProtectedValues`: the values that arrived in protectedSettings. The agent encrypts them for a reason, so they
 *   are scrubbed from every status, event and log line in the forms kvvm's messages could carry them: as written,
 *   JSON-quoted (how settings problems quote a value, also cut at 117 characters), and for URLs their normalised
 *   href, origin and host (not the documented public IMDS/Arc hosts, which kvvm's own fixes name). Strings shorter than 4 characters are scrubbed only in their quoted form (replacing
 *   "a" everywhere would garble every message); numbers of 4 digits or more are scrubbed as written, booleans not.
 * - `remoteDetail`: a message that came from the network (a vault or identity error body) reduced to a size-capped,
 *   single-line, redacted text, with any token the process holds removed.
 */
const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g;
const JWT = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi;
const LONG_BASE64 = /[A-Za-z0-9+/]{200,}={0,2}/g;

const PROTECTED_PLACEHOLDER = '[protected setting]';

/** Replaces anything that looks like key material or a token. */
export function redactSecrets(text: string): string {
  return text.replace(PEM_BLOCK, '[redacted PEM]').replace(BEARER, '$1[redacted token]').replace(JWT, '[redacted token]').replace(LONG_BASE64, '[redacted base64]');
}

/** Replaces every occurrence of each needle (longest first, so a value's prefix never survives its whole). */
function replaceAll(text: string, needles: readonly string[], by: string): string {
  let out = text;
  for (const n of needles) if (n !== '' && out.includes(n)) out = out.split(n).join(by);
  return out;
}

const PUBLIC_IDENTITY_HOSTS = new Set(['169.254.169.254', 'localhost:40342', '127.0.0.1:40342']);

function formsOf(value: string): string[] {
  const quoted = JSON.stringify(value);
  const forms = [quoted, quoted.slice(0, 117), quoted.slice(1, -1)];
  if (value.trim().length >= 4) forms.push(value, value.trim());
  try {
    const url = new URL(value.trim());
    forms.push(url.href);
    // The documented public endpoints (IMDS, Arc) appear in kvvm's own fixes and carry nothing secret.
    if (!PUBLIC_IDENTITY_HOSTS.has(url.host)) for (const f of [url.origin, url.host]) if (f.length >= 4 && f !== 'null') forms.push(f);
  } catch {
    // not a URL
  }
  return forms.filter((f) => f.length >= 3 || f === quoted);
}

export class ProtectedValues {
  private needles: string[] = [];

  /** Every string leaf of the decrypted protected settings (object keys are not secret: they name the setting). */
  add(protectedSettings: unknown): void {
    const found = new Set(this.needles);
    const walk = (v: unknown, depth: number): void => {
      if (typeof v === 'string') for (const f of formsOf(v)) found.add(f);
      else if (typeof v === 'number' && String(v).length >= 4) found.add(String(v));
      else if (depth < 32 && v !== null && typeof v === 'object') for (const child of Object.values(v)) walk(child, depth + 1);
    };
    walk(protectedSettings, 0);
    this.needles = [...found].sort((a, b) => b.length - a.length);
  }

  /** Protected values and token/key shapes removed. Bound, so it can be passed around as a function. */
  readonly apply = (text: string): string => redactSecrets(replaceAll(text, this.needles, PROTECTED_PLACEHOLDER));
}

/**
 * A log record with every string redacted (redactSecrets, then `extra`) and string values under key names that say
 * secret (token, secret, password, private, …key) replaced whole; nested objects to depth 4.
 */
export function redactRecord(value: unknown, extra: ((text: string) => string) | undefined, depth = 0): unknown {
  if (typeof value === 'string') return extra ? extra(redactSecrets(value)) : redactSecrets(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redactRecord(v, extra, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = /token|secret|password|private|key$/i.test(k) && typeof v === 'string' ? '[redacted]' : redactRecord(v, extra, depth + 1);
  }
  return out;
}

/** Every string inside `value` passed through `fn` (objects and arrays copied; other values kept). */
export function mapStrings<T>(value: T, fn: (text: string) => string): T {
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return fn(v);
    if (depth > 16 || v === null || typeof v !== 'object' || v instanceof Date) return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, depth + 1)]));
  };
  return walk(value, 0) as T;
}

export const REMOTE_DETAIL_MAX_CHARS = 200;

/**
 * A remote party's message made safe for a status: tokens the process holds removed, token/key shapes redacted,
 * control characters and line breaks collapsed, cut to REMOTE_DETAIL_MAX_CHARS.
 */
export function remoteDetail(text: string, knownTokens: Iterable<string> = []): string {
  const tokens = [...knownTokens].filter((t) => t.length >= 8).sort((a, b) => b.length - a.length);
  const flat = redactSecrets(replaceAll(text, tokens, '[redacted token]'))
    // eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/\s{2,}/g, ' ')
    .trim();
  return flat.length > REMOTE_DETAIL_MAX_CHARS ? `${flat.slice(0, REMOTE_DETAIL_MAX_CHARS - 1)}…` : flat;
}
