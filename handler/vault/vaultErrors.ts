/**
 * Vault failures → KvvmError with a stable reason and an operator fix, plus the retry classification.
 * Pure functions over the SDK's RestError shape (statusCode, code, response.headers/bodyAsText), testable
 * without a network.
 */
import { KvvmError } from '../errors.js';
import { remoteDetail } from '../redaction.js';
import { parseRetryAfter, type RetryDecision } from './backoff.js';

interface RestErrorLike {
  name?: string;
  message?: string;
  statusCode?: number;
  code?: string;
  response?: { headers?: { get(name: string): string | undefined }; bodyAsText?: string | null };
  /** The generated client puts the parsed error body here, camel-cased: {error:{code,message,innerError}}. */
  details?: { error?: { code?: unknown; innerError?: { code?: unknown }; innererror?: { code?: unknown } } };
}

export interface VaultCallContext {
  vaultUrl: string;
  secretName: string;
  /** "the VM's system-assigned identity" / "the user-assigned identity with client id …" */
  identity: string;
  /** Tokens this reader holds: removed from any vault-supplied text (a body may echo the request's token). */
  knownTokens?: Iterable<string>;
}

/**
 * The vault's own words for a failure, safe for a status: its error code plus its message, redacted and capped
 * (../redaction.ts remoteDetail). Never the raw body.
 */
function vaultDetail(e: RestErrorLike, ctx: VaultCallContext): string {
  const detail = remoteDetail(e.message ?? '', ctx.knownTokens);
  return e.code && !detail.startsWith(e.code) ? `${e.code}: ${detail}` : detail;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENOTFOUND', 'UND_ERR_SOCKET']);
/** Transient network codes worth retrying; ENOTFOUND (no such vault) and TLS failures are not. */
const RETRYABLE_NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);
const TLS_CODE = /^(CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_TLS_|ERR_SSL_|HOSTNAME_MISMATCH)/;

function asRest(err: unknown): RestErrorLike {
  return typeof err === 'object' && err !== null ? err : {};
}

/** The node error code, looking through `cause` chains (fetch/undici and the SDK both nest). */
function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'REQUEST_SEND_ERROR' && code !== 'PARSE_ERROR') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function innerCode(err: RestErrorLike): string | undefined {
  const parsed = err.details?.error?.innerError?.code ?? err.details?.error?.innererror?.code;
  if (typeof parsed === 'string') return parsed;
  const text = err.response?.bodyAsText;
  if (!text) return undefined;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; innererror?: { code?: unknown } } };
    const inner = body.error?.innererror?.code;
    return typeof inner === 'string' ? inner : undefined;
  } catch {
    return undefined;
  }
}

/** A response body cut short by the connection: the SDK reports it without a status. */
function isTruncatedResponse(err: RestErrorLike): boolean {
  return err.statusCode === undefined && /aborted|premature|unexpected end|terminated/i.test(err.message ?? '');
}

export function classifyVaultError(err: unknown, now: () => number = Date.now): RetryDecision {
  if (err instanceof KvvmError) return { retry: false };
  const e = asRest(err);
  const status = e.statusCode;
  const retryAfterMs = parseRetryAfter(e.response?.headers?.get('retry-after'), now);
  if (status === 429) return { retry: true, kind: 'throttled', retryAfterMs };
  if (status === 408 || status === 500 || status === 502 || status === 503 || status === 504) return { retry: true, kind: 'server', retryAfterMs };
  if (status !== undefined) return { retry: false };
  const code = errorCode(err);
  if (code && RETRYABLE_NETWORK_CODES.has(code)) return { retry: true, kind: 'network' };
  if (isTruncatedResponse(e)) return { retry: true, kind: 'network' };
  return { retry: false };
}

