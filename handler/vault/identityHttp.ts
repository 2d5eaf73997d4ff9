/**
 * The one HTTP GET kvvm makes to a managed-identity endpoint (IMDS, Azure Arc's HIMDS, an msiEndpoint of the
 * settings), shared by the token client (./identity.ts) and `kvvm doctor`.
 *
 * Node's http/https modules, not `fetch`: under Wine, Windows Node's fetch cannot connect at all (UNKNOWN connect)
 * while http.get works, and the shipped Windows package must run the same code the tests run.
 * - Redirects are never followed (Node's http never does): an identity request goes exactly where configured, and
 *   a 3xx is reported as an answer, not chased.
 * - No proxy and a fresh connection (agent: false): the metadata endpoint is link-local or loopback.
 * - The answer body is capped (IMDS answers are < 4 KiB): an endpoint cannot make kvvm buffer without limit.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

const IDENTITY_MAX_BODY_BYTES = 64 * 1024;

export interface IdentityAnswer {
  status: number;
  /** A response header (lower-case name), the first value when repeated. */
  header(name: string): string | undefined;
  body: string;
}

export interface IdentityGetOptions {
  headers: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
}

function headerOf(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function identityGet(url: URL, options: IdentityGetOptions): Promise<IdentityAnswer> {
  const signals = [AbortSignal.timeout(options.timeoutMs)];
  if (options.signal) signals.push(options.signal);
  const signal = AbortSignal.any(signals);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: 'GET', headers: options.headers, agent: false, signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > IDENTITY_MAX_BODY_BYTES) {
          res.destroy(Object.assign(new Error(`the answer is larger than ${IDENTITY_MAX_BODY_BYTES} bytes`), { code: 'EMSGSIZE' }));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, header: (n) => headerOf(res, n), body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      // An abort of our own time limit reads better as a timeout (and is retried like one).
      if (signal.aborted && !options.signal?.aborted) reject(Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { code: 'ETIMEDOUT', cause: err }));
      else reject(err);
    });
    req.end();
  });
}
