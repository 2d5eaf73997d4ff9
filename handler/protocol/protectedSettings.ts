import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type forge from 'node-forge';
import { KvvmError } from '../errors.js';
import { nodeCrypto } from '../lazyCrypto.js';
import { isNotFound } from './atomicFile.js';

export interface DecryptOptions {
  /**
   * openssl binary used ONLY when node-forge cannot parse the envelope (recipient identified by subject key id,
   * AES-GCM AuthEnvelopedData, RSA-OAEP key transport). false disables the fallback. Default 'openssl', which
   * every Linux image running the guest agent has (the agent itself decrypts with `openssl cms/smime`).
   */
  openssl?: string | false;
}

/**
 * Decrypt the agent's protectedSettings: base64 DER CMS EnvelopedData, encrypted to the certificate whose SHA-1
 * thumbprint the settings name, with <keyDir>/<THUMB>.crt and <THUMB>.prv (PEM).
 *
 * Decision: node-forge first. It handles what the platform uses (RSA PKCS#1 v1.5 key transport, issuer+serial
 * recipients, AES-128/192/256-CBC and DES-EDE3-CBC content) in-process. Node's own crypto cannot do the RSA step:
 * Node 20 refuses PKCS#1 v1.5 private decryption (CVE-2023-46809). For envelopes forge cannot even read, we fall
 * back to `openssl cms -decrypt`, as the agent does. A key/recipient mismatch is NOT retried with openssl: that
 * is a real failure and openssl would only fail the same way, more slowly.
 *
 * Nothing decrypted ever appears in an error message.
 */
export async function decryptProtectedSettings(base64: string, thumbprint: string, keyDir: string, options: DecryptOptions = {}): Promise<Record<string, unknown>> {
  const { crtPath, prvPath, certPem, keyPem } = await readKeyPair(thumbprint, keyDir);

  const compact = base64.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 === 1) {
    throw decryptError(thumbprint, 'the protectedSettings value is not base64');
  }
  const der = Buffer.from(compact, 'base64');

  let plaintext: Buffer;
  // forge is loaded only here: most settings carry no protectedSettings, and enable should not pay for it.
  const { default: forgeLib } = await import('node-forge');
  const viaForge = decryptWithForge(forgeLib, der, certPem, keyPem, thumbprint);
  if ('plaintext' in viaForge) {
    plaintext = viaForge.plaintext;
  } else if (viaForge.unsupported && options.openssl !== false) {
    plaintext = await decryptWithOpenssl(options.openssl ?? 'openssl', der, crtPath, prvPath, thumbprint, viaForge.problem);
  } else {
    throw decryptError(thumbprint, viaForge.problem);
  }
  return parsePlaintext(plaintext, thumbprint);
}

async function readKeyPair(thumbprint: string, keyDir: string) {
  // The agent names the files with the upper-case thumbprint; accept what the settings say first.
  const names = [...new Set([thumbprint, thumbprint.toUpperCase()])];
  const missing: string[] = [];
  for (const name of names) {
    const crtPath = join(keyDir, `${name}.crt`);
    const prvPath = join(keyDir, `${name}.prv`);
    const [certPem, keyPem] = await Promise.all([readOptional(crtPath), readOptional(prvPath)]);
    if (certPem !== undefined && keyPem !== undefined) return { crtPath, prvPath, certPem, keyPem };
    if (certPem === undefined) missing.push(crtPath);
    if (keyPem === undefined) missing.push(prvPath);
  }
  throw new KvvmError(
    'protected-settings-key-missing',
    `The protected settings are encrypted to certificate ${thumbprint.toUpperCase()}, but ${[...new Set(missing)].join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing.`,
    {
      fix: 'Let the guest agent fetch the goal-state certificates (restart walinuxagent), then reapply the extension settings.',
    },
  );
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw new KvvmError('protected-settings-key-missing', `Cannot read ${path}: ${(err as Error).message}.`, {
      fix: 'Run the handler as root, as the guest agent does.',
    });
  }
}

type ForgeResult = { plaintext: Buffer } | { problem: string; unsupported: boolean };

