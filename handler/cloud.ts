/**
 * Which hosts kvvm will send a managed-identity token to. Only Azure Key Vault DNS suffixes are allowed; an
 * operator may add suffixes (Azure Stack Hub, the local dev vault) with KVVM_EXTRA_VAULT_SUFFIXES, comma-separated.
 */
import { overridesFrom } from './overrides.js';

interface VaultCloud {
  name: string;
  suffix: string;
}

const AZURE_VAULT_CLOUDS: readonly VaultCloud[] = [
  { name: 'AzurePublic', suffix: '.vault.azure.net' },
  { name: 'AzureChina', suffix: '.vault.azure.cn' },
  { name: 'AzureUSGovernment', suffix: '.vault.usgovcloudapi.net' },
  { name: 'AzureGermany', suffix: '.vault.microsoftazure.de' },
  // Managed HSM hosts serve the same secrets API shape only for keys; not listed on purpose.
];

export const EXTRA_SUFFIXES_ENV = 'KVVM_EXTRA_VAULT_SUFFIXES';

/** Suffixes the operator opted into (overrides.ts), lower case. "localhost" allows exactly the host localhost. */
function extraVaultSuffixes(env: Readonly<Record<string, string | undefined>>): string[] {
  return overridesFrom(env).extraVaultSuffixes;
}

/** True when `host` (no port) is a vault host kvvm may talk to. */
export function isAllowedVaultHost(host: string, env: Readonly<Record<string, string | undefined>>): boolean {
  const h = host.toLowerCase();
  for (const cloud of AZURE_VAULT_CLOUDS) {
    // A vault name precedes the suffix: "x.vault.azure.net" yes, "vault.azure.net" no.
    if (h.endsWith(cloud.suffix) && h.length > cloud.suffix.length) return true;
  }
  for (const extra of extraVaultSuffixes(env)) {
    const dotted = extra.startsWith('.') ? extra : `.${extra}`;
    if (h === extra.replace(/^\./, '') || h.endsWith(dotted)) return true;
  }
  return false;
}

export function allowedSuffixesForMessage(env: Readonly<Record<string, string | undefined>>): string {
  return [...AZURE_VAULT_CLOUDS.map((c) => c.suffix), ...extraVaultSuffixes(env)].join(', ');
}
