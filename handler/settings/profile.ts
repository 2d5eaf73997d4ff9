/**
 * Behaviour profiles: kvvm behaves like the Microsoft extension version the operator pinned. The agent gives the
 * handler its own version (handlerEnvironment.ts detectHandlerVersion); its major picks the line:
 *   ≤ 3 → the 3.x profile (KeyVaultForWindows 3.x on Windows, KeyVaultForLinux 3.x on Linux),
 *   ≥ 4 → the 4.x profile (KeyVaultForWindows 4.0; on Linux the same 4.0 rules on a PEM store).
 * Every difference between the lines is a field here, so normalize.ts, the engine and the stores read a
 * decision instead of a version number. docs/versions.md is the table of these fields with their sources.
 */
import type { InitialSyncMode } from './config.js';

type ProfileLine = '3.x' | '4.x';
export type ProfilePlatform = 'linux' | 'win32';
/** Where the handler version came from, for messages ("version 3.1.2 from the extension folder name"). */
export type HandlerVersionSource = 'environment' | 'folder' | 'package' | 'option' | 'document' | 'default';

export interface BehaviourProfile {
  line: ProfileLine;
  platform: ProfilePlatform;
  /** The handler version that chose the line, as given. */
  handlerVersion: string;
  source: HandlerVersionSource;
  /** What requireInitialSync absent / true / false means. A mode of undefined: the value is refused (4.x false). */
  initialSync: { absent: InitialSyncMode; true: InitialSyncMode; false: InitialSyncMode | undefined };
  /** 4.x keeps pollingIntervalInS within 300-3600 s; 3.x takes any positive value and warns outside 60 s-1 day. */
  clampInterval: boolean;
  /** 4.x refuses the settings 4.0 removed (keyExportable, requireInitialSync false, version pinning, linkOnRenewal false). */
  refuseRemovedSettings: boolean;
  /** Server-auth leaf whose chain does not validate: 4.x refuses it; 3.x installs it with a warning. */
  chainFailure: 'refuse' | 'warn';
  /** Windows: 4.x always CNG (probed; KeyGuard where supported); 3.x lets PFXImportCertStore choose by the PFX's CSP attribute. */
  windowsKeyStorage: 'cng' | 'pfx-default';
  /** Linux PEM: KeyVaultForLinux 3.x writes the key LAST (leaf, chain, root, key); kvvm's 4.x writes it first. */
  pemKeyPosition: 'first' | 'last';
}

/** The major version of a handler version string ("3", "3.0", "3.0.2.1", "v4.1"), or undefined. */
export function majorOf(version: string): number | undefined {
  const m = /^\s*v?(\d{1,6})(?:\.\d+){0,3}\s*$/i.exec(version);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

export function profileFor(handlerVersion: string, platform: ProfilePlatform, source: HandlerVersionSource): BehaviourProfile {
  const major = majorOf(handlerVersion);
  const line: ProfileLine = major !== undefined && major >= 4 ? '4.x' : '3.x';
  if (line === '4.x') {
    return {
      line,
      platform,
      handlerVersion,
      source,
      initialSync: { absent: 'bounded', true: 'bounded', false: undefined },
      clampInterval: true,
      refuseRemovedSettings: true,
      chainFailure: 'refuse',
      windowsKeyStorage: 'cng',
      pemKeyPosition: 'first',
    };
  }
  return {
    line,
    platform,
    handlerVersion,
    source,
    // Windows 3.x retries forever with requireInitialSync true; KeyVaultForLinux 3.x gives up after 25 attempts.
    initialSync: { absent: 'none', true: platform === 'win32' ? 'forever' : 'bounded', false: 'none' },
    clampInterval: false,
    refuseRemovedSettings: false,
    chainFailure: 'warn',
    windowsKeyStorage: 'pfx-default',
    pemKeyPosition: platform === 'linux' ? 'last' : 'first',
  };
}

/** "3.x (KeyVaultForLinux 3.x rules; handler version 3.0.2 from the extension folder name)" */
export function describeProfile(p: BehaviourProfile): string {
  const rules =
    p.line === '4.x'
      ? p.platform === 'win32'
        ? 'KeyVaultForWindows 4.0 rules'
        : 'KeyVaultForWindows 4.0 rules on a PEM store'
      : p.platform === 'win32'
        ? 'KeyVaultForWindows 3.x rules'
        : 'KeyVaultForLinux 3.x rules';
  if (p.source === 'default') return `${p.line} profile (${rules}; no handler version given)`;
  const from = {
    environment: 'AZURE_GUEST_AGENT_EXTENSION_VERSION',
    folder: 'the extension folder name',
    package: 'the packaged version',
    option: '--handler-version',
    document: 'typeHandlerVersion',
  }[p.source];
  return `${p.line} profile (${rules}; handler version ${p.handlerVersion} from ${from})`;
}
