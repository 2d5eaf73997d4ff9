/**
 * Whether ordinary clients (curl, Node's https and fetch, the Azure SDKs) can reach the dev vault by its name, and
 * the commands `kvvm dev-vault` prints for a user to run. *.localhost is loopback by RFC 6761, but glibc's
 * resolver (and so Node and curl on most Linux hosts) only knows the names in /etc/hosts: when the name does not
 * resolve to this machine, the user gets the exact hosts line, and curl's --resolve form that needs no change.
 * Every command printed here is run as printed by test/devvault.clients.test.ts.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface Resolution {
  /** Every address the name resolves to is this machine's loopback. */
  loopback: boolean;
  /** What the resolver said, for the message ("127.0.0.1", "ENOTFOUND", "10.0.0.5"). */
  detail: string;
}

function isLoopbackAddress(address: string): boolean {
  return (isIP(address) === 4 && address.startsWith('127.')) || address === '::1';
}

export async function resolveHere(host: string): Promise<Resolution> {
  try {
    const addresses = (await lookup(host, { all: true })).map((a) => a.address);
    return { loopback: addresses.length > 0 && addresses.every(isLoopbackAddress), detail: addresses.join(', ') };
  } catch (err) {
    return { loopback: false, detail: (err as { code?: string }).code ?? String(err) };
  }
}

export function hostsLine(host: string): string {
  return `127.0.0.1 ${host}`;
}

/** POSIX-shell single quoting. */
function sh(text: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

export interface GuidanceInput {
  vaultUrl: string;
  host: string;
  port: number;
  /** Token audience: https://<parent domain of host>. */
  resource: string;
  imdsEndpoint: string;
  caCertFile: string;
  resolution: Resolution;
}

/** curl that fetches a token from the vault's own token endpoint and lists the secrets with it. */
function curlCommand(g: GuidanceInput, withResolve: boolean): string {
  const base = `curl -sS --cacert ${sh(g.caCertFile)}${withResolve ? ` --resolve ${g.host}:${g.port}:127.0.0.1` : ''}`;
  const tokenUrl = `${g.vaultUrl}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${g.resource}`;
  const token = `$(${base} -H Metadata:true ${sh(tokenUrl)} | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`;
  return `${base} -H "Authorization: Bearer ${token}" ${sh(`${g.vaultUrl}/secrets?api-version=7.4`)}`;
}

/** The lines printed (on stderr) once the vault is up: how to reach it, put a certificate in, and use it. */
export function guidance(g: GuidanceInput): string {
  const suffix = g.host.slice(g.host.indexOf('.') + 1);
  const lines: string[] = [];
  if (g.resolution.loopback) {
    lines.push(`kvvm dev-vault: ${g.vaultUrl} is up (${g.host} resolves to ${g.resolution.detail} here).`);
  } else {
    lines.push(
      `kvvm dev-vault: ${g.vaultUrl} is up, but ${g.host} does not resolve to this machine here (${g.resolution.detail}):`,
      '  curl, Node and the Azure SDKs cannot reach it by name until you add this line to /etc/hosts:',
      '',
      `  ${hostsLine(g.host)}`,
      '',
      `  e.g.: echo ${sh(hostsLine(g.host))} | sudo tee -a /etc/hosts`,
      '  or, for curl only, without touching /etc/hosts:',
      `  ${curlCommand(g, true)}`,
    );
  }
  lines.push(
    '',
    'Trust its CA, then put a certificate in (PFX or PEM with its key), from another shell:',
    `  export NODE_EXTRA_CA_CERTS=${sh(g.caCertFile)}`,
    `  kvvm dev-vault put web ./web.pfx --vault-url ${g.vaultUrl}`,
    ...(g.resolution.loopback ? ['List the secrets with curl:', `  ${curlCommand(g, false)}`] : []),
    'Point an extension at it: observedCertificates ["' + `${g.vaultUrl}/secrets/web` + '"], authenticationSettings',
    `  {"msiEndpoint": "${g.imdsEndpoint}"}, and the service's environment KVVM_EXTRA_VAULT_SUFFIXES=${suffix} NODE_EXTRA_CA_CERTS=${sh(g.caCertFile)}.`,
    '',
  );
  return lines.join('\n');
}
