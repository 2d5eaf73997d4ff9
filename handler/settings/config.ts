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
  /** Windows: store name (default "MY"). Kept on Linux for reporting only. */
  certificateStoreName: string;
  /**
   * Windows: "LocalMachine" | "CurrentUser" (case-sensitive). Linux: the store directory
   * (default /var/lib/waagent/Microsoft.Azure.KeyVault.Store).
   */
  certificateStoreLocation: string;
  keyExportable: boolean;
  /** Windows: accounts given read access to the private key. */
  accounts: string[];
  /** Linux: name of the stable symlink in the store directory (default "<vaultName>.<secretName>"). */
  linkName: string;
  /** Linux: owners/groups that get read access to the PEM files. */
  acls: FileAcl[];
  /** Command run after the active version changed (this certificate's own, or the global default). */
  onChange?: ChangeCommand;
  /** Linux: files written per version besides the PEM; absent = the PEM only (the default). */
  formats?: CertificateFormat[];
  /** Linux: owner and group of this certificate's files and links (names or numeric ids). */
  fileOwner?: string;
  fileGroup?: string;
  /** Linux: absolute path of the file holding the pfx password; absent = pfx without password. */
  pfxPasswordFile?: string;
  /** Windows: move http.sys SSL bindings from the replaced thumbprint to the new one (absent = false). */
  updateBindings?: boolean;
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
