/**
 * The files the PEM store writes besides KeyVaultForLinux's combined PEM, for consumers that want them apart
 * (settings `formats`): the private key alone (Postgres, Apache's SSLCertificateKeyFile), the certificate chain
 * alone, and a PKCS#12 file (Java, .NET). Each version gets `<vault>.<secret>.<version>.<format>` next to its PEM,
 * and each format a stable link `<link>.<format>`.
 */
import { open } from 'node:fs/promises';
import { KvvmError } from '../errors.js';
import type { CertificateMaterial } from '../certs/material.js';
import { derToPem } from '../certs/pemText.js';
import type { LinuxCertificateTarget } from '../settings/config.js';

export type ExtraFormat = 'key' | 'crt' | 'pfx';
export const EXTRA_FORMATS: readonly ExtraFormat[] = ['key', 'crt', 'pfx'];

/** A password longer than this is not a password file (it is a mistake, e.g. the pfx itself). */
const MAX_PASSWORD_BYTES = 1024;

export function extraFormatsOf(target: LinuxCertificateTarget): ExtraFormat[] {
  return EXTRA_FORMATS.filter((f) => target.formats?.includes(f));
}

/** The content of one extra file for one version. */
export async function renderExtra(material: CertificateMaterial, format: ExtraFormat, target: LinuxCertificateTarget): Promise<string | Buffer> {
  switch (format) {
    case 'key': {
      const key = material.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      return key.endsWith('\n') ? key : `${key}\n`;
    }
    case 'crt':
      // Leaf first, then its issuer and up: the order nginx, Apache 2.4.8+ and HAProxy expect.
      return [material.leaf, ...material.chain].map((c) => derToPem(c.raw, 'CERTIFICATE')).join('');
    case 'pfx': {
      // Loaded here, not at the top: it brings node-forge (~370 KB of code), which a service whose settings ask
      // for no pfx file would otherwise hold in memory for its whole life (bench/, figure 4).
      const { buildPkcs12File } = await import('../certs/pkcs12File.js');
      return buildPkcs12File(material, target.pfxPasswordFile === undefined ? null : await readPfxPassword(target.pfxPasswordFile));
    }
  }
}

/** The password in `path`: its content without one trailing newline (what `echo secret > file` leaves). */
async function readPfxPassword(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    const handle = await open(path, 'r');
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
      if (info.size > MAX_PASSWORD_BYTES) {
        throw new KvvmError('pfx-password-file-too-large', `The pfx password file ${path} is ${info.size} bytes; a password file holds at most ${MAX_PASSWORD_BYTES} bytes.`, {
          fix: 'Put only the password in the file named by pfxPasswordFile.',
        });
      }
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof KvvmError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new KvvmError('pfx-password-file-unreadable', `The pfx password file ${path} cannot be read (${code}); the new version was not installed.`, {
      fix: 'Create the file named by pfxPasswordFile (mode 0600, owned by root) with the password, or remove pfxPasswordFile for a pfx without password.',
      cause: err,
    });
  }
  const text = bytes.toString('utf8').replace(/\r?\n$/, '');
  if (text === '') {
    throw new KvvmError('pfx-password-file-empty', `The pfx password file ${path} is empty.`, {
      fix: 'Write the password into the file, or remove pfxPasswordFile for a pfx without password.',
    });
  }
  return text;
}
