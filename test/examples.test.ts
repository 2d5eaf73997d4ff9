/**
 * Every settings example shipped in examples/ (settings files, ARM templates, Bicep, az CLI, PowerShell) and every
 * documented example from the spec (filled in under test/fixtures/settings/) is valid for its platform.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../handler/paths.js';
import { parseSettings } from '../handler/settings/index.js';
import { formatProblems } from '../handler/settings/problems.js';
import { profileFor } from '../handler/settings/profile.js';

const ROOT = packageRoot();
const EX = join(ROOT, 'examples');
type Platform = 'linux' | 'win32';
type Json = Record<string, unknown>;

function assertValid(settings: unknown, platform: Platform, where: string, handlerVersion?: string): void {
  const profile = handlerVersion === undefined ? {} : { profile: profileFor(handlerVersion, platform, 'option') };
  const r = parseSettings(settings, { platform, env: {}, ...profile });
  if (!r.ok) assert.fail(`${where} is not valid for ${platform}:\n${formatProblems(r.problems, { maxChars: 10_000 })}`);
  assert.ok(r.config.observedCertificates.length > 0, `${where} observes nothing`);
}

function readJson(path: string): Json {
  return JSON.parse(readFileSync(path, 'utf8')) as Json;
}

/** The subset of ARM template expressions the examples use: parameters('x') and format('…{0}…', …). */
function evalArm(value: unknown, params: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((v) => evalArm(v, params));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, evalArm(v, params)]));
  if (typeof value !== 'string' || !/^\[.*\]$/s.test(value) || value.startsWith('[[')) return value;
  const expr = value.slice(1, -1).trim();
  const param = (e: string): unknown => {
    const m = /^parameters\('([^']+)'\)$/.exec(e.trim());
    if (!m || !((m[1] ?? '') in params)) throw new Error(`unsupported ARM expression ${e}`);
    return params[m[1] ?? ''];
  };
  const fmt = /^format\('([^']*)',\s*(.*)\)$/s.exec(expr);
  if (fmt) {
    const args = (fmt[2] ?? '').split(/,\s*(?=parameters\()/).map(param);
    return (fmt[1] ?? '').replace(/\{(\d+)\}/g, (_, i: string) => String(args[Number(i)]));
  }
  return param(expr);
}

/** name and properties of each resource, expressions evaluated (location/dependsOn are not needed here). */
function evaluated(template: Json): Json[] {
  const params = templateParams(template);
  return (template['resources'] as Json[]).map((r) => ({ name: evalArm(r['name'], params), properties: evalArm(r['properties'], params) }));
}

function templateParams(template: Json): Record<string, unknown> {
  const defs = (template['parameters'] ?? {}) as Record<string, { defaultValue?: unknown }>;
  return Object.fromEntries(Object.entries(defs).map(([k, v]) => [k, v.defaultValue]));
}

/**
 * A PowerShell hashtable literal (the subset the examples use: @{ k = v }, @( … ), '…', "…", $true/$false,
 * numbers) → JSON value, the way ConvertTo-Json would see it.
 */
function psToJson(src: string): unknown {
  let i = 0;
  const ws = (): void => {
    while (i < src.length) {
      if (/\s|;/.test(src[i] ?? '')) i++;
      else if (src[i] === '#') while (i < src.length && src[i] !== '\n') i++;
      else break;
    }
  };
  const value = (): unknown => {
    ws();
    if (src.startsWith('@{', i)) {
      i += 2;
      const obj: Json = {};
      for (;;) {
        ws();
        if (src[i] === '}') {
          i++;
          return obj;
        }
        const key = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))?.[0];
        if (!key) throw new Error(`bad key at ${src.slice(i, i + 30)}`);
        i += key.length;
        ws();
        if (src[i] !== '=') throw new Error(`expected = after ${key}`);
        i++;
        obj[key] = value();
      }
    }
    if (src.startsWith('@(', i)) {
      i += 2;
      const arr: unknown[] = [];
      for (;;) {
        ws();
        if (src[i] === ',') i++;
        ws();
        if (src[i] === ')') {
          i++;
          return arr;
        }
        arr.push(value());
      }
    }
    const q = src[i];
    if (q === "'" || q === '"') {
      const end = src.indexOf(q, i + 1);
      const s = src.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const word = /^(\$true|\$false|-?\d+(\.\d+)?)/i.exec(src.slice(i))?.[0];
    if (!word) throw new Error(`unsupported PowerShell value at ${src.slice(i, i + 30)}`);
    i += word.length;
    return word.toLowerCase() === '$true' ? true : word.toLowerCase() === '$false' ? false : Number(word);
  };
  return value();
}