function decryptWithForge(lib: typeof forge, der: Buffer, certPem: string, keyPem: string, thumbprint: string): ForgeResult {
  let msg: forge.pkcs7.PkcsEnvelopedData;
  try {
    const asn1 = lib.asn1.fromDer(lib.util.createBuffer(der.toString('binary')));
    const parsed = lib.pkcs7.messageFromAsn1(asn1);
    if ((parsed as { type?: string }).type !== lib.pki.oids['envelopedData']) return { problem: 'the value is not CMS EnvelopedData', unsupported: true };
    msg = parsed as forge.pkcs7.PkcsEnvelopedData;
  } catch (err) {
    // Unreadable for forge: either garbage or a CMS variant forge does not implement; openssl tells them apart.
    return { problem: `the CMS structure cannot be read (${(err as Error).message})`, unsupported: true };
  }
  let cert: forge.pki.Certificate;
  let key: forge.pki.rsa.PrivateKey;
  try {
    cert = lib.pki.certificateFromPem(certPem);
    key = toForgeKey(lib, keyPem);
  } catch (err) {
    return { problem: `the key pair for ${thumbprint} cannot be used by forge (${(err as Error).message})`, unsupported: true };
  }
  const recipient = msg.findRecipient(cert);
  if (!recipient) {
    return { problem: `the value was encrypted to a different certificate than ${thumbprint.toUpperCase()}`, unsupported: false };
  }
  try {
    msg.decrypt(recipient, key);
  } catch (err) {
    const message = (err as Error).message;
    return { problem: `decryption failed (${message})`, unsupported: /Unsupported/i.test(message) };
  }
  const content = (msg as unknown as { content?: forge.util.ByteStringBuffer }).content;
  if (!content) return { problem: 'decryption produced no content', unsupported: false };
  return { plaintext: Buffer.from(content.getBytes(), 'binary') };
}

/** Node parses every PEM flavour (PKCS#1, PKCS#8); forge wants PKCS#1, so let Node convert. */
function toForgeKey(lib: typeof forge, keyPem: string): forge.pki.rsa.PrivateKey {
  const keyObject = nodeCrypto().createPrivateKey(keyPem);
  if (keyObject.asymmetricKeyType !== 'rsa') throw new Error(`the private key is ${keyObject.asymmetricKeyType ?? 'unknown'}, not RSA`);
  const pkcs1 = keyObject.export({ format: 'pem', type: 'pkcs1' }).toString();
  return lib.pki.privateKeyFromPem(pkcs1);
}

function decryptWithOpenssl(openssl: string, der: Buffer, crtPath: string, prvPath: string, thumbprint: string, forgeProblem: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      openssl,
      ['cms', '-decrypt', '-inform', 'DER', '-recip', crtPath, '-inkey', prvPath],
      { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        // stderr names OpenSSL's failing routine; it never contains the plaintext.
        const detail = isNotFound(err) ? `${openssl} is not installed` : firstLine(stderr.toString('utf8')) || err.message;
        reject(decryptError(thumbprint, `${forgeProblem}; openssl cms also failed: ${detail}`));
      },
    );
    child.stdin?.on('error', () => undefined); // openssl may exit before reading everything
    child.stdin?.end(der);
  });
}

export function parsePlaintext(plaintext: Buffer, thumbprint: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(plaintext).replace(/^\uFEFF/, '');
  } catch {
    throw corruptError(thumbprint, 'not UTF-8 text');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // No parser message here: V8 quotes the offending text, which is secret.
    throw corruptError(thumbprint, 'not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corruptError(thumbprint, 'not a JSON object');
  return value as Record<string, unknown>;
}

export function decryptError(thumbprint: string, problem: string): KvvmError {
  return new KvvmError('protected-settings-decrypt', `Cannot decrypt the protected settings (certificate ${thumbprint.toUpperCase()}): ${problem}.`, {
    fix: "Reapply the extension settings so the platform re-encrypts them to the VM's current certificate.",
  });
}

function corruptError(thumbprint: string, what: string): KvvmError {
  return new KvvmError('protected-settings-corrupt', `The decrypted protected settings (certificate ${thumbprint.toUpperCase()}) are ${what}.`, {
    fix: 'Set protectedSettings to a JSON object and reapply the extension settings.',
  });
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? ''
  );
}
