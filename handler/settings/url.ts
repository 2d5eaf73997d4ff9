/**
 * Observed-certificate URLs and the MSI endpoint. Every failure says what kind of wrong it is, because the
 * Microsoft extension's "URI must contain a hostname" covers half a dozen different mistakes.
 */
import type { Reason } from '../reasons.js';
import { allowedSuffixesForMessage, EXTRA_SUFFIXES_ENV, isAllowedVaultHost } from '../cloud.js';

export interface UrlFailure {
  ok: false;
  reason: Reason;
  message: string;
  fix: string;
}

export interface ParsedVaultUrl {
  ok: true;
  /** https://<host>[:port], host lower-cased, no trailing slash. */
  vaultUrl: string;
  vaultHost: string;
  vaultName: string;
  secretName: string;
  pinnedVersion?: string;
  /** Things tolerated but worth telling the operator. */
  warnings: string[];
}

const EXAMPLE_URL = 'https://myvault.vault.azure.net/secrets/mycertificate';
const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const SECRET_VERSION = /^[0-9a-fA-F]{32}$/;

/**
 * True for template text that was never filled in: doc placeholders ("<examplekv>", "<A Key Vault URI ...>")
 * and unevaluated ARM expressions ("[parameters('x')]").
 */
export function looksLikePlaceholder(value: string): boolean {
  const v = value.trim();
  return /[<>]/.test(v) || /^\[.*\]$/s.test(v) || /^\{\{.*\}\}$/s.test(v);
}

function fail(reason: Reason, message: string, fix: string): UrlFailure {
  return { ok: false, reason, message, fix };
}

