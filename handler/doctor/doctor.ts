/**
 * `kvvm doctor`: everything between this VM and its certificates, checked in the order a request travels, each
 * failure turned into the exact fix. Run it on the VM as the service's identity (root on Linux).
 *
 * Order: settings → proxy variables → per vault: DNS, TCP/TLS (honouring HTTPS_PROXY/NO_PROXY), the vault's 401
 * challenge (token audience) and its Date header (clock skew) → managed-identity endpoint and a token for the
 * configured identity (its object id read from the token's claims) → each observed secret read with the real
 * vault client → store directory writable → service running. Tokens and secret values are never printed.
 */
import { constants as fsConstants } from 'node:fs';
import { access, open, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KvvmError, describeError } from '../errors.js';
import { supervisorFor } from '../service/supervisorFor.js';
import type { KvvmConfig, ObservedCertificate } from '../settings/config.js';
import { formatProblems, parseSettings } from '../settings/index.js';
import { DEFAULT_IMDS_HOST, identityError, resolveIdentitySource } from '../vault/identity.js';
import { checkVaultUrl, createVaultReader } from '../vault/secretsClient.js';
import { trustedCas } from '../vault/transport.js';
import { challengeResource, getHead, imdsGet, noProxyMatches, openTcp, ProbeError, proxyFor, proxySummary, resolveHost, startTls, type Env } from './probes.js';
import { accessPolicyFix, decodeTokenIdentity, firewallFix, rbacFix, secretNotFoundFix, type TokenIdentity } from './token.js';

type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface DoctorCheck {
  id: 'settings' | 'proxy' | 'imds' | 'identity' | 'vault-dns' | 'vault-connect' | 'clock' | 'secret' | 'store' | 'service';
  /** What was checked: a vault host, a secret URL, a directory... */
  target: string;
  status: CheckStatus;
  message: string;
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  source: string;
  identity: { label: string; clientId?: string; objectId?: string; tenantId?: string; resourceId?: string };
  proxy: { httpsProxy?: string; noProxy?: string };
  checks: DoctorCheck[];
}

export interface DoctorOptions {
  /** The settings (public merged with protected), as the handler would read them. */
  settings: unknown;
  /** Where they came from, for the report. */
  source: string;
  env: Env;
  platform: 'linux' | 'win32';
  /** The extension folder (pid file of the service); undefined skips the service check. */
  extensionFolder?: string;
  /** Extra trusted CA PEMs (added to the roots, as the handler's KVVM vault client does). */
  tlsCa?: string[];
  /** The local clock (ms); injectable to test skew detection. */
  now?: () => number;
  timeoutMs?: number;
}

const SKEW_WARN_MS = 60_000;
const SKEW_FAIL_MS = 5 * 60_000;
const TLS_CODE = /^(CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_TLS_|ERR_SSL_|HOSTNAME_MISMATCH|ERR_SSL)/;

interface VaultProbe {
  host: string;
  reachable: boolean;
  resource: string | undefined;
}

/** Token audience for a vault host when no challenge was seen: the host without its first label. */
function defaultResource(host: string): string {
  return `https://${host.split('.').slice(1).join('.')}`;
}

function add(report: DoctorReport, check: DoctorCheck): void {
  report.checks.push(check);
}

