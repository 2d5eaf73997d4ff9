import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KvvmError } from '../errors.js';
import { describeJsonError } from '../jsonError.js';
import { isNotFound } from './atomicFile.js';
import { decryptProtectedSettings, type DecryptOptions } from './protectedSettings.js';

export interface ReadHandlerSettingsOptions extends DecryptOptions {
  /** Where the agent keeps <THUMB>.crt/.prv: /var/lib/waagent on Linux. */
  protectedSettingsKeyDir: string;
  /**
   * Replaces the <THUMB>.crt/.prv decryption: on Windows the certificate and its key are in LocalMachine\My and
   * CryptDecryptMessage decrypts (protectedSettingsWindows.ts).
   */
  decrypt?: ((base64: string, thumbprint: string) => Promise<Record<string, unknown>>) | undefined;
}

export interface HandlerSettings {
  /** Public settings with protected settings deep-merged over them. Contains secrets: never log it. */
  settings: unknown;
  /** Public settings as the agent wrote them (a STRING when PowerShell double-encoded them); undefined if null. */
  publicSettings: unknown;
  hadProtectedSettings: boolean;
  /** The decrypted protected settings alone (to scrub their values from status, events and logs). Secret. */
  protectedSettings?: Record<string, unknown>;
}

/**
 * Read <configFolder>/<seq>.settings the way the agent writes it:
 * `{"runtimeSettings":[{"handlerSettings":{"publicSettings":…,"protectedSettings":"<base64 CMS>",
 * "protectedSettingsCertThumbprint":"<SHA-1>"}}]}`, or an EMPTY file for an extension without settings.
 */
export async function readHandlerSettings(configFolder: string, seq: number, options: ReadHandlerSettingsOptions): Promise<HandlerSettings> {
  const file = join(configFolder, `${seq}.settings`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KvvmError('no-settings', isNotFound(err) ? `${file} does not exist.` : `Cannot read ${file}: ${(err as Error).message}.`, {
      fix: 'Check that the guest agent wrote the settings for this sequence number; reapply the extension settings.',
    });
  }
  const body = text.replace(/^\uFEFF/, '');
  if (body.trim() === '') return { settings: {}, publicSettings: undefined, hadProtectedSettings: false };

  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw corrupt(file, `not valid JSON ${describeJsonError(body)}`);
  }
  const runtime = isObject(doc) ? doc['runtimeSettings'] : undefined;
  if (!Array.isArray(runtime) || runtime.length === 0) throw corrupt(file, '"runtimeSettings" is missing or empty');
  const first: unknown = runtime[0];
  if (!isObject(first)) throw corrupt(file, '"runtimeSettings[0]" is not an object');
  const handler = first['handlerSettings'];
  if (handler === null || handler === undefined) return { settings: {}, publicSettings: undefined, hadProtectedSettings: false };
  if (!isObject(handler)) throw corrupt(file, '"runtimeSettings[0].handlerSettings" is not an object');

  // The agent writes missing values as null: null means absent everywhere at this level.
  const publicSettings = handler['publicSettings'] ?? undefined;
  const protectedBlob = handler['protectedSettings'] ?? undefined;
  if (protectedBlob === undefined || protectedBlob === '') {
    return { settings: publicSettings ?? {}, publicSettings, hadProtectedSettings: false };
  }
  if (typeof protectedBlob !== 'string') throw corrupt(file, '"protectedSettings" is not a base64 string');
  const thumbprint = handler['protectedSettingsCertThumbprint'];
  if (typeof thumbprint !== 'string' || !/^[0-9A-Fa-f]{40}$/.test(thumbprint)) {
    throw corrupt(file, '"protectedSettingsCertThumbprint" is missing or not a SHA-1 thumbprint');
  }
  const secret = options.decrypt
    ? await options.decrypt(protectedBlob, thumbprint)
    : await decryptProtectedSettings(protectedBlob, thumbprint, options.protectedSettingsKeyDir, options);
  return { settings: mergeSettings(publicSettings, secret), publicSettings, hadProtectedSettings: true, protectedSettings: secret };
}

/**
 * Protected over public, objects merged key by key, anything else replaced. A public value that is a JSON string
 * (PowerShell double encoding) is decoded for the merge only, so the secrets are not lost; `publicSettings` still
 * carries the raw string so settings validation can warn about it.
 */
export function mergeSettings(publicSettings: unknown, protectedSettings: Record<string, unknown>): unknown {
  let base: unknown = publicSettings ?? {};
  if (typeof base === 'string') {
    try {
      base = JSON.parse(base);
    } catch {
      return base; // not JSON either: let validation report it, the protected values cannot be placed
    }
  }
  return isObject(base) ? deepMerge(base, protectedSettings) : protectedSettings;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null || value === undefined) continue;
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function corrupt(file: string, what: string): KvvmError {
  return new KvvmError('settings-corrupt', `${file} is corrupt: ${what}.`, {
    fix: 'Reapply the extension settings (for example az vm extension set) so the guest agent rewrites the file.',
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