describe('examples/ settings files', () => {
  const files = readdirSync(EX).filter((f) => f.endsWith('.settings.json'));
  it('there is one for each OS', () => assert.deepEqual(files.sort(), ['linux.settings.json', 'windows.settings.json']));
  for (const f of files) {
    it(`${f}: "$schema" points at the shipped schema, and the settings are valid`, () => {
      const doc = readJson(join(EX, f));
      assert.equal(doc['$schema'], '../schemas/settings.schema.json');
      assert.ok(existsSync(resolve(EX, String(doc['$schema']))));
      assertValid(doc, f.startsWith('windows') ? 'win32' : 'linux', f);
    });
  }
});

describe('examples/arm templates', () => {
  const dir = join(EX, 'arm');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  it('VM Linux, VM Windows and a sequenced VMSS are there', () => assert.deepEqual(files.sort(), ['vm-linux.json', 'vm-windows.json', 'vmss-linux-sequenced.json']));
  for (const f of files) {
    it(`${f}: the Key Vault extension's settings (parameter defaults filled in) are valid`, () => {
      const t = readJson(join(dir, f));
      const resources = evaluated(t);
      const ours = resources.filter((r) => (r['properties'] as Json)['publisher'] === 'Microsoft.Azure.KeyVault');
      assert.equal(ours.length, 1);
      const props = ours[0]?.['properties'] as Json;
      assert.equal(typeof props['settings'], 'object'); // an object, never a JSON string
      assertValid(props['settings'], props['type'] === 'KeyVaultForWindows' ? 'win32' : 'linux', f, String(props['typeHandlerVersion']));
    });
  }
  it('vmss-linux-sequenced.json: the app extension waits for ours through provisionAfterExtensions', () => {
    const t = readJson(join(dir, 'vmss-linux-sequenced.json'));
    const resources = evaluated(t);
    const oursName = String(resources.find((r) => (r['properties'] as Json)['publisher'] === 'Microsoft.Azure.KeyVault')?.['name']).split('/')[1];
    const app = resources.find((r) => (r['properties'] as Json)['type'] === 'CustomScript');
    assert.deepEqual((app?.['properties'] as Json)['provisionAfterExtensions'], [oursName]);
  });
});

describe('examples/bicep, examples/cli, examples/powershell', () => {
  it('Bicep loads a settings file that is valid, and drops "$schema" before sending', () => {
    const bicep = readFileSync(join(EX, 'bicep', 'vm-linux.bicep'), 'utf8');
    const rel = /loadJsonContent\('([^']+)'\)/.exec(bicep)?.[1];
    assert.ok(rel, 'no loadJsonContent in the Bicep file');
    assertValid(readJson(resolve(EX, 'bicep', rel)), 'linux', `bicep → ${rel}`);
    assert.match(bicep, /filter\(items\(fileSettings\), kv => kv\.key != '\$schema'\)/);
    assert.match(bicep, /settings: settings/);
  });
  it('the az CLI script passes a settings file that is valid', () => {
    const sh = readFileSync(join(EX, 'cli', 'deploy-vm.sh'), 'utf8');
    const rel = /--settings (\S+)\s*$/m.exec(sh)?.[1];
    assert.ok(rel, 'no --settings FILE in the script');
    assertValid(readJson(resolve(EX, 'cli', rel)), 'linux', `cli → ${rel}`);
    assert.match(sh, /--publisher Microsoft\.Azure\.KeyVault/);
  });
  it('the PowerShell script passes a hashtable (not a JSON string) whose content is valid for Windows', () => {
    const ps = readFileSync(join(EX, 'powershell', 'Deploy-KeyVaultExtension.ps1'), 'utf8');
    const start = ps.indexOf('$settings = @{');
    assert.ok(start >= 0);
    const settings = psToJson(ps.slice(start + '$settings = '.length));
    assertValid(settings, 'win32', 'PowerShell $settings');
    assert.match(ps, /-Settings \$settings/);
    assert.doesNotMatch(ps.replace(/^#.*$/gm, ''), /ConvertTo-Json/);
  });
});

describe('documented examples from the spec (test/fixtures/settings, placeholders filled in)', () => {
  const dir = join(ROOT, 'test', 'fixtures', 'settings');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  it('the fixtures are there', () => assert.ok(files.length >= 8, files.join(', ')));
  for (const f of files) {
    // Each is checked under the profile of the version it names: the file name (win-3.0-…, paas-1.0) or the
    // resource's typeHandlerVersion.
    it(`${f} is valid under the profile of the version it names`, () => {
      const doc = readJson(join(dir, f));
      const props = doc['properties'] as Json | undefined;
      const settings = props && 'settings' in props ? props['settings'] : doc;
      // The announcement blog (blog-minimal) is about the 1.0 extension.
      const version = (props?.['typeHandlerVersion'] as string | undefined) ?? /-(\d+\.\d+)/.exec(f)?.[1] ?? (f === 'blog-minimal.json' ? '1.0' : undefined);
      assert.ok(version, `${f} names no version`);
      assertValid(settings, f.startsWith('linux') ? 'linux' : 'win32', f, version);
    });
  }
});
