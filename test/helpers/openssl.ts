import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Test certificates made by the real `openssl` CLI (never committed: everything lives in a mkdtemp folder).
 * Signing goes through `openssl ca` because it is the only OpenSSL 3.0 command that takes explicit
 * -startdate/-enddate, which expired and not-yet-valid certificates need.
 * Keys are cached per name within one factory so a test file pays for each RSA key once.
 */

export type KeyType = 'rsa' | 'ec';

export interface Issued {
  name: string;
  keyFile: string;
  certFile: string;
  keyPem: string;
  certPem: string;
  cert: X509Certificate;
}

export interface IssueOptions {
  /** Common name; defaults to the name. */
  cn?: string;
  keyType?: KeyType;
  /** Reuse a key by name (defaults to a key per certificate name). */
  keyName?: string;
  /** Leaves only: add EKU serverAuth+clientAuth (default true) or clientAuth only (false). */
  serverAuth?: boolean;
  notBefore?: Date;
  notAfter?: Date;
}

export interface Pkcs12Options {
  /** legacy: `-legacy` (RC2-40 certs, 3DES key, SHA-1 MAC); modern: OpenSSL 3 default (PBES2/AES-256, SHA-256 MAC). */
  mode: 'legacy' | 'modern';
  /** Default "": the openssl spelling of password-less. */
  password?: string;
  /** Leave the private key out (what a non-exportable Key Vault certificate looks like). */
  noKey?: boolean;
  /** More `openssl pkcs12 -export` options (-keypbe, -certpbe, -macalg, -iter, -nomac, ...). */
  exportArgs?: string[];
}

const DAY = 86_400_000;

export class OpensslFactory {
  private readonly keys = new Map<string, string>();
  private counter = 0;

  private constructor(readonly dir: string) {}

