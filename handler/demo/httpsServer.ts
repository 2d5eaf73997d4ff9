/**
 * The demo's stand-in for nginx: a tiny HTTPS server that serves the certificate behind the store's stable link,
 * and reloads it from the link when told to (SIGHUP from the rotation's onChange command, as `nginx -s reload`
 * signals nginx). `servedThumbprint` asks it over TLS, verifying its certificate against the demo root.
 */
import { createServer, type Server } from 'node:https';
import { connect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { splitPemBlocks } from '../devvault/certFactory.js';

export interface DemoHttpsServer {
  port: number;
  reloads: number;
  /** Reads the link again and serves what it points at from the next connection on. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

async function contextFrom(linkPath: string): Promise<{ key: string; cert: string }> {
  const blocks = splitPemBlocks(await readFile(linkPath, 'utf8'));
  return {
    key: blocks
      .filter((b) => b.type.endsWith('PRIVATE KEY'))
      .map((b) => b.pem)
      .join('\n'),
    cert: blocks
      .filter((b) => b.type === 'CERTIFICATE')
      .map((b) => b.pem)
      .join('\n'),
  };
}

export async function startDemoHttpsServer(linkPath: string): Promise<DemoHttpsServer> {
  const server: Server = createServer(await contextFrom(linkPath), (_req, res) => {
    res.end('hello from the kvvm demo\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const handle: DemoHttpsServer = {
    port: (server.address() as AddressInfo).port,
    reloads: 0,
    async reload() {
      server.setSecureContext(await contextFrom(linkPath));
      handle.reloads += 1;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return handle;
}

/** SHA-1 thumbprint (upper-case hex) of the certificate the server presents, verified against `caPem`. */
export function servedThumbprint(port: number, serverName: string, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: serverName, ca: caPem }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint;
      socket.end();
      resolve(fingerprint.replace(/:/g, '').toUpperCase());
    });
    socket.once('error', reject);
  });
}
