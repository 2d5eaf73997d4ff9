/**
 * A hostile vault look-alike on loopback, and the "evil" servers it points clients at.
 *
 * - `HostileVault`: an HTTPS server for https://kvvm.localhost:PORT that forwards every request to a real dev vault
 *   (so challenges, tokens, listings and secrets are the dev vault's own) and rewrites the dev vault's origin to
 *   its own in the answers, like any vault. `setMode` turns it hostile: answer a listing (versions or secrets) with a
 *   `nextLink` of the test's choice, or any request with a redirect, or an error body echoing the bearer token.
 * - `EvilServers`: an HTTPS server (certificate valid for evil.localhost AND kvvm.localhost, so a client that went
 *   there would complete TLS and send its headers) and a plain HTTP server. Both record every TCP connection and
 *   every Authorization header that reached them; tests assert zero.
 *
 * Both use a test CA (not the dev vault's): trust it with `caPem` / `caFile`.
 */
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createCa, issueCertificate, type IssuedCertificate } from '../../handler/devvault/certFactory.js';
import type { DevVault } from '../../handler/devvault/server.js';

export type HostileMode =
  { kind: 'pass' } | { kind: 'next-link'; nextLink: string } | { kind: 'redirect'; location: string; status?: number } | { kind: 'echo-token'; status: number };

export interface HostileVault {
  vaultUrl: string;
  setMode(mode: HostileMode): void;
  close(): Promise<void>;
}

export interface EvilServers {
  httpsPort: number;
  httpPort: number;
  /** TCP connections accepted (either server). */
  connections(): number;
  /** Authorization header values received (either server). */
  authorizations(): string[];
  close(): Promise<void>;
}

export interface HostileTls {
  ca: IssuedCertificate;
  caPem: string;
  /** Dev vault CA + test CA in one file, for NODE_EXTRA_CA_CERTS of a child process. */
  caFile: string;
  server: { cert: string; key: string };
}

/** A test CA and one server certificate for the look-alike and the evil servers. */
export function hostileTls(dir: string, devVault: DevVault): HostileTls {
  const ca = createCa('hostile test root');
  const leaf = issueCertificate({ issuer: ca, subjectCn: 'localhost', dnsNames: ['localhost', 'kvvm.localhost', 'evil.localhost', '127.0.0.1'] });
  const caFile = join(dir, 'hostile-trust.pem');
  writeFileSync(caFile, devVault.caCertPem + ca.certPem);
  return { ca, caPem: ca.certPem, caFile, server: { cert: leaf.certPem, key: leaf.keyPem } };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startEvilServers(tls: HostileTls): Promise<EvilServers> {
  let connections = 0;
  const authorizations: string[] = [];
  const record = (req: IncomingMessage, res: ServerResponse): void => {
    const auth = req.headers.authorization;
    if (auth !== undefined) authorizations.push(auth);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ value: [], nextLink: null }));
  };
  const https = createHttpsServer(tls.server, record);
  const http = createHttpServer(record);
  for (const s of [https, http]) s.on('connection', () => (connections += 1));
  const httpsPort = await listen(https);
  const httpPort = await listen(http);
  return {
    httpsPort,
    httpPort,
    connections: () => connections,
    authorizations: () => [...authorizations],
    close: async () => {
      await close(https);
      await close(http);
    },
  };
}

/** The listing routes of the Key Vault REST API: GET /secrets/{name}/versions and GET /secrets. */
const VERSIONS_PATH = /^\/secrets(\/[^/?]+\/versions)?\/?(\?|$)/;

export async function startHostileVault(devVault: DevVault, tls: HostileTls): Promise<HostileVault> {
  let mode: HostileMode = { kind: 'pass' };
  const upstream = new URL(devVault.vaultUrl);
  let vaultUrl = '';
  const server = createHttpsServer(tls.server, (req, res) => {
    const auth = req.headers.authorization;
    if (mode.kind === 'redirect' && auth !== undefined) {
      res.writeHead(mode.status ?? 307, { Location: mode.location });
      res.end();
      return;
    }
    if (mode.kind === 'echo-token' && auth !== undefined) {
      // What a broken gateway does: reflect the request, credentials included, in its error body.
      const body = JSON.stringify({ error: { code: 'BadGateway', message: `upstream refused request with Authorization: ${auth}` } });
      res.writeHead(mode.status, { 'Content-Type': 'application/json' });
      res.end(body);
      return;
    }
    const fwd = httpsRequest(
      { host: '127.0.0.1', port: Number(upstream.port), servername: upstream.hostname, ca: devVault.caCertPem, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          let text = Buffer.concat(chunks).toString('utf8').split(upstream.origin).join(vaultUrl);
          if (mode.kind === 'next-link' && up.statusCode === 200 && VERSIONS_PATH.test(req.url ?? '')) {
            const page = JSON.parse(text) as { value: unknown[]; nextLink: string | null };
            page.nextLink = mode.nextLink;
            text = JSON.stringify(page);
          }
          const headers = { ...up.headers };
          delete headers['content-length'];
          delete headers['transfer-encoding'];
          res.writeHead(up.statusCode ?? 502, { ...headers, 'Content-Length': Buffer.byteLength(text) });
          res.end(text);
        });
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  const port = await listen(server);
  vaultUrl = `https://kvvm.localhost:${port}`;
  return {
    vaultUrl,
    setMode: (m) => {
      mode = m;
    },
    close: () => close(server),
  };
}