export function mapVaultError(err: unknown, ctx: VaultCallContext): KvvmError {
  if (err instanceof KvvmError) return err;
  const e = asRest(err);
  const host = new URL(ctx.vaultUrl).host;
  const what = `secret "${ctx.secretName}"`;
  const cause = { cause: err };
  const status = e.statusCode;
  if (status === 401) {
    return new KvvmError('forbidden', `Vault ${host} rejected the token of ${ctx.identity} (401).`, {
      fix: "The vault must be in the same Microsoft Entra tenant as the VM's managed identity; check the vault URL and the identity.",
      detail: 'HTTP 401',
      ...cause,
    });
  }
  if (status === 403) {
    const inner = innerCode(e);
    if (inner === 'SecretDisabled') {
      return new KvvmError('secret-disabled', `The requested version of ${what} in vault ${host} is disabled.`, {
        fix: 'Enable the version in Key Vault or create a new version of the certificate.',
        ...cause,
      });
    }
    if (inner === 'ForbiddenByFirewall') {
      return new KvvmError('forbidden', `Vault ${host} refused ${ctx.identity}: the vault firewall does not allow this VM's network (ForbiddenByFirewall).`, {
        fix: "Add the VM's virtual network/subnet (service endpoint or private endpoint) or its public IP to the vault's network rules.",
        detail: inner,
        ...cause,
      });
    }
    if (inner === 'ForbiddenByPolicy' || inner === 'AccessDenied') {
      return new KvvmError('forbidden', `Vault ${host} refused ${ctx.identity}: no access policy grants it get/list on secrets (${inner}).`, {
        fix: `Add an access policy for ${ctx.identity} with secret permissions Get and List, or switch the vault to Azure RBAC and assign 'Key Vault Secrets User'.`,
        detail: inner,
        ...cause,
      });
    }
    return new KvvmError('forbidden', `Vault ${host} refused ${ctx.identity} access to ${what} (403${inner ? ` ${inner}` : ''}).`, {
      fix: `Assign the 'Key Vault Secrets User' role on the vault scope to ${ctx.identity} (role assignments can take a few minutes to apply).`,
      ...(inner ? { detail: inner } : {}),
      ...cause,
    });
  }
  if (status === 404) {
    return new KvvmError('secret-not-found', `Vault ${host} has no ${what} (404 SecretNotFound).`, {
      fix: "Check the secret name: the observed URL must be the certificate's secret identifier, https://<vault>.vault.azure.net/secrets/<certificate name>.",
      ...cause,
    });
  }
  if (status === 429) {
    return new KvvmError('throttled', `Vault ${host} kept throttling requests for ${what} (429) after kvvm's retries.`, {
      fix: 'Reduce the number of machines polling this vault at once or increase pollingIntervalInS; Key Vault allows about 4,000 reads per 10 seconds per vault.',
      ...cause,
    });
  }
  if (status !== undefined && status >= 500) {
    return new KvvmError('vault-server-error', `Vault ${host} answered ${status} for ${what} after kvvm's retries.`, {
      fix: 'Key Vault is having problems; kvvm retries at the next polling interval. Check Azure status if it persists.',
      ...cause,
    });
  }
  if (status !== undefined) {
    return new KvvmError('vault-request-rejected', `Vault ${host} rejected the request for ${what} (${status}): ${vaultDetail(e, ctx)}`.trim(), {
      fix: 'Check the observed certificate URL.',
      ...cause,
    });
  }
  const code = errorCode(err);
  if (code && TLS_CODE.test(code)) {
    return new KvvmError('tls-failure', `The TLS certificate of ${host} could not be verified (${code}).`, {
      fix: 'Something between the VM and Key Vault presents an untrusted certificate (a TLS-inspecting proxy?). Trust its CA in the OS/Node store or exempt the vault host from inspection.',
      ...cause,
    });
  }
  if ((code && NETWORK_CODES.has(code)) || isTruncatedResponse(e)) {
    return new KvvmError('vault-unreachable', `Could not reach vault ${host} (${code ?? 'connection closed early'}).`, {
      fix:
        code === 'ENOTFOUND'
          ? 'Check the vault name in the URL and that the VM can resolve it (private DNS zone privatelink.vaultcore.azure.net for private endpoints).'
          : 'Check outbound HTTPS (443) to the vault from the VM, the proxy settings (HTTPS_PROXY/NO_PROXY) and network security groups.',
      ...cause,
    });
  }
  if (/challenge resource/i.test(e.message ?? '')) {
    return new KvvmError('vault-challenge-mismatch', `Vault ${host} asked for a token for a different resource: ${vaultDetail(e, ctx)}`, {
      fix: "The URL must use the vault's own DNS name (<vault>.vault.azure.net or your cloud's suffix), not an alias.",
      ...cause,
    });
  }
  return new KvvmError('vault-error', `Reading ${what} from vault ${host} failed: ${e.message === undefined ? remoteDetail(String(err), ctx.knownTokens) : vaultDetail(e, ctx)}`, {
    ...cause,
  });
}