export async function runDoctor(o: DoctorOptions): Promise<DoctorReport> {
  const now = o.now ?? Date.now;
  const timeoutMs = o.timeoutMs ?? 5000;
  const summary = proxySummary(o.env);
  const report: DoctorReport = {
    ok: false,
    source: o.source,
    identity: { label: "the VM's system-assigned identity" },
    proxy: { ...(summary.httpsProxy ? { httpsProxy: summary.httpsProxy } : {}), ...(summary.noProxy ? { noProxy: summary.noProxy } : {}) },
    checks: [],
  };

  // 1. Settings.
  const parsed = parseSettings(o.settings, { platform: o.platform, env: o.env });
  if (!parsed.ok) {
    add(report, {
      id: 'settings',
      target: o.source,
      status: 'fail',
      message: formatProblems(parsed.problems, { maxChars: 100_000 }),
      fix: 'Correct the settings (kvvm validate shows every problem) and redeploy the extension.',
    });
    return finish(report);
  }
  const config = parsed.config;
  const clientId = config.authentication.msiClientId?.trim() || undefined;
  report.identity = clientId ? { label: `the user-assigned identity with client id ${clientId}`, clientId } : { label: "the VM's system-assigned identity" };
  add(report, {
    id: 'settings',
    target: o.source,
    status: config.warnings.length > 0 ? 'warn' : 'pass',
    message: `valid (${config.generation} format, ${config.observedCertificates.length} certificate${config.observedCertificates.length === 1 ? '' : 's'})${config.warnings.length > 0 ? `; warnings: ${config.warnings.map((w) => `${w.path}: ${w.message}`).join(' ')}` : ''}`,
  });

  // 2. Proxy variables: shown, and the one classic mistake (IMDS through the proxy) flagged.
  let imdsUrl: URL | undefined;
  let imdsProblem: KvvmError | undefined;
  try {
    const source = resolveIdentitySource(config.authentication.msiEndpoint);
    const podHost = o.env['AZURE_POD_IDENTITY_AUTHORITY_HOST'];
    imdsUrl = new URL(source.kind === 'endpoint' ? source.tokenUrl : `${podHost ? podHost.replace(/\/+$/, '') : `http://${DEFAULT_IMDS_HOST}`}/metadata/identity/oauth2/token`);
  } catch (err) {
    imdsProblem = err instanceof KvvmError ? err : new KvvmError('invalid-msi-endpoint', String(err));
  }
  if (!summary.httpsProxy) {
    add(report, { id: 'proxy', target: 'HTTPS_PROXY', status: 'pass', message: `no proxy: connections are direct${summary.noProxy ? ` (NO_PROXY=${summary.noProxy})` : ''}` });
  } else {
    const imdsBypassed = imdsUrl === undefined || noProxyMatches(imdsUrl.hostname, Number(imdsUrl.port || 80), summary.noProxy);
    add(report, {
      id: 'proxy',
      target: 'HTTPS_PROXY',
      status: imdsBypassed ? 'pass' : 'warn',
      message: `HTTPS_PROXY=${summary.httpsProxy}, NO_PROXY=${summary.noProxy ?? '(unset)'}; vault connections below go through the proxy unless NO_PROXY matches`,
      ...(imdsBypassed
        ? {}
        : {
            fix: `Add ${imdsUrl?.hostname ?? DEFAULT_IMDS_HOST} to NO_PROXY: the metadata endpoint is link-local and must never go through a proxy (Azure SDKs would send token requests to the proxy).`,
          }),
    });
  }

  // 3. Each vault: DNS, connection, TLS, challenge, clock.
  const ca = trustedCas(o.tlsCa, o.env);
  const vaults = new Map<string, VaultProbe>();
  for (const cert of config.observedCertificates) {
    if (vaults.has(cert.vaultUrl)) continue;
    vaults.set(cert.vaultUrl, await probeVault(report, cert, o.env, ca, now, timeoutMs));
  }

  // 4. Managed identity: endpoint reachable, token for the configured identity.
  const firstReachable = [...vaults.values()].find((v) => v.reachable);
  const resource = firstReachable?.resource ?? defaultResource(config.observedCertificates[0]?.vaultHost ?? 'vault.azure.net');
  const identity = await probeIdentity(report, imdsUrl, imdsProblem, clientId, resource, timeoutMs);
  if (identity.ok && identity.claims) {
    if (identity.claims.objectId) report.identity.objectId = identity.claims.objectId;
    if (identity.claims.tenantId) report.identity.tenantId = identity.claims.tenantId;
    if (identity.claims.resourceId) report.identity.resourceId = identity.claims.resourceId;
    if (!clientId && identity.claims.clientId) report.identity.clientId = identity.claims.clientId;
  }

  // 5. Each secret, with the real vault client (get + list, as the service does).
  for (const cert of config.observedCertificates) {
    const target = `${cert.vaultHost}/secrets/${cert.secretName}`;
    if (!vaults.get(cert.vaultUrl)?.reachable) {
      add(report, { id: 'secret', target, status: 'skip', message: 'vault not reachable (see above)' });
    } else if (!identity.ok) {
      add(report, { id: 'secret', target, status: 'skip', message: 'no token for the identity (see above)' });
    } else {
      await probeSecret(report, cert, config, o);
    }
  }

  // 6. Store directories (Linux), 7. the service.
  const directories = config.observedCertificates.flatMap(({ target: t }) => (t.platform === 'linux' ? [t.directory] : []));
  for (const dir of new Set(directories)) await probeStore(report, dir);
  if (o.extensionFolder === undefined) {
    add(report, { id: 'service', target: '(no extension folder)', status: 'skip', message: 'pass --extension-folder to check that the kvvm service is running' });
  } else {
    const pidFile = join(o.extensionFolder, 'kvvm-service.pid');
    let state: { running: boolean; pid?: number; resting?: boolean };
    try {
      state = await supervisorFor(o.platform).isRunning(pidFile);
      // POSIX: between cycles the worker has exited and its supervisor, which is the service, sleeps (restartLoop.ts).
      if (!state.running && o.platform !== 'win32') {
        const supervisor = await supervisorFor(o.platform).isRunning(join(o.extensionFolder, 'kvvm-supervisor.pid'));
        if (supervisor.running) state = { ...supervisor, resting: true };
      }
    } catch (err) {
      add(report, { id: 'service', target: pidFile, status: 'fail', message: `cannot tell whether the kvvm service runs: ${describeError(err)}` });
      return finish(report);
    }
    add(
      report,
      state.running
        ? {
            id: 'service',
            target: pidFile,
            status: 'pass',
            message: state.resting ? `running, at rest between cycles (supervisor pid ${state.pid ?? '?'})` : `running (pid ${state.pid ?? '?'})`,
          }
        : {
            id: 'service',
            target: pidFile,
            status: 'fail',
            message: 'the kvvm service is not running',
            fix: 'Re-enable the extension (az vm extension set ... re-applies settings and starts the service), or look at the service output in the extension log folder.',
          },
    );
  }
  return finish(report);
}

function finish(report: DoctorReport): DoctorReport {
  report.ok = report.checks.every((c) => c.status !== 'fail');
  return report;
}

function networkFix(err: ProbeError, host: string): string {
  switch (err.layer) {
    case 'dns':
      return `Check the vault name in the URL and that the VM can resolve ${host} (for a private endpoint: link the private DNS zone privatelink.vaultcore.azure.net to the VM's virtual network).`;
    case 'proxy':
      return 'Check HTTPS_PROXY (host, port, credentials) or add the vault host to NO_PROXY if it must be reached directly.';
    case 'tls':
      return TLS_CODE.test(err.code)
        ? `Something between the VM and ${host} presents a certificate this machine does not trust (a TLS-inspecting proxy?). Trust its CA (OS store or NODE_EXTRA_CA_CERTS) or exempt the vault host from inspection.`
        : `The TLS handshake with ${host} failed; check that nothing intercepts port 443.`;
    default:
      return `Allow outbound HTTPS (TCP 443) from the VM to ${host}: network security groups, firewalls, route tables, and HTTPS_PROXY/NO_PROXY.`;
  }
}

async function probeVault(report: DoctorReport, cert: ObservedCertificate, env: Env, ca: string[] | undefined, now: () => number, timeoutMs: number): Promise<VaultProbe> {
  const host = cert.vaultHost;
  const out: VaultProbe = { host, reachable: false, resource: undefined };
  let url: URL;
  try {
    url = checkVaultUrl(cert.vaultUrl, env);
  } catch (err) {
    const e = err as KvvmError;
    add(report, { id: 'vault-dns', target: host, status: 'fail', message: e.message, ...(e.fix ? { fix: e.fix } : {}) });
    return out;
  }
  const port = Number(url.port || 443);
  const { proxy, reason } = proxyFor(url.hostname, port, env);
  const via = proxy ? ` via proxy ${proxy.host}` : '';
  if (proxy) {
    add(report, { id: 'vault-dns', target: host, status: 'skip', message: `resolved by the proxy (${reason})` });
  } else {
    try {
      const addrs = await resolveHost(url.hostname);
      add(report, { id: 'vault-dns', target: host, status: 'pass', message: `resolves to ${addrs.join(', ')}` });
    } catch (err) {
      const e = err as ProbeError;
      add(report, { id: 'vault-dns', target: host, status: 'fail', message: e.message, fix: networkFix(e, host) });
      return out;
    }
  }
  let date: string | undefined;
  try {
    const tcp = await openTcp(url.hostname, port, proxy, timeoutMs);
    const tls = await startTls(tcp, url.hostname, ca, timeoutMs);
    const head = await getHead(tls, url.hostname, port, `/secrets/${encodeURIComponent(cert.secretName)}?api-version=7.5`, timeoutMs);
    date = head.headers.get('date');
    out.resource = challengeResource(head.headers.get('www-authenticate'));
    out.reachable = true;
    const challenge = head.status === 401 && out.resource ? `; asks for a token for ${out.resource}` : ` (HTTP ${head.status}, no Key Vault challenge: is this really a vault?)`;
    add(report, { id: 'vault-connect', target: host, status: head.status === 401 ? 'pass' : 'warn', message: `TCP and TLS to ${url.host}${via} OK${challenge}` });
  } catch (err) {
    const e = err instanceof ProbeError ? err : new ProbeError('tcp', 'ERROR', String(err));
    add(report, { id: 'vault-connect', target: host, status: 'fail', message: `${e.message}${via}`, fix: networkFix(e, host) });
    return out;
  }
  const vaultMs = date === undefined ? NaN : Date.parse(date);
  if (Number.isNaN(vaultMs)) {
    add(report, { id: 'clock', target: host, status: 'skip', message: 'the vault sent no Date header' });
  } else {
    const skew = now() - vaultMs;
    const abs = Math.abs(skew);
    // Date has one-second resolution: under a minute is noise.
    const text = `local clock is ${Math.round(abs / 1000)} s ${skew >= 0 ? 'ahead of' : 'behind'} the vault (${new Date(vaultMs).toISOString()})`;
    add(
      report,
      abs <= SKEW_WARN_MS
        ? { id: 'clock', target: host, status: 'pass', message: text }
        : {
            id: 'clock',
            target: host,
            status: abs > SKEW_FAIL_MS ? 'fail' : 'warn',
            message: text,
            fix: 'Synchronise the clock: on Azure Linux VMs chrony uses the host (PTP /dev/ptp_hyperv): systemctl enable --now chronyd; timedatectl status. Tokens and certificate validity checks fail with a skewed clock.',
          },
    );
  }
  return out;
}

interface IdentityResult {
  ok: boolean;
  claims?: TokenIdentity;
}

async function probeIdentity(
  report: DoctorReport,
  imdsUrl: URL | undefined,
  problem: KvvmError | undefined,
  clientId: string | undefined,
  resource: string,
  timeoutMs: number,
): Promise<IdentityResult> {
  const who = report.identity.label;
  if (!imdsUrl) {
    add(report, {
      id: 'imds',
      target: 'authenticationSettings.msiEndpoint',
      status: 'fail',
      message: problem?.message ?? 'unusable msiEndpoint',
      ...(problem?.fix ? { fix: problem.fix } : {}),
    });
    add(report, { id: 'identity', target: who, status: 'skip', message: 'no usable identity endpoint' });
    return { ok: false };
  }
  const url = new URL(imdsUrl);
  url.searchParams.set('api-version', '2018-02-01');
  url.searchParams.set('resource', resource);
  if (clientId) url.searchParams.set('client_id', clientId);
  const endpoint = `${imdsUrl.origin}${imdsUrl.pathname}`;
  let answer: Awaited<ReturnType<typeof imdsGet>>;
  try {
    answer = await imdsGet(url, timeoutMs);
  } catch (err) {
    const code = err instanceof ProbeError ? err.code : 'ERROR';
    add(report, {
      id: 'imds',
      target: endpoint,
      status: 'fail',
      message: `the managed-identity endpoint ${endpoint} is not reachable (${code})`,
      fix:
        imdsUrl.hostname === DEFAULT_IMDS_HOST
          ? `Run doctor on the Azure VM itself; ${DEFAULT_IMDS_HOST} must be reachable without a proxy (add it to NO_PROXY) and not blocked by a local firewall (iptables/nftables owner rules).`
          : `Check authenticationSettings.msiEndpoint (${endpoint}): nothing answers there. On Azure VMs remove msiEndpoint; on Arc machines check that himdsd is running.`,
    });
    add(report, { id: 'identity', target: who, status: 'skip', message: 'identity endpoint not reachable' });
    return { ok: false };
  }
  add(report, { id: 'imds', target: endpoint, status: 'pass', message: `reachable (HTTP ${answer.status})` });
  if (answer.status === 200) {
    let token: unknown;
    try {
      token = (JSON.parse(answer.body) as { access_token?: unknown }).access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '') {
      add(report, {
        id: 'identity',
        target: who,
        status: 'fail',
        message: 'the endpoint answered 200 without an access token',
        fix: 'The identity endpoint is not a managed-identity endpoint; check authenticationSettings.msiEndpoint.',
      });
      return { ok: false };
    }
    const claims = decodeTokenIdentity(token); // read the claims, then forget the token
    // eslint-disable-next-line no-useless-assignment -- drop the token as soon as its claims are read
    token = undefined;
    const named = claims?.objectId ? ` (object id ${claims.objectId}${claims.clientId ? `, client id ${claims.clientId}` : ''})` : ' (opaque token: object id not readable)';
    add(report, { id: 'identity', target: who, status: 'pass', message: `token issued for ${resource}${named}` });
    return claims ? { ok: true, claims } : { ok: true };
  }
  let detail = `HTTP ${answer.status}`;
  try {
    const b = JSON.parse(answer.body) as { error_description?: unknown; error?: unknown };
    const said = b.error_description ?? b.error;
    detail = typeof said === 'string' ? said : said === undefined || said === null ? detail : JSON.stringify(said);
  } catch {
    // not JSON: keep the status
  }
  const e = identityError(detail, clientId, endpoint);
  add(report, { id: 'identity', target: who, status: 'fail', message: e.message, ...(e.fix ? { fix: e.fix } : {}) });
  return { ok: false };
}

async function probeSecret(report: DoctorReport, cert: ObservedCertificate, config: KvvmConfig, o: DoctorOptions): Promise<void> {
  const target = `${cert.vaultHost}/secrets/${cert.secretName}`;
  const reader = createVaultReader({
    authentication: config.authentication,
    env: o.env,
    ...(o.tlsCa ? { tlsCa: o.tlsCa } : {}),
    retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
    identityRetry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
  });
  try {
    const secret = await reader.getSecret(cert.vaultUrl, cert.secretName, cert.pinnedVersion);
    const versions = await reader.listVersions(cert.vaultUrl, cert.secretName);
    const kind = secret.contentType ?? 'no content type';
    const warn = secret.contentType !== 'application/x-pkcs12' && secret.contentType !== 'application/x-pem-file';
    add(report, {
      id: 'secret',
      target,
      status: warn ? 'warn' : 'pass',
      message: `readable: version ${secret.version} (${kind}), ${versions.length} version${versions.length === 1 ? '' : 's'} listed`,
      ...(warn
        ? {
            fix: 'This secret is not certificate-backed (content type is not application/x-pkcs12 or application/x-pem-file); import the certificate into Key Vault as a certificate.',
          }
        : {}),
    });
  } catch (err) {
    const e = err instanceof KvvmError ? err : new KvvmError('vault-error', String(err));
    const who = { label: report.identity.label, objectId: report.identity.objectId, clientId: config.authentication.msiClientId?.trim() || undefined };
    let fix = e.fix;
    if (e.reason === 'forbidden') {
      if (e.detail === 'ForbiddenByFirewall') fix = firewallFix(cert.vaultName);
      else if (e.detail === 'ForbiddenByPolicy' || e.detail === 'AccessDenied') fix = accessPolicyFix(cert.vaultName, who);
      else if (e.detail === 'HTTP 401') fix = e.fix;
      else fix = rbacFix(cert.vaultName, who);
    } else if (e.reason === 'secret-not-found') {
      fix = secretNotFoundFix(cert.vaultName, cert.secretName);
    }
    add(report, { id: 'secret', target, status: 'fail', message: `${e.message} [${e.reason}]`, ...(fix ? { fix } : {}) });
  }
}

async function probeStore(report: DoctorReport, dir: string): Promise<void> {
  const fail = (message: string): void =>
    add(report, {
      id: 'store',
      target: dir,
      status: 'fail',
      message,
      fix: `Run the service as root (the guest agent does), or let its user write ${dir}: install -d -m 700 ${dir}.`,
    });
  let existing = dir;
  try {
    // The service creates the store on first sync: the nearest existing parent must then be writable.
    for (;;) {
      try {
        const s = await stat(existing);
        if (!s.isDirectory()) return fail(`${existing} exists but is not a directory`);
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT' || dirname(existing) === existing) throw err;
        existing = dirname(existing);
      }
    }
    await access(existing, fsConstants.W_OK | fsConstants.X_OK);
    if (existing === dir) {
      // Prove it with a real file, created 0600 from the first byte, then removed.
      const probe = join(dir, `.kvvm-doctor-${process.pid}`);
      const fh = await open(probe, 'wx', 0o600);
      await fh.close();
      await rm(probe, { force: true });
      add(report, { id: 'store', target: dir, status: 'pass', message: 'writable' });
    } else {
      add(report, { id: 'store', target: dir, status: 'pass', message: `does not exist yet; ${existing} is writable, the service will create it` });
    }
  } catch (err) {
    fail(`not writable by this user (${(err as { code?: string }).code ?? String(err)})`);
  }
}
