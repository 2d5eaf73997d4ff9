/**
 * The catalogue of error reasons: every `KvvmError` carries one, status files and logs show it, tests assert it,
 * and code that reacts to a failure branches on it (never on message text). Reasons are stable across releases.
 *
 * `code` is the status code the reason maps to, in the extension-platform convention: > 0 a user (configuration
 * or environment) error the operator can fix, < 0 a system error in kvvm or the platform, 2 a command-line usage
 * error. A throw site overrides it only where one reason covers both (noted in `meaning`).
 */
export const REASONS = {
  // Command line
  'usage': { code: 2, meaning: 'A kvvm command line (deploy, status, validate, doctor) is missing or misusing an argument.' },
  'invalid-override': { code: 2, meaning: 'A KVVM_* environment variable (overrides.ts) does not parse.' },

  // Guest-agent protocol
  'handler-environment': { code: -1, meaning: 'HandlerEnvironment.json is missing or unusable, so kvvm cannot find its folders.' },
  'no-settings': { code: -1, meaning: 'No sequence number or no <seq>.settings file from the guest agent.' },
  'settings-corrupt': { code: -1, meaning: 'The <seq>.settings file the agent wrote is not the JSON the protocol defines.' },
  'mrseq-invalid': { code: -1, meaning: 'kvvm was asked to record a sequence number that is not a non-negative integer (a kvvm bug).' },
  'status-invalid': { code: -1, meaning: 'kvvm refused to write a status document the agent would reject (a kvvm bug).' },
  'status-write': { code: 1, meaning: 'The status file could not be written (the errno is explained in the message).' },
  'file-system': { code: 1, meaning: 'A file kvvm needs could not be read or written (the errno is explained in the message).' },
  'event-invalid': { code: -1, meaning: 'kvvm refused to write a telemetry event the agent would drop (a kvvm bug).' },
  'protected-settings-key-missing': { code: -1, meaning: 'The certificate (or key) the protected settings are encrypted to is not on the machine.' },
  'protected-settings-decrypt': { code: -1, meaning: 'The protected settings could not be decrypted with the transport certificate.' },
  'protected-settings-corrupt': { code: 1, meaning: 'The decrypted protected settings are not a JSON object.' },

  // Settings
  'settings-invalid': { code: 1, meaning: 'The extension settings break the schema or a logical rule.' },
  'invalid-msi-endpoint': { code: 1, meaning: 'authenticationSettings.msiEndpoint is not a usable identity endpoint URL.' },

  // Identity and Key Vault
  'identity-unavailable': { code: 1, meaning: 'No managed-identity token could be obtained (endpoint unreachable or failing); -1 where kvvm asked wrongly.' },
  'identity-not-found': { code: 1, meaning: 'The VM has no managed identity of the kind (or client id) the settings name.' },
  'identity-ambiguous': { code: 1, meaning: 'The VM has several user-assigned identities and the settings choose none.' },
  'paas-certificate-not-found': { code: 1, meaning: 'The PaaS bootstrap certificate (by subject) is not in LocalMachine\\My, not valid, or has no key.' },
  'paas-no-tenant': { code: -1, meaning: 'The PaaS credential needs the tenant from the vault challenge and got none.' },
  'paas-authentication': { code: 1, meaning: 'Microsoft Entra ID refused the PaaS application credential.' },
  'vault-host-not-allowed': { code: 1, meaning: 'A vault URL is not https:// on a genuine Key Vault host; no token is sent there.' },
  'vault-challenge-mismatch': { code: 1, meaning: 'The vault asked for a token for a different resource than its own host.' },
  'forbidden': { code: 1, meaning: 'The vault refused the identity (401/403: tenant, RBAC role, access policy or firewall).' },
  'secret-not-found': { code: 1, meaning: 'The vault has no such secret (or version).' },
  'secret-disabled': { code: 1, meaning: 'The requested secret version is disabled.' },
  'no-enabled-version': { code: 1, meaning: 'The certificate has no enabled version kvvm may install (or the pinned one is gone).' },
  'throttled': { code: 1, meaning: "The vault kept answering 429 after kvvm's retries." },
  'vault-server-error': { code: 1, meaning: "The vault kept answering 5xx after kvvm's retries." },
  'vault-request-rejected': { code: 1, meaning: 'The vault rejected the request (a 4xx other than 401/403/404/429).' },
  'vault-unreachable': { code: 1, meaning: 'The vault could not be reached (DNS, connection, truncated response).' },
  'tls-failure': { code: 1, meaning: 'The TLS certificate of the vault host could not be verified.' },
  'vault-redirect': { code: 1, meaning: 'The vault answered with a redirect (3xx), which Key Vault never sends; kvvm does not follow it.' },
  'vault-foreign-link': { code: 1, meaning: 'The vault answered with a next page or redirect to another origin; kvvm sent nothing there.' },
  'vault-error': { code: -1, meaning: 'Any other vault failure (an unexpected answer or SDK error).' },

  // Certificate material
  'not-a-certificate': { code: 1, meaning: 'The secret is not certificate-backed (content type); it is skipped, not failed.' },
  'empty-secret': { code: 1, meaning: 'The certificate secret is empty.' },
  'secret-too-large': { code: 1, meaning: "The certificate secret is above kvvm's size bound." },
  'malformed-certificate': { code: 1, meaning: 'The certificate secret could not be read at all.' },
  'malformed-pkcs12': { code: 1, meaning: 'The secret is not a readable PKCS#12 (PFX).' },
  'malformed-pem': { code: 1, meaning: 'The secret is not readable PEM (no block, unexpected block, unreadable certificate or key).' },
  'pkcs12-password': { code: 1, meaning: 'The PKCS#12 is password-protected or damaged.' },
  'pkcs12-unsupported': { code: 1, meaning: 'The PKCS#12 uses an algorithm kvvm cannot read.' },
  'encrypted-private-key': { code: 1, meaning: 'The PEM private key is password-encrypted.' },
  'no-certificate': { code: 1, meaning: 'The secret holds no certificate.' },
  'no-private-key': { code: 1, meaning: 'The secret holds no private key.' },
  'parse-budget': { code: 1, meaning: 'Reading the certificate secret used more CPU time than kvvm allows (a PFX with a huge iteration count).' },
  'parser-failed': { code: -1, meaning: 'The certificate parser worker stopped unexpectedly.' },
  'key-mismatch': { code: 1, meaning: 'The private key matches none of the certificates in the secret.' },
  'chain-incomplete': { code: 1, meaning: 'The server-auth chain does not reach a trusted root.' },
  'chain-signature': { code: 1, meaning: 'A signature in the server-auth chain does not verify.' },
  'chain-not-ca': { code: 1, meaning: 'An issuer in the server-auth chain is not a CA.' },
  'chain-expired': { code: 1, meaning: 'A certificate in the server-auth chain has expired.' },
  'chain-not-yet-valid': { code: 1, meaning: 'A certificate in the server-auth chain is not valid yet.' },
  'chain-untrusted-root': { code: 1, meaning: 'The server-auth chain ends at a self-signed root this machine does not trust.' },
  'chain-untrusted': { code: 1, meaning: "Windows' chain engine does not trust the certificate for server authentication." },

  // Certificate stores
  'store-invalid-name': { code: 1, meaning: 'A store name, file name or link name from the settings is not allowed.' },
  'store-link-occupied': { code: 1, meaning: 'The PEM link path exists and is not a symbolic link; kvvm does not overwrite it.' },
  'store-io': { code: 1, meaning: 'A file operation of the PEM store failed (permissions, space, read-only file system).' },
  'store-link-foreign': { code: 1, meaning: 'The link name is a symbolic link kvvm did not make; kvvm does not replace it.' },
  'store-dir-foreign': { code: 1, meaning: 'The store directory was not created by kvvm, which does not change its permissions, and "acls" needs that.' },
  'store-dir-not-directory': { code: 1, meaning: 'A path of certificateStoreLocation is a file, not a directory.' },
  'store-dir-unsafe': { code: 1, meaning: 'The store directory or a parent is writable by others or owned by another user.' },
  'store-dir-shared': { code: 1, meaning: 'certificateStoreLocation is a directory the whole system shares (e.g. /tmp).' },
  'store-tampered': { code: 1, meaning: 'A file kvvm was writing in the store was replaced by another process.' },
  'file-owner-unknown': { code: 1, meaning: 'A file owner named in the settings does not exist on the machine.' },
  'pfx-password-file-too-large': { code: 1, meaning: 'The PFX password file is larger than kvvm reads.' },
  'pfx-password-file-unreadable': { code: 1, meaning: 'The PFX password file cannot be read.' },
  'pfx-password-file-empty': { code: 1, meaning: 'The PFX password file is empty.' },
  'http-sys-binding': { code: 1, meaning: 'An HTTP.sys SSL binding could not be read or updated.' },
  'store-bad-material': { code: -1, meaning: "Parsed material could not be written in the store's format." },
  'store-version-missing': { code: -1, meaning: 'kvvm activated a version that is not installed (a kvvm bug).' },
  'store-remove-active': { code: -1, meaning: 'kvvm refused to remove the active version (a kvvm bug).' },
  'acl-unknown-user': { code: 1, meaning: 'A user named in "acls" does not exist on the machine.' },
  'acl-unknown-group': { code: 1, meaning: 'A group named in "acls" does not exist on the machine.' },
  'acl-unsupported': { code: 1, meaning: '"acls" needs POSIX ACLs (setfacl) that the machine does not have.' },
  'acl-conflict': { code: 1, meaning: 'The store directory already belongs to another group, which "acls" cannot add to.' },
  'acl-failed': { code: 1, meaning: 'setfacl failed to grant read access.' },
  'windows-account-unknown': { code: 1, meaning: 'An account named in "accounts" does not exist on the machine.' },
  'windows-api': { code: -1, meaning: 'A Win32 call failed (the message names it and its HRESULT); 1 when access is denied.' },
  'windows-import-no-leaf': { code: -1, meaning: 'The PFX kvvm imported did not contain the certificate kvvm built it from.' },
  'windows-install-lost': { code: -1, meaning: 'A certificate kvvm just added is not in the Windows store.' },

  // Service
  'service-start': { code: -1, meaning: 'The service could not be started (or stopped right after starting).' },
  'service-stopping': { code: -1, meaning: 'The service is stopping; work in flight was abandoned.' },
  'lock-busy': { code: -1, meaning: "Another kvvm command held the extension's command lock too long." },
  'lock-failed': { code: -1, meaning: "flock could not lock the extension's lock file." },
  'lock-unavailable': { code: -1, meaning: 'flock could not be run.' },
  'systemctl-failed': { code: -1, meaning: 'A systemctl step for the kvvm unit failed.' },
  'service-stop': { code: -1, meaning: 'The service could not be stopped.' },
  'unexpected': { code: -1, meaning: 'An error that is not a KvvmError (a kvvm bug or a library failure kvvm does not map yet).' },
} as const satisfies Record<string, { code: number; meaning: string }>;

export type Reason = keyof typeof REASONS;

/** The status code a reason maps to. */
export function codeOf(reason: Reason): number {
  return REASONS[reason].code;
}
