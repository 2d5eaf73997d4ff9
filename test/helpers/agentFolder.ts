import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readStatus as readStatusFile, statusFilePath, type StatusFileView } from '../../handler/protocol/status.js';

/**
 * A guest-agent folder tree as the Linux agent lays it out, under `root` instead of `/`:
 *   <root>/var/lib/waagent/<Name>-<version>/{HandlerEnvironment.json,config/,status/}   (extension folder)
 *   <root>/var/lib/waagent/<THUMB>.crt|.prv                                            (goal-state certificates)
 *   <root>/log/azure/<Name>/{,events/}                                                 (logs, telemetry)
 * Protected settings are encrypted for real with `openssl cms -encrypt`, to a certificate made by openssl,
 * exactly as the agent receives them from the platform.
 */
export interface TestCertificate {
  thumbprint: string;
  crtPath: string;
  prvPath: string;
}

export type CmsCipher = 'aes256' | 'aes128' | 'des3' | 'aes-256-gcm';

export interface WriteSettingsOptions {
  cipher?: CmsCipher;
  /** Encrypt to this certificate instead of the layout's own (it need not be installed in waagentDir). */
  encryptTo?: TestCertificate;
  /** Thumbprint written into the settings file (default: the certificate encrypted to). */
  thumbprint?: string;
  /** Identify the recipient by subject key identifier instead of issuer+serial (openssl cms -keyid). */
  keyid?: boolean;
}

export interface AgentLayout {
  root: string;
  name: string;
  version: string;
  waagentDir: string;
  extensionFolder: string;
  configFolder: string;
  statusFolder: string;
  logFolder: string;
  eventsFolder: string;
  heartbeatFile: string;
  /** The certificate the "platform" encrypts protected settings to; created on first use. */
  certificate(): TestCertificate;
  /** Null publicSettings and no protected settings write an EMPTY file, as the agent does without settings. */
  writeSettings(seq: number, publicSettings: unknown, protectedSettings?: unknown, options?: WriteSettingsOptions): string;
  /** The raw handlerSettings JSON of any shape (for corrupt-input tests). */
  writeSettingsText(seq: number, text: string): string;
  readStatus(seq: number): Promise<StatusFileView>;
  env(seq: number): Record<string, string>;
}

export function makeAgentLayout(root: string, options: { name?: string; version?: string } = {}): AgentLayout {
  const name = options.name ?? 'Microsoft.Azure.KeyVault.KeyVaultForLinux';
  // 4.x by default: kvvm's strict rules; tests of the 3.x profile pass the version they run as.
  const version = options.version ?? '4.0.0';
  const waagentDir = join(root, 'var', 'lib', 'waagent');
  const extensionFolder = join(waagentDir, `${name}-${version}`);
  const configFolder = join(extensionFolder, 'config');
  const statusFolder = join(extensionFolder, 'status');
  const heartbeatFile = join(extensionFolder, 'heartbeat.log');
  const logFolder = join(root, 'log', 'azure', name);
  const eventsFolder = join(logFolder, 'events');
  for (const dir of [configFolder, statusFolder, eventsFolder]) mkdirSync(dir, { recursive: true });

  // Python's json.dumps layout (", " and ": " separators, 1.0 kept as 1.0), as the agent writes it.
  const handlerEnv = [
    {
      name,
      version: 1.0,
      handlerEnvironment: { logFolder, configFolder, statusFolder, heartbeatFile, eventsFolder, eventsFolder_preview: eventsFolder },
    },
  ];
  writeFileSync(join(extensionFolder, 'HandlerEnvironment.json'), pythonJsonDumps(handlerEnv));

  let own: TestCertificate | undefined;
  const layout: AgentLayout = {
    root,
    name,
    version,
    waagentDir,
    extensionFolder,
    configFolder,
    statusFolder,
    logFolder,
    eventsFolder,
    heartbeatFile,
    certificate() {
      own ??= makeCertificate(waagentDir, 'agent-transport');
      return own;
    },
    writeSettings(seq, publicSettings, protectedSettings, opts = {}) {
      const file = join(configFolder, `${seq}.settings`);
      if ((publicSettings === null || publicSettings === undefined) && protectedSettings === undefined) {
        writeFileSync(file, '');
        return file;
      }
      let protectedBlob: string | null = null;
      let thumbprint: string | null = null;
      if (protectedSettings !== undefined) {
        const cert = opts.encryptTo ?? layout.certificate();
        protectedBlob = cmsEncrypt(JSON.stringify(protectedSettings), cert, opts.cipher ?? 'aes256', opts.keyid ?? false);
        thumbprint = opts.thumbprint ?? cert.thumbprint;
      }
      const doc = {
        runtimeSettings: [{ handlerSettings: { publicSettings: publicSettings ?? null, protectedSettings: protectedBlob, protectedSettingsCertThumbprint: thumbprint } }],
      };
      writeFileSync(file, pythonJsonDumps(doc));
      return file;
    },
    writeSettingsText(seq, text) {
      const file = join(configFolder, `${seq}.settings`);
      writeFileSync(file, text);
      return file;
    },
    readStatus(seq) {
      return readStatusFile(statusFilePath(statusFolder, seq));
    },
    env(seq) {
      return {
        AZURE_GUEST_AGENT_EXTENSION_PATH: extensionFolder,
        AZURE_GUEST_AGENT_EXTENSION_VERSION: version,
        ConfigSequenceNumber: String(seq),
        AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN',
      };
    },
  };
  return layout;
}

