/**
 * The extension image definition a publisher submits, per package: the checked-in templates in manifest/ with
 * their double-brace placeholders filled from package.json and the platform table. Values are escaped for the
 * target format; a placeholder left unfilled (or misspelt) fails the build.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PUBLISHER, type Platform } from './platforms.js';

export interface PackageJson {
  name?: string;
  version?: string;
  description?: string;
  homepage?: string;
  license?: string;
  author?: string | { name?: string };
}

type ImageValues = Record<'namespace' | 'type' | 'version' | 'label' | 'description' | 'eula' | 'privacyUri' | 'homepageUri' | 'companyName' | 'supportedOS', string>;

function imageValues(platform: Platform, pkg: PackageJson, version: string): ImageValues {
  const os = platform.os === 'linux' ? 'Linux' : 'Windows';
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  return {
    namespace: PUBLISHER,
    type: platform.type,
    version,
    label: `Azure Key Vault certificates for ${os} VMs (kvvm)`,
    description: pkg.description ?? 'Keeps Key Vault certificates installed on virtual machines and scale sets.',
    eula: '%EULA_URI%',
    privacyUri: '%PRIVACY_URI%',
    homepageUri: pkg.homepage ?? '%HOMEPAGE_URI%',
    companyName: author ?? '%COMPANY_NAME%',
    supportedOS: platform.supportedOs,
  };
}

function fillTemplate(template: string, values: Record<string, string>, escape: (s: string) => string): string {
  const out = template.replace(/\{\{(\w+)\}\}/g, (_m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`template placeholder {{${key}}} has no value`);
    return escape(v);
  });
  if (/\{\{/.test(out)) throw new Error('template has a malformed placeholder');
  return out;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Inside a JSON string literal: JSON.stringify's escaping without the surrounding quotes. */
function escapeJsonString(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

export interface ExtensionImageFiles {
  xml: string;
  json: string;
}

export async function renderExtensionImage(repoRoot: string, platform: Platform, pkg: PackageJson, version: string): Promise<ExtensionImageFiles> {
  const values = imageValues(platform, pkg, version);
  const xml = fillTemplate(await readFile(join(repoRoot, 'manifest', 'extension-image.template.xml'), 'utf8'), values, escapeXml);
  const json = fillTemplate(await readFile(join(repoRoot, 'manifest', 'shared-vm-extension-version.template.json'), 'utf8'), values, escapeJsonString);
  JSON.parse(json); // a template edit that breaks JSON fails here, not at publish time
  return { xml, json };
}
