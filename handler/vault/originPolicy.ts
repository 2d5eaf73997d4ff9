/**
 * The per-request guard that keeps a vault token on the vault: a pipeline policy placed as the LAST step before
 * the HTTP client (position 'perRetry' = after the Sign phase), so it sees every request the SDK would send —
 * first pages, `nextLink` pages, retries and the authentication policy's challenge re-sends — with
 * its final URL and headers. A request whose origin (scheme, host, port) is not the configured vault's, or whose
 * URL carries user info (`https://vault-host@evil-host/`), is refused before a socket is opened: nothing is sent.
 *
 * Why here and not ahead of the authentication policy only: @azure/keyvault-secrets adds its challenge
 * authentication policy without a phase, so it runs BEFORE the retry and redirect policies; a guard placed ahead of
 * it would not see a redirect's second hop, which already carries the Authorization header. The allow-list check
 * on the configured URL (./secretsClient.ts checkVaultUrl) still runs once per client; this check runs per request.
 */
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { KvvmError } from '../errors.js';

type AdditionalPolicy = NonNullable<SecretClientOptions['additionalPolicies']>[number];
type PipelinePolicy = AdditionalPolicy['policy'];

const VAULT_ORIGIN_POLICY_NAME = 'kvvmVaultOriginPolicy';

/** The request URL's host as an operator should read it (user info named, never its password or the query). */
function describeTarget(url: URL): string {
  const who = url.username ? `${decodeURIComponent(url.username)}@` : '';
  return `${url.protocol}//${who}${url.host}`;
}

/** Same scheme, host (case-insensitive, as URL normalises it) and port; no user info. */
function isSameOrigin(requestUrl: URL, vault: URL): boolean {
  return (
    requestUrl.protocol === vault.protocol && requestUrl.hostname === vault.hostname && requestUrl.port === vault.port && requestUrl.username === '' && requestUrl.password === ''
  );
}

function foreignOriginError(target: string, vault: URL): KvvmError {
  return new KvvmError(
    'vault-foreign-link',
    `Vault ${vault.host} pointed kvvm at ${target} (a next page or redirect to another origin); kvvm sends vault requests only to ${vault.origin} and sent nothing there.`,
    {
      fix: `A genuine Key Vault never links to another host. Check that ${vault.hostname} resolves to the real vault (DNS, hosts file, private endpoint) and that no proxy or TLS-inspecting middlebox rewrites its responses.`,
    },
  );
}

/** A 3xx from the vault: Key Vault never sends one. The Location is not quoted, only whether it stays on the vault. */
function redirectError(status: number, location: string | undefined, vault: URL): KvvmError {
  let target = 'no Location';
  if (location) {
    try {
      const to = new URL(location, vault);
      target = to.origin === vault.origin ? 'the same host' : describeTarget(to);
    } catch {
      target = 'a Location that does not parse';
    }
  }
  return new KvvmError('vault-redirect', `Vault ${vault.host} answered with a redirect (${status}, to ${target}); Key Vault never redirects, so kvvm did not follow it.`, {
    fix: `Check that ${vault.hostname} resolves to the real vault (DNS, hosts file, private endpoint) and that no proxy or gateway between the VM and Key Vault rewrites its answers.`,
    detail: `HTTP ${status}`,
  });
}

/** The policy for one vault origin, in the shape SecretClient's `additionalPolicies` takes. */
export function vaultOriginPolicy(vault: URL): AdditionalPolicy {
  const allowed = new URL(vault.origin);
  const policy: PipelinePolicy = {
    name: VAULT_ORIGIN_POLICY_NAME,
    sendRequest(request, next) {
      let url: URL;
      try {
        url = new URL(request.url);
      } catch {
        return Promise.reject(foreignOriginError('a URL that does not parse', allowed));
      }
      if (!isSameOrigin(url, allowed)) return Promise.reject(foreignOriginError(describeTarget(url), allowed));
      return next(request).then((response) => {
        // Redirects are not followed (secretsClient.ts sets redirectOptions.maxRetries 0); the generated client
        // would fail on the empty 3xx body with an unrelated TypeError, so the answer is named here.
        if (response.status >= 300 && response.status < 400) throw redirectError(response.status, response.headers.get('location'), allowed);
        return response;
      });
    },
  };
  return { policy, position: 'perRetry' };
}
