/**
 * The ARM connection for `kvvm deploy` / `kvvm status`: the real @azure/arm-compute ComputeManagementClient with
 * DefaultAzureCredential (az login, environment credentials, managed identity, ...).
 *
 * KVVM_ARM_ENDPOINT points the client at another Resource Manager (a sovereign cloud, Azure Stack Hub, or the
 * local test endpoint); KVVM_ARM_CA_FILE adds a CA (PEM) to the trusted roots for it. Extra CAs are ADDED to
 * Node's roots, never substituted, and verification is never disabled.
 */
import { readFileSync } from 'node:fs';
import { ComputeManagementClient } from '@azure/arm-compute';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { KvvmError } from '../errors.js';
import { overridesFrom } from '../overrides.js';
import { trustedCas } from '../vault/transport.js';
import { userAgentPrefix } from '../version.js';

const ARM_ENDPOINT_ENV = 'KVVM_ARM_ENDPOINT';
const ARM_CA_FILE_ENV = 'KVVM_ARM_CA_FILE';
const DEFAULT_ARM_ENDPOINT = 'https://management.azure.com';

export interface ArmDeps {
  /** Replaces DefaultAzureCredential (tests, or callers with their own credential). */
  credential?: TokenCredential;
  /** Extra trusted CA PEMs for the ARM endpoint. */
  tlsCa?: string[];
  /** Delay between long-running-operation polls (default: the SDK's, or the server's Retry-After). */
  pollIntervalMs?: number;
}

export interface ArmConnection {
  client: ComputeManagementClient;
  endpoint: string;
  subscriptionId: string;
}

export function resolveSubscription(flag: string | undefined, env: Record<string, string | undefined>): string {
  const id = flag ?? env['AZURE_SUBSCRIPTION_ID'];
  if (!id) {
    throw new KvvmError('usage', 'No subscription given.', {
      fix: 'Pass --subscription <id> or set AZURE_SUBSCRIPTION_ID (az account show --query id -o tsv).',
    });
  }
  return id;
}

function resolveEndpoint(env: Record<string, string | undefined>): string {
  const raw = overridesFrom(env).armEndpoint?.trim() || DEFAULT_ARM_ENDPOINT;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new KvvmError('usage', `${ARM_ENDPOINT_ENV}="${raw}" is not a URL.`, { fix: `Use e.g. ${DEFAULT_ARM_ENDPOINT}.` });
  }
  if (url.protocol !== 'https:') {
    throw new KvvmError('usage', `${ARM_ENDPOINT_ENV} must be https:// (an access token would travel in clear text).`, { fix: `Use e.g. ${DEFAULT_ARM_ENDPOINT}.` });
  }
  return url.origin;
}

export function connectArm(subscriptionId: string, env: Record<string, string | undefined>, deps: ArmDeps): ArmConnection {
  const endpoint = resolveEndpoint(env);
  const extra = [...(deps.tlsCa ?? [])];
  const caFile = overridesFrom(env).armCaFile;
  if (caFile) {
    try {
      extra.push(readFileSync(caFile, 'utf8'));
    } catch (err) {
      throw new KvvmError('usage', `Cannot read ${ARM_CA_FILE_ENV}=${caFile}: ${(err as Error).message}.`, { fix: 'Point it at a PEM CA certificate.' });
    }
  }
  const ca = trustedCas(extra, env);
  const credential = deps.credential ?? new DefaultAzureCredential();
  const client = new ComputeManagementClient(credential, subscriptionId, {
    endpoint,
    // The token audience is the Resource Manager itself (management.azure.com, management.chinacloudapi.cn, ...).
    credentials: { scopes: [`${endpoint}/.default`] },
    userAgentOptions: { userAgentPrefix: userAgentPrefix() },
    ...(ca ? { tlsOptions: { ca } } : {}),
  });
  return { client, endpoint, subscriptionId };
}

/** Operator-facing text for an ARM/SDK failure (RestError: statusCode, code, message). Never includes tokens. */
export function describeArmError(err: unknown): string {
  if (err instanceof KvvmError) return err.describe();
  const e = err as { statusCode?: number; code?: string; message?: string };
  const msg = (e.message ?? String(err)).trim();
  if (typeof e.statusCode === 'number') {
    const fix =
      e.statusCode === 401
        ? ' Fix: sign in (az login) or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET.'
        : e.statusCode === 403
          ? " Fix: your identity needs 'Virtual Machine Contributor' (or Contributor) on the VM or scale set."
          : e.statusCode === 404
            ? ' Fix: check --subscription, --resource-group and --name.'
            : '';
    return `Azure Resource Manager answered ${e.statusCode}${e.code ? ` ${e.code}` : ''}: ${msg}${fix}`;
  }
  return msg;
}
