import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeAgentFolder, type AgentFolder } from '../../handler/demo/agentFolder.js';

/**
 * The agent folder of handler/demo/agentFolder.ts (the one writer of those files) plus what only tests need:
 *   <root>/var/lib/waagent/<THUMB>.crt|.prv   (goal-state certificates)
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

export interface AgentLayout extends Omit<AgentFolder, 'writeSettings'> {
  /** The certificate the "platform" encrypts protected settings to; created on first use. */
  certificate(): TestCertificate;
  /** Null publicSettings and no protected settings write an EMPTY file, as the agent does without settings. */
  writeSettings(seq: number, publicSettings: unknown, protectedSettings?: unknown, options?: WriteSettingsOptions): string;
}

export function makeAgentLayout(root: string, options: { name?: string; version?: string } = {}): AgentLayout {
  // 4.x by default: kvvm's strict rules; tests of the 3.x profile pass the version they run as.
  const folder = makeAgentFolder(root, options.name ?? 'Microsoft.Azure.KeyVault.KeyVaultForLinux', options.version ?? '4.0.0');
  let own: TestCertificate | undefined;
  const certificate = (): TestCertificate => (own ??= makeCertificate(folder.waagentDir, 'agent-transport'));
  return {
    ...folder,
    certificate,
    writeSettings(seq, publicSettings, protectedSettings, opts = {}) {
      if (protectedSettings === undefined) return folder.writeSettings(seq, publicSettings);
      const cert = opts.encryptTo ?? certificate();
      const blob = cmsEncrypt(JSON.stringify(protectedSettings), cert, opts.cipher ?? 'aes256', opts.keyid ?? false);
      return folder.writeSettings(seq, publicSettings, { protectedSettings: blob, thumbprint: opts.thumbprint ?? cert.thumbprint });
    },
  };
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
