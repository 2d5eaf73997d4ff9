import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { CertificateMaterial } from './material.js';
import { notAfterOf, notBeforeOf, thumbprintOf } from './parse.js';
import type { Reason } from '../reasons.js';

const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_ANY_EKU = '2.5.29.37.0';

/** Deepest chain followed; real chains have 2–4 links, so this only stops loops and hostile inputs. */
const MAX_CHAIN_DEPTH = 10;

/**
 * True when the certificate's Extended Key Usage lists serverAuth (or anyExtendedKeyUsage).
 * Node 20's `X509Certificate.keyUsage` returns the EKU OIDs (undefined without the extension). A certificate
 * without EKU is usable for anything, but the 4.x rule "validate chains of server-auth certificates" is read as
 * certificates explicitly marked for it, so those return false.
 */
export function hasServerAuthEku(cert: X509Certificate): boolean {
  const ekus = cert.keyUsage as string[] | undefined;
  return Array.isArray(ekus) && (ekus.includes(OID_SERVER_AUTH) || ekus.includes(OID_ANY_EKU));
}

/** The reasons a server-auth chain check fails with (reasons.ts). */
type ChainReason = Extract<Reason, `chain-${string}`>;

export type ChainResult = { ok: true } | { ok: false; reason: ChainReason; message: string; fix: string };

export interface ValidateChainOptions {
  /** Indexed on first use and the index kept while the array lives: pass the same array to every check. */
  trustedRoots: readonly X509Certificate[];
  now: Date;
}

/**
 * The trusted roots looked up by name instead of scanned. A VM trusts ~170 roots (Node's and the system bundle), and
 * a scan asked OpenSSL whether each one issued the certificate: 57.5-79.1 us per checked certificate for the scan
 * alone, against 28.8-40.0 us for the whole check with the index, signature (~27 us) included (Node 22, 168 roots,
 * 2,000 checks, two runs). The index asks only the roots whose subject is the certificate's issuer.
 */
interface RootIndex {
  /** By SHA-256 fingerprint: is this exact certificate a trusted root? */
  byFingerprint: Map<string, X509Certificate[]>;
  /** By normalised subject name: the roots that may have issued a certificate with that issuer name. */
  bySubject: Map<string, X509Certificate[]>;
}

const rootIndexes = new WeakMap<readonly X509Certificate[], RootIndex>();

/**
 * A distinguished name as OpenSSL compares it (X509_NAME_cmp on the canonical encoding: case and runs of white space
 * do not count, nor the string type), from Node's one-attribute-per-line text. It may join names OpenSSL keeps apart
 * (it lowercases more than ASCII), and checkIssued decides among the roots it finds; a name it could miss (control
 * characters, printed escaped) is caught by validateChain's scan of every root when nothing in the secret issued
 * the certificate either.
 */
function nameKey(name: string): string {
  return name
    .toLowerCase()
    .replace(/\\ /g, ' ')
    .split('\n')
    .map((line) => {
      const eq = line.indexOf('=');
      return `${line.slice(0, eq + 1).trim()}${line
        .slice(eq + 1)
        .trim()
        .replace(/\s+/g, ' ')}`;
    })
    .join('\n');
}

function push(map: Map<string, X509Certificate[]>, key: string, cert: X509Certificate): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [cert]);
  else list.push(cert);
}

function rootIndex(roots: readonly X509Certificate[]): RootIndex {
  let index = rootIndexes.get(roots);
  if (index === undefined) {
    index = { byFingerprint: new Map(), bySubject: new Map() };
    for (const root of roots) {
      push(index.byFingerprint, root.fingerprint256, root);
      push(index.bySubject, nameKey(root.subject), root);
    }
    rootIndexes.set(roots, index);
  }
  return index;
}

/**
 * Builds leaf → intermediates (from the secret) → a trusted root and checks each link: validity at `now`,
 * issuer name + signature, CA basic constraint on every issuer. A self-signed leaf is trusted only when it is
 * itself one of `trustedRoots`. Validity is checked before trust so an expired certificate always says "expired".
 */
