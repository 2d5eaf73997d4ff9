/**
 * `kvvm dev-vault put <name> <file.pfx|file.pem> --vault-url U [--password P] [--ca FILE]`: imports a certificate
 * into a running dev vault through its certificates API (POST /certificates/<name>/import), with a token from the
 * token endpoint the dev vault also serves on its own port. TLS is verified against Node's roots plus
 * NODE_EXTRA_CA_CERTS plus --ca (the caCertFile the dev vault printed); *.localhost names resolve to loopback
 * (RFC 6761) as in kvvm's vault client, so `put` works before the hosts line is applied.
 */
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { isLoopbackName, loopbackLookup, trustedCas } from '../vault/transport.js';
import { IMDS_TOKEN_PATH } from './imds.js';

export const PUT_USAGE = `Usage: kvvm dev-vault put <name> <file.pfx|file.p12|file.pem> --vault-url URL [--password P] [--ca FILE]

Imports the certificate (with its private key) into the running dev vault as Key Vault does: a certificate
<name> and its secret <name> (PFX: application/x-pkcs12, PEM: application/x-pem-file). Prints the secret URL to
put in observedCertificates. --ca is the caCertFile the dev vault printed (or set NODE_EXTRA_CA_CERTS to it).
`;

const MAX_FILE_BYTES = 24 * 1024;

interface JsonReply {
  status: number;
  body: Record<string, unknown>;
}

function httpsJson(url: URL, agent: Agent, options: { method: string; headers: Record<string, string>; body?: string }): Promise<JsonReply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method, headers: options.headers, agent, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) });
        } catch {
          reject(new Error(`${url.origin} answered ${res.statusCode} with a body that is not JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within 30 s`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

function messageOf(reply: JsonReply): string {
  const err = reply.body['error'];
  if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') return (err as { message: string }).message;
  if (typeof reply.body['error_description'] === 'string') return reply.body['error_description'];
  return `HTTP ${reply.status}`;
}

export async function runPut(argv: string[], io: { stdout: (s: string) => void; env: Readonly<Record<string, string | undefined>> }): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { 'vault-url': { type: 'string' }, password: { type: 'string' }, ca: { type: 'string' } },
  });
  const [name, file, ...extra] = positionals;
  if (name === undefined || file === undefined || extra.length > 0) throw new Error('put takes a certificate name and one file');
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) throw new Error(`"${name}" is not a Key Vault certificate name (1-127 letters, digits and dashes)`);
  const rawUrl = values['vault-url'];
  if (rawUrl === undefined) throw new Error('--vault-url is required: the vaultUrl the dev vault printed');
  let vault: URL;
  try {
    vault = new URL(rawUrl);
  } catch {
    throw new Error(`--vault-url "${rawUrl}" is not a URL`);
  }
  if (vault.protocol !== 'https:') throw new Error(`--vault-url must be https:// (got ${vault.protocol})`);
  const bytes = await readFile(file);
  if (bytes.length > MAX_FILE_BYTES) throw new Error(`${file} is ${bytes.length} bytes; a certificate secret is at most 25 KB`);
  const ext = extname(file).toLowerCase();
  const isPem = ext === '.pem' || bytes.includes('-----BEGIN ');
  if (!isPem && ext !== '.pfx' && ext !== '.p12') throw new Error(`${file}: expected a .pfx/.p12 (PKCS#12) or .pem file`);
  const value = isPem ? bytes.toString('utf8') : bytes.toString('base64');

  const ca = values.ca === undefined ? undefined : trustedCas([await readFile(values.ca, 'utf8')], io.env);
  const agent = new Agent({ ...(ca ? { ca } : {}), ...(isLoopbackName(vault.hostname) ? { lookup: loopbackLookup } : {}) });
  try {
    const resource = `https://${vault.hostname.slice(vault.hostname.indexOf('.') + 1)}`;
    const tokenUrl = new URL(`${IMDS_TOKEN_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}`, vault.origin);
    const token = await httpsJson(tokenUrl, agent, { method: 'GET', headers: { Metadata: 'true' } });
    if (token.status !== 200 || typeof token.body['access_token'] !== 'string') throw new Error(`no token from ${tokenUrl.origin}: ${messageOf(token)}`);
    const body = JSON.stringify({
      value,
      ...(values.password !== undefined ? { pwd: values.password } : {}),
      policy: { secret_props: { contentType: isPem ? 'application/x-pem-file' : 'application/x-pkcs12' } },
    });
    const imported = await httpsJson(new URL(`/certificates/${name}/import?api-version=7.4`, vault.origin), agent, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token.body['access_token']}`, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) },
      body,
    });
    if (imported.status !== 200 || typeof imported.body['sid'] !== 'string') throw new Error(`the vault refused the import: ${messageOf(imported)}`);
    const sid = imported.body['sid'];
    io.stdout(`imported ${name} version ${sid.slice(sid.lastIndexOf('/') + 1)}\nsecret URL for observedCertificates: ${vault.origin}/secrets/${name}\n`);
    return 0;
  } finally {
    agent.destroy();
  }
}
