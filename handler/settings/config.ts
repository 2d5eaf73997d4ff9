import type { BehaviourProfile } from './profile.js';

/**
 * The ONE normalized configuration every settings generation (1.0, 3.0, 4.0, Linux keys) is turned into.
 * The sync engine and the stores only ever see this shape.
 */

/** How enable/service report the initial sync (see README "requireInitialSync"). */
export type InitialSyncMode =
  /** 4.0 default (requireInitialSync absent): success only after every certificate is installed; 25 attempts with growing backoff, then error. */
  | 'bounded'
  /** requireInitialSync: true: retry forever, stay transitioning until every certificate is installed. */
  | 'forever'
  /** requireInitialSync: false: success as soon as polling starts. */
  | 'none';

export interface FileAcl {
  user?: string;
  group?: string;
}

/** A Windows system store location, as the settings spell it (case-sensitive). */
export type WindowsStoreLocation = 'LocalMachine' | 'CurrentUser';

/** Where a certificate goes on Linux: PEM files and a stable symlink in a store directory (stores/pemStore.ts). */
export interface LinuxCertificateTarget {
  platform: 'linux';
  /** The store directory, absolute (certificateStoreLocation on Linux; default /var/lib/waagent/Microsoft.Azure.KeyVault.Store). */
  directory: string;
  /** Name of the stable symlink in the store directory (default "<vaultName>.<secretName>"). */
  linkName: string;
  /** Owners/groups that get read access to the PEM files. */
  acls: FileAcl[];
  /** Files written per version besides the PEM; absent = the PEM only (the default). */
  formats?: CertificateFormat[];
  /** Owner and group of this certificate's files and links (names or numeric ids). */
  fileOwner?: string;
  fileGroup?: string;
  /** Absolute path of the file holding the pfx password; absent = pfx without password. */
  pfxPasswordFile?: string;
}

/** Where a certificate goes on Windows: a system certificate store (stores/windows/windowsStore.ts). */
export interface WindowsCertificateTarget {
  platform: 'windows';
  /** certificateStoreName (default "MY"). */
  storeName: string;
  storeLocation: WindowsStoreLocation;
  keyExportable: boolean;
  /** Accounts given read access to the private key. */
  accounts: string[];
  /** Move http.sys SSL bindings from the replaced thumbprint to the new one (absent = false). */
  updateBindings?: boolean;
}

export type CertificateTarget = LinuxCertificateTarget | WindowsCertificateTarget;

export interface ObservedCertificate {
  /** The URL as the operator wrote it (for messages). */
  sourceUrl: string;
  /** https://<vault host> without trailing slash, lower-cased host. */
  vaultUrl: string;
  /** Host of the vault, lower case: myvault.vault.azure.net */
  vaultHost: string;
  /** First DNS label of the host: myvault */
  vaultName: string;
  /** Secret (certificate) name as in the URL. */
  secretName: string;
  /** Set when the URL carried a version: the certificate is pinned to it (a warning is emitted). */
  pinnedVersion?: string;
  /** Command run after the active version changed (this certificate's own, or the global default). */
  onChange?: ChangeCommand;
  /** Where it is installed: only the fields of the platform the settings were normalised for. */
  target: CertificateTarget;
}

/** The target of a certificate normalised for Linux. A Windows target here is a wiring bug, not bad input. */
export function linuxTarget(cert: ObservedCertificate): LinuxCertificateTarget {
  if (cert.target.platform !== 'linux') throw new Error(`${cert.sourceUrl}: settings normalised for Windows reached Linux-only code`);
  return cert.target;
}

/** The target of a certificate normalised for Windows. A Linux target here is a wiring bug, not bad input. */
export function windowsTarget(cert: ObservedCertificate): WindowsCertificateTarget {
  if (cert.target.platform !== 'windows') throw new Error(`${cert.sourceUrl}: settings normalised for Linux reached Windows-only code`);
  return cert.target;
}

export type CertificateFormat = 'pem' | 'key' | 'crt' | 'pfx';

/** An onChange command as validated: an argument vector (never a shell string) and its time limit. */
export interface ChangeCommand {
  /** argv[0] is an absolute path to an existing executable (checked where the service runs). */
  argv: string[];
  timeoutS: number;
  /** JSON path it came from, for messages. */
  path: string;
}

export const DEFAULT_CHANGE_TIMEOUT_S = 60;

export interface SettingsWarning {
  /** JSON path in the settings, e.g. /secretsManagementSettings/pollingIntervalInS */
  path: string;
  message: string;
}

export interface AuthenticationConfig {
  msiEndpoint?: string;
  msiClientId?: string;
  /** PaaS variant (Windows only). */
  clientId?: string;
  clientCertificateSubjectName?: string;
}

export type LoggingTarget = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** loggingSettings (Linux): the service's log records also go to a fluentd forward endpoint. */
export interface LoggingConfig {
  logger: 'fluentd';
  format: 'forward';
  /** As written (trimmed), e.g. tcp://localhost:24224. */
  endpoint: string;
  target: LoggingTarget;
  /** fluentd tag of every record (loggingSettings.servicename, default akvvm_service). */
  serviceName: string;
}

export interface KvvmConfig {
  /** Settings generation detected: "1.0" (string array + global store), "3.0"/"4.0" (objects). */
  generation: '1.0' | '3.0' | '4.0';
  /** The behaviour line chosen by the handler version (profile.ts): every 3.x/4.x difference is read from it. */
  profile: BehaviourProfile;
  pollingIntervalS: number;
  linkOnRenewal: boolean;
  initialSync: InitialSyncMode;
  observedCertificates: ObservedCertificate[];
  authentication: AuthenticationConfig;
  /** Present when loggingSettings asks for fluentd forwarding (Linux). */
  logging?: LoggingConfig;
  warnings: SettingsWarning[];
}

export const DEFAULT_LINUX_STORE = '/var/lib/waagent/Microsoft.Azure.KeyVault.Store';
export const MIN_POLLING_INTERVAL_S = 300;
/** 3.x takes any positive interval; outside these it warns (a poll per minute or less than one a day is a slip). */
export const WARN_BELOW_POLLING_INTERVAL_S = 60;
export const WARN_ABOVE_POLLING_INTERVAL_S = 86_400;
export const MAX_POLLING_INTERVAL_S = 3600;
export const DEFAULT_POLLING_INTERVAL_S = 3600;