export function validateChain(material: CertificateMaterial, options: ValidateChainOptions): ChainResult {
  const { now } = options;
  const roots = rootIndex(options.trustedRoots);
  const intermediates = [...material.chain];
  let current = material.leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
    const timeProblem = checkTime(current, now);
    if (timeProblem) return timeProblem;
    const raw = current.raw;
    if (roots.byFingerprint.get(current.fingerprint256)?.some((root) => root.raw.equals(raw))) return { ok: true };

    const root = roots.bySubject.get(nameKey(current.issuer))?.find((r) => safeCheckIssued(current, r));
    if (root) return endAtRoot(current, root, now);

    const index = intermediates.findIndex((c) => c !== current && safeCheckIssued(current, c));
    if (index < 0) {
      // A name written so that the key misses it: every root is asked before the chain is called incomplete.
      const scanned = options.trustedRoots.find((r) => safeCheckIssued(current, r));
      if (scanned) return endAtRoot(current, scanned, now);
      // Not checkIssued(current, current): OpenSSL's issuer check wants keyCertSign, which self-signed Key Vault
      // leaves lack (KU digitalSignature, keyEncipherment).
      if (current.subject === current.issuer && safeVerify(current, current)) {
        return fail(
          'chain-untrusted-root',
          `The chain of "${name(current)}" ends at "${name(current)}" (${thumbprintOf(current)}), which is not a trusted root.`,
          'Issue the certificate from a CA the VM trusts, or add the root to the trusted roots (system bundle or NODE_EXTRA_CA_CERTS).',
        );
      }
      return fail(
        'chain-incomplete',
        `The issuer of "${name(current)}" ("${current.issuer.replace(/\n/g, ', ')}") is neither in the secret nor a trusted root.`,
        'Import the certificate into Key Vault with its full chain (intermediates included).',
      );
    }
    const issuer = intermediates.splice(index, 1)[0] as X509Certificate;
    if (!safeVerify(current, issuer)) return signatureFailure(current, issuer);
    if (!issuer.ca) return notCa(issuer);
    current = issuer;
  }
  return fail(
    'chain-incomplete',
    `The chain of "${name(material.leaf)}" is longer than ${MAX_CHAIN_DEPTH} certificates.`,
    'Import the certificate into Key Vault with its real chain.',
  );
}

/** The last link: `root` (a trusted root) issued `cert`. */
function endAtRoot(cert: X509Certificate, root: X509Certificate, now: Date): ChainResult {
  if (!safeVerify(cert, root)) return signatureFailure(cert, root);
  if (!root.ca) return notCa(root);
  return checkTime(root, now) ?? { ok: true };
}

function checkTime(cert: X509Certificate, now: Date): ChainResult | undefined {
  const notBefore = notBeforeOf(cert);
  const notAfter = notAfterOf(cert);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    return fail('chain-expired', `The validity dates of "${name(cert)}" cannot be read.`, 'Re-issue the certificate.');
  }
  if (now.getTime() > notAfter.getTime()) {
    return fail(
      'chain-expired',
      `"${name(cert)}" (${thumbprintOf(cert)}) expired on ${notAfter.toISOString()}.`,
      'Renew the certificate in Key Vault (or the expired issuer) and let kvvm pick up the new version.',
    );
  }
  if (now.getTime() < notBefore.getTime()) {
    return fail(
      'chain-not-yet-valid',
      `"${name(cert)}" (${thumbprintOf(cert)}) is not valid before ${notBefore.toISOString()}.`,
      'Check the VM clock, or wait until the certificate becomes valid.',
    );
  }
  return undefined;
}

function signatureFailure(cert: X509Certificate, issuer: X509Certificate): ChainResult {
  return fail(
    'chain-signature',
    `The signature of "${name(cert)}" does not verify with the key of "${name(issuer)}".`,
    'Import the certificate into Key Vault with the chain that really issued it.',
  );
}

function notCa(issuer: X509Certificate): ChainResult {
  return fail(
    'chain-not-ca',
    `"${name(issuer)}" issued a certificate of the chain but is not a CA (basicConstraints CA:FALSE or absent).`,
    'Issue the certificate from a real CA certificate.',
  );
}

function fail(reason: ChainReason, message: string, fix: string): ChainResult {
  return { ok: false, reason, message, fix };
}

function name(cert: X509Certificate): string {
  return cert.subject.replace(/\n/g, ', ');
}

function safeCheckIssued(subject: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return subject.checkIssued(issuer);
  } catch {
    return false;
  }
}

function safeVerify(subject: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return subject.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export interface LoadTrustedRootsOptions {
  /** Defaults to the Debian/Ubuntu bundle; other distributions keep theirs elsewhere. */
  systemBundlePath?: string;
  /** Told about unreadable files and unparseable certificates, which are skipped. */
  onWarning?: (message: string) => void;
}

/**
 * The roots a VM trusts: Node's bundled Mozilla roots, the system bundle (where operators add private CAs) and the
 * NODE_EXTRA_CA_CERTS file. Duplicates (most roots are in both bundles) are dropped by their base64 text before
 * parsing, so each root is parsed once.
 */
export function loadTrustedRoots(env: NodeJS.ProcessEnv, options: LoadTrustedRootsOptions = {}): X509Certificate[] {
  const warn = options.onWarning ?? (() => undefined);
  const texts: string[] = [...rootCertificates];
  const files = [options.systemBundlePath ?? SYSTEM_BUNDLE];
  const extra = env['NODE_EXTRA_CA_CERTS'];
  if (extra !== undefined && extra.trim() !== '') files.push(extra.trim());
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!(file === (options.systemBundlePath ?? SYSTEM_BUNDLE) && code === 'ENOENT')) warn(`cannot read trusted roots from ${file}: ${code ?? String(err)}`);
      continue;
    }
    texts.push(...(text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []));
  }
  const seen = new Set<string>();
  const roots: X509Certificate[] = [];
  for (const pem of texts) {
    const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
    if (seen.has(body)) continue;
    seen.add(body);
    try {
      roots.push(new X509Certificate(Buffer.from(body, 'base64')));
    } catch {
      warn('skipped an unreadable certificate in the trusted roots');
    }
  }
  return roots;
}