  static async create(): Promise<OpensslFactory> {
    return new OpensslFactory(await mkdtemp(join(tmpdir(), 'kvvm-openssl-')));
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Path of a PEM private key, generated on first use. */
  key(name: string, type: KeyType): string {
    const cacheKey = `${name}.${type}`;
    const cached = this.keys.get(cacheKey);
    if (cached) return cached;
    const file = join(this.dir, `${cacheKey}.key`);
    const args =
      type === 'rsa'
        ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file]
        : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file];
    openssl(args);
    this.keys.set(cacheKey, file);
    return file;
  }

  rootCa(name: string, options: IssueOptions = {}): Issued {
    return this.issue(name, undefined, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash', options);
  }

  intermediate(name: string, issuer: Issued, options: IssueOptions = {}): Issued {
    return this.issue(
      name,
      issuer,
      'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid',
      options,
    );
  }

  /** A leaf (CA:FALSE); self-signed when `issuer` is undefined, as Key Vault's "Self" issuer makes them. */
  leaf(name: string, issuer: Issued | undefined, options: IssueOptions = {}): Issued {
    const eku = options.serverAuth === false ? 'clientAuth' : 'serverAuth,clientAuth';
    return this.issue(
      name,
      issuer,
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${eku}\nsubjectAltName=DNS:${options.cn ?? name}.example`,
      options,
    );
  }

  /** base64 PFX of leaf (+ key) + chain, as a Key Vault application/x-pkcs12 secret value. */
  pkcs12(leaf: Issued, chain: Issued[], options: Pkcs12Options): string {
    const out = join(this.dir, `p12-${++this.counter}.p12`);
    const args = ['pkcs12', '-export', '-in', leaf.certFile, '-out', out, '-passout', `pass:${options.password ?? ''}`];
    if (options.noKey) args.push('-nokeys');
    else args.push('-inkey', leaf.keyFile);
    if (chain.length > 0) {
      const chainFile = join(this.dir, `chain-${this.counter}.pem`);
      writeFileSync(chainFile, chain.map((c) => c.certPem).join(''));
      args.push('-certfile', chainFile);
    }
    if (options.mode === 'legacy') args.push('-legacy');
    args.push(...(options.exportArgs ?? []));
    openssl(args);
    return readFileSync(out).toString('base64');
  }

  /** `openssl pkcs12 -info`-style description, to prove which algorithms a PFX really uses. */
  pkcs12Info(base64: string, password = ''): string {
    const file = join(this.dir, `info-${++this.counter}.p12`);
    writeFileSync(file, Buffer.from(base64, 'base64'));
    // -info writes the algorithm lines to stderr.
    const run = spawnSync('openssl', ['pkcs12', '-info', '-noout', '-legacy', '-in', file, '-passin', `pass:${password}`], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`openssl pkcs12 -info failed: ${run.stderr}`);
    return `${run.stdout}${run.stderr}`;
  }

  /** The key as traditional "RSA PRIVATE KEY" / "EC PRIVATE KEY" PEM. */
  traditionalKey(issued: Issued, type: KeyType): string {
    // `openssl ec` writes SEC1 ("EC PRIVATE KEY") by default; `openssl rsa` needs -traditional for PKCS#1.
    return openssl(type === 'rsa' ? ['rsa', '-in', issued.keyFile, '-traditional'] : ['ec', '-in', issued.keyFile]);
  }

  /** The key encrypted with a password: PKCS#8 "ENCRYPTED PRIVATE KEY", or legacy PEM with Proc-Type headers. */
  encryptedKey(issued: Issued, form: 'pkcs8' | 'traditional-rsa' = 'pkcs8'): string {
    return form === 'pkcs8'
      ? openssl(['pkcs8', '-topk8', '-in', issued.keyFile, '-passout', 'pass:secret', '-v2', 'aes-256-cbc'])
      : openssl(['rsa', '-in', issued.keyFile, '-traditional', '-aes256', '-passout', 'pass:secret']);
  }

  private issue(name: string, issuer: Issued | undefined, extensions: string, options: IssueOptions): Issued {
    const keyType = options.keyType ?? 'rsa';
    const keyFile = this.key(options.keyName ?? name, keyType);
    const id = `${name}-${++this.counter}`;
    const caDir = join(this.dir, `ca-${id}`);
    mkdirSync(caDir);
    writeFileSync(join(caDir, 'index.txt'), '');
    const config = join(caDir, 'ca.cnf');
    writeFileSync(
      config,
      [
        '[ ca ]',
        'default_ca = kvvm_ca',
        '[ kvvm_ca ]',
        `database = ${join(caDir, 'index.txt')}`,
        `new_certs_dir = ${caDir}`,
        'default_md = sha256',
        'policy = kvvm_policy',
        'unique_subject = no',
        'copy_extensions = none',
        'email_in_dn = no',
        'rand_serial = yes',
        '[ kvvm_policy ]',
        'commonName = supplied',
        '[ req ]',
        'distinguished_name = kvvm_dn',
        '[ kvvm_dn ]',
        '[ kvvm_ext ]',
        extensions,
        '',
      ].join('\n'),
    );
    const csr = join(caDir, 'req.csr');
    openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${options.cn ?? name}`, '-config', config, '-out', csr]);
    const certFile = join(this.dir, `${id}.crt`);
    const notBefore = options.notBefore ?? new Date(Date.now() - DAY);
    const notAfter = options.notAfter ?? new Date(Date.now() + 30 * DAY);
    const args = [
      'ca',
      '-batch',
      '-notext',
      '-config',
      config,
      '-in',
      csr,
      '-out',
      certFile,
      '-extensions',
      'kvvm_ext',
      '-startdate',
      asn1Time(notBefore),
      '-enddate',
      asn1Time(notAfter),
    ];
    if (issuer) args.push('-cert', issuer.certFile, '-keyfile', issuer.keyFile);
    else args.push('-selfsign', '-keyfile', keyFile);
    openssl(args);
    const certPem = readFileSync(certFile, 'utf8');
    return { name, keyFile, certFile, keyPem: readFileSync(keyFile, 'utf8'), certPem, cert: new X509Certificate(certPem) };
  }
}

/** GeneralizedTime as `openssl ca -startdate` takes it: YYYYMMDDHHMMSSZ. */
function asn1Time(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

function openssl(args: string[]): string {
  try {
    return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string };
    throw new Error(`openssl ${args[0] ?? ''} failed: ${e.stderr ?? String(err)}`, { cause: err });
  }
}

/** Concatenates PEM parts in the given order: how users upload chains (leaf first, root first, anything). */
export function pemSecret(...parts: string[]): string {
  return parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}

/** Runs `openssl <args>` on stdin text; for tests that read the store's files back with openssl. */
export function opensslRead(args: string[], input: string | Buffer): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}