/**
 * A self-signed RSA certificate and key written as <THUMB>.crt / <THUMB>.prv (PEM; the key PKCS#8, as
 * `openssl req -nodes` makes it, or PKCS#1 with `traditional`).
 */
export function makeCertificate(dir: string, cn: string, options: { traditional?: boolean } = {}): TestCertificate {
  mkdirSync(dir, { recursive: true });
  const tmpCrt = join(dir, `.${cn}.crt.tmp`);
  const tmpKey = join(dir, `.${cn}.key.tmp`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tmpKey, '-out', tmpCrt, '-subj', `/CN=${cn}`, '-days', '2'], {
    stdio: 'pipe',
  });
  const fingerprint = execFileSync('openssl', ['x509', '-in', tmpCrt, '-noout', '-fingerprint', '-sha1'], { encoding: 'utf8' });
  const thumbprint = fingerprint.split('=')[1]!.replace(/[:\s]/g, '').toUpperCase();
  const crtPath = join(dir, `${thumbprint}.crt`);
  const prvPath = join(dir, `${thumbprint}.prv`);
  writeFileSync(crtPath, readFileSync(tmpCrt));
  const key = options.traditional
    ? execFileSync('openssl', ['rsa', '-in', tmpKey, '-traditional'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    : readFileSync(tmpKey, 'utf8');
  writeFileSync(prvPath, key, { mode: 0o600 });
  execFileSync('rm', ['-f', tmpCrt, tmpKey]);
  return { thumbprint, crtPath, prvPath };
}

/** base64 DER CMS EnvelopedData, as the platform puts it in protectedSettings. */
export function cmsEncrypt(plaintext: string | Uint8Array, cert: TestCertificate, cipher: CmsCipher = 'aes256', keyid = false): string {
  const args = ['cms', '-encrypt', '-binary', '-outform', 'DER', `-${cipher}`];
  if (keyid) args.push('-keyid');
  args.push(cert.crtPath);
  return execFileSync('openssl', args, { input: plaintext }).toString('base64');
}

/** json.dumps(obj) with Python's default separators; integral floats are not representable in JS, so 1.0 is special-cased. */
function pythonJsonDumps(value: unknown): string {
  return JSON.stringify(value)
    .replace(/"version":1(?=[,}])/g, '"version":1.0')
    .replace(/("(?:[^"\\]|\\.)*")|([,:])/g, (_m, str: string | undefined, sep: string | undefined) => (str !== undefined ? str : sep === ',' ? ', ' : ': '));
}
