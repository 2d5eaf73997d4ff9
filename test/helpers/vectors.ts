import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageRoot } from '../../handler/paths.js';

/**
 * Recorded Key Vault responses from /work/shared/vectors/keyvault (shared/ sits beside the repository, in CI
 * too). KVVM_VECTORS_DIR overrides the folder.
 */
/** The shared/ folder beside the repository (KVVM_SHARED_DIR overrides). */
export function sharedDir(): string {
  const override = process.env['KVVM_SHARED_DIR'];
  if (override !== undefined && override !== '') return override;
  return join(dirname(packageRoot()), 'shared');
}

/** The Linux agent's own fixtures (status files, handler manifests); KVVM_GUEST_AGENT_VECTORS_DIR overrides. */
export function guestAgentVectorsDir(): string {
  const override = process.env['KVVM_GUEST_AGENT_VECTORS_DIR'];
  if (override !== undefined && override !== '') return override;
  return join(sharedDir(), 'vectors', 'guest-agent');
}

export function vectorsDir(): string {
  const override = process.env['KVVM_VECTORS_DIR'];
  if (override !== undefined && override !== '') return override;
  return join(sharedDir(), 'vectors', 'keyvault');
}

export interface SecretVector {
  /** File name, e.g. secret-pkcs12-2020.json */
  file: string;
  value: string;
  contentType: string | undefined;
  /** Secret version: the last segment of body.id. */
  version: string;
  /** attributes.nbf / exp as dates (equal to the certificate's validity, per the README). */
  notBefore: Date;
  expires: Date;
}

interface RecordedSecret {
  body: { value: string; contentType?: string; id: string; attributes: { nbf: number; exp: number } };
}

/** Every recorded certificate-backed secret (files named secret-*.json). */
export function loadSecretVectors(): SecretVector[] {
  const dir = vectorsDir();
  return readdirSync(dir)
    .filter((f) => /^secret-.*\.json$/.test(f))
    .sort()
    .map((file) => {
      const json = JSON.parse(readFileSync(join(dir, file), 'utf8')) as RecordedSecret;
      const { body } = json;
      return {
        file,
        value: body.value,
        contentType: body.contentType,
        version: body.id.split('/').pop() ?? '',
        notBefore: new Date(body.attributes.nbf * 1000),
        expires: new Date(body.attributes.exp * 1000),
      };
    });
}

export function loadSecretVector(file: string): SecretVector {
  const found = loadSecretVectors().find((v) => v.file === file);
  if (!found) throw new Error(`no secret vector ${file} in ${vectorsDir()}`);
  return found;
}

/**
 * The SHA-1 fingerprints the vectors README states, per file (uppercase hex without colons), read from the README
 * itself so the tests compare against the independent openssl verification rather than against a copy.
 */
export function readmeFingerprints(): Map<string, string> {
  const text = readFileSync(join(vectorsDir(), 'README.md'), 'utf8');
  const result = new Map<string, string>();
  for (const section of text.split(/^## /m).slice(1)) {
    const file = section.split('\n', 1)[0]?.trim() ?? '';
    const match = /SHA-1 fingerprint `([0-9A-F:]+)`/.exec(section);
    if (file.endsWith('.json') && match?.[1]) result.set(file, match[1].replace(/:/g, ''));
  }
  return result;
}