/** Parse one observed-certificate URL. `raw` is the value as written (may carry whitespace). */
export function parseObservedUrl(raw: string, env: Readonly<Record<string, string | undefined>>): ParsedVaultUrl | UrlFailure {
  const warnings: string[] = [];
  const text = raw.trim();
  if (text !== raw) {
    // The documented PowerShell/CLI 1.0 example builds [" <cert> "]: the spaces are a doc artefact, not intent.
    warnings.push(`URL ${JSON.stringify(raw)} has leading/trailing whitespace; kvvm uses ${JSON.stringify(text)}.`);
  }
  if (text === '') return fail('url-empty', 'The URL is empty.', `Write the secret URL of the certificate, e.g. "${EXAMPLE_URL}".`);
  if (looksLikePlaceholder(text)) {
    return fail(
      'url-placeholder',
      `The URL ${JSON.stringify(text)} is a template placeholder that was not replaced.`,
      `Replace it with the secret URL of your certificate, e.g. "${EXAMPLE_URL}" (in an ARM template, check that the parameter is passed).`,
    );
  }
  if (/\s/.test(text)) {
    return fail('url-invalid', `The URL ${JSON.stringify(text)} contains whitespace.`, `Remove the spaces; a URL looks like "${EXAMPLE_URL}".`);
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    return fail(
      'url-no-scheme',
      `URI must contain a hostname: ${JSON.stringify(text)} does not start with https://, so it has no host part.`,
      `Write the full URL including the scheme: "https://${text.replace(/^[a-z][a-z0-9+.-]*:\/*/i, '')}".`,
    );
  }
  if (/^[a-z][a-z0-9+.-]*:\/\/(?:[/?#]|$)/i.test(text)) {
    return fail(
      'url-no-host',
      `URI must contain a hostname: ${JSON.stringify(text)} has nothing between "://" and the path.`,
      `Put the vault host after https://, e.g. "${EXAMPLE_URL}".`,
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('url-invalid', `${JSON.stringify(text)} is not a valid URL.`, `Write the secret URL as "${EXAMPLE_URL}".`);
  }
  if (url.protocol !== 'https:') {
    return fail(
      'url-not-https',
      `The URL ${JSON.stringify(text)} uses ${url.protocol.replace(':', '')}; Key Vault is only reached over https.`,
      `Use "https://${url.host}${url.pathname}".`,
    );
  }
  if (url.username || url.password) {
    return fail(
      'url-has-credentials',
      `The URL ${JSON.stringify(text)} contains a user name or password.`,
      'Remove the credentials; kvvm authenticates with the managed identity (authenticationSettings).',
    );
  }
  if (url.search || url.hash) {
    return fail(
      'url-has-query',
      `The URL ${JSON.stringify(text)} has a query string or fragment; an observed URL names a secret only.`,
      `Remove everything from "?" or "#": "https://${url.host}${url.pathname}".`,
    );
  }
  const host = url.hostname.toLowerCase();
  if (!isAllowedVaultHost(host, env)) {
    return fail(
      'vault-host-not-allowed',
      `The host "${host}" in ${JSON.stringify(text)} is not a Key Vault host; allowed vault DNS suffixes: ${allowedSuffixesForMessage(env)}.`,
      `Use your vault's URL (https://<vault-name>.vault.azure.net/...). For Azure Stack Hub or a private cloud, add its vault suffix to the ${EXTRA_SUFFIXES_ENV} environment variable of the kvvm service (comma-separated, e.g. ".vault.local.azurestack.external").`,
    );
  }
  // Split the raw path ourselves: URL would silently collapse nothing, but "//" must be reported, not guessed at.
  const segments = url.pathname.split('/').slice(1);
  if (segments.length > 1 && segments[segments.length - 1] === '') segments.pop(); // one trailing slash is fine
  const base = `https://${host}${url.port ? ':' + url.port : ''}`;
  let kind = (segments[0] ?? '').toLowerCase();
  if (kind === 'certificates') {
    // The certificate's backing secret always has the certificate's name (and version ids), so the /secrets/
    // twin is what the operator meant: the /certificates/ object itself has no private key.
    const fixed = `${base}/secrets/${segments.slice(1).join('/')}`;
    warnings.push(
      `URL ${JSON.stringify(text)} points at /certificates/, which has no private key; kvvm reads the certificate's secret "${fixed}" instead. Write that URL to silence this warning.`,
    );
    segments[0] = 'secrets';
    kind = 'secrets';
  }
  if (kind === 'keys') {
    return fail(
      'url-keys-path',
      `The URL ${JSON.stringify(text)} points at /keys/, which holds a bare key, not an installable certificate.`,
      `Observe the certificate through its secret: "${base}/secrets/<certificate-name>".`,
    );
  }
  if (kind !== 'secrets') {
    return fail(
      'url-bad-path',
      `The URL ${JSON.stringify(text)} has path "${url.pathname}"; expected /secrets/<certificate-name>[/<version>].`,
      `Write the URL as "${base}/secrets/<certificate-name>".`,
    );
  }
  const name = segments[1] ?? '';
  if (name === '') {
    return fail(
      'url-missing-secret-name',
      `The URL ${JSON.stringify(text)} names no certificate after /secrets/.`,
      `Add the certificate name: "${base}/secrets/<certificate-name>".`,
    );
  }
  if (segments.length > 3 || segments.includes('')) {
    return fail(
      'url-bad-path',
      `The URL ${JSON.stringify(text)} has extra path segments; expected /secrets/<certificate-name>[/<version>].`,
      `Write the URL as "${base}/secrets/${name}".`,
    );
  }
  const decodedName = safeDecode(name);
  if (!SECRET_NAME.test(decodedName)) {
    return fail(
      'url-bad-secret-name',
      `The certificate name ${JSON.stringify(decodedName)} in ${JSON.stringify(text)} is not a Key Vault name (1-127 letters, digits and dashes).`,
      'Copy the secret identifier of the certificate from the portal (Certificate > Secret Identifier).',
    );
  }
  const version = segments[2];
  const result: ParsedVaultUrl = {
    ok: true,
    vaultUrl: base,
    vaultHost: host,
    vaultName: host.split('.')[0] ?? host,
    secretName: decodedName,
    warnings,
  };
  if (version !== undefined) {
    if (!SECRET_VERSION.test(version)) {
      return fail(
        'url-bad-version',
        `The version ${JSON.stringify(version)} in ${JSON.stringify(text)} is not a Key Vault version (32 hex digits).`,
        `Remove the version to follow the latest certificate: "${base}/secrets/${decodedName}".`,
      );
    }
    result.pinnedVersion = version.toLowerCase();
    warnings.push(`URL ${JSON.stringify(text)} is pinned to version ${version}: renewals of "${decodedName}" will NOT be installed.`);
  }
  return result;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Parse authenticationSettings.msiEndpoint: an http(s) URL with a host. Returns the trimmed URL. */
export function parseMsiEndpoint(raw: string): { ok: true; url: string; warnings: string[] } | UrlFailure {
  const warnings: string[] = [];
  const text = raw.trim();
  const example = 'http://169.254.169.254/metadata/identity/oauth2/token';
  if (text !== raw) warnings.push(`msiEndpoint ${JSON.stringify(raw)} has leading/trailing whitespace; kvvm uses ${JSON.stringify(text)}.`);
  if (looksLikePlaceholder(text)) {
    return fail(
      'msi-endpoint-placeholder',
      `msiEndpoint ${JSON.stringify(text)} is a template placeholder that was not replaced.`,
      `Set it to "${example}" or remove msiEndpoint to use the default.`,
    );
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    return fail(
      'msi-endpoint-no-scheme',
      `URI must contain a hostname: msiEndpoint ${JSON.stringify(text)} does not start with http:// or https://.`,
      `Write the full URL, e.g. "${example}", or remove msiEndpoint to use the default.`,
    );
  }
  if (/^[a-z][a-z0-9+.-]*:\/\/(?:[/?#]|$)/i.test(text)) {
    return fail('msi-endpoint-no-host', `URI must contain a hostname: msiEndpoint ${JSON.stringify(text)} has no host after "://".`, `Write the full URL, e.g. "${example}".`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('msi-endpoint-invalid', `msiEndpoint ${JSON.stringify(text)} is not a valid URL.`, `Write the full URL, e.g. "${example}".`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return fail(
      'msi-endpoint-not-http',
      `msiEndpoint ${JSON.stringify(text)} uses ${url.protocol.replace(':', '')}; expected http or https.`,
      `Write the full URL, e.g. "${example}".`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    url.username = '';
    url.password = '';
    return fail(
      'msi-endpoint-credentials',
      `msiEndpoint holds a user name or password ("user:password@" before the host ${url.host}); the identity endpoint takes no credentials in its URL, and kvvm would send them with every token request and show them in its logs.`,
      `Remove the "user:password@" part: "${url.href}".`,
    );
  }
  return { ok: true, url: text, warnings };
}
