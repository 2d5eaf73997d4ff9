/**
 * What people paste into `kvvm validate`: public settings, a guest-agent .settings file, an ARM extension
 * resource, {settings}/{publicSettings}, or a whole ARM template or parameters file. Each KeyVaultFor* extension
 * found becomes one target with its platform and typeHandlerVersion when the document says them.
 *
 * ARM expressions ("[parameters('x')]") are evaluated at deployment: where a key's value may come from one, the
 * expression is replaced by a stand-in that passes the checks for that key (or the key is dropped, so its default
 * applies), noted in the output, and everything else is checked as written.
 */
import { DEFAULT_LINUX_STORE } from './config.js';
import { DEFAULT_MSI_ENDPOINT } from './auth.js';
import { asObject, asString } from './values.js';

export interface ValidationTarget {
  kind: string;
  /** Where in the document, e.g. resources[0].resources[1] (empty for a bare settings file). */
  at: string;
  settings: unknown;
  notes: string[];
  platform?: 'linux' | 'win32';
  handlerVersion?: string;
}

/** "[...]" is an ARM expression; "[[...]" is ARM's escape for a literal string starting with "[". */
function isArmExpression(v: unknown): boolean {
  return typeof v === 'string' && /^\s*\[[^[][\s\S]*\]\s*$/.test(v);
}

const STAND_IN_URL = 'https://evaluated-at-deployment.vault.azure.net/secrets/evaluated-at-deployment';
const STAND_IN_GUID = '00000000-0000-0000-0000-000000000000';
/** Bounds the walk over a pasted template (nested deployments can be deep, and a document can be hostile). */
const MAX_DEPTH = 32;
const MAX_TARGETS = 200;

function standIn(key: string, platform: 'linux' | 'win32'): unknown {
  switch (key) {
    case 'url':
      return STAND_IN_URL;
    case 'msiClientId':
    case 'clientId':
      return STAND_IN_GUID;
    case 'msiEndpoint':
      return DEFAULT_MSI_ENDPOINT;
    case 'pollingIntervalInS':
      return '3600';
    case 'certificateStoreName':
      return 'MY';
    case 'certificateStoreLocation':
      return platform === 'win32' ? 'LocalMachine' : DEFAULT_LINUX_STORE;
    case 'observedCertificates':
      return [{ url: STAND_IN_URL }];
    case 'clientCertificateSubjectName':
      return 'evaluated-at-deployment';
    default:
      return undefined; // booleans, names, lists: dropped, so the default applies
  }
}

/** Replace ARM expressions in settings by stand-ins; returns the new value and one note per expression. */
export function replaceArmExpressions(settings: unknown, platform: 'linux' | 'win32'): { settings: unknown; notes: string[] } {
  const notes: string[] = [];
  const walk = (v: unknown, path: string, key: string, depth: number): unknown => {
    if (isArmExpression(v)) {
      const sub = key === 'observedCertificates[]' ? STAND_IN_URL : standIn(key, platform);
      notes.push(
        `${path || '(settings)'} is the ARM expression ${String(v).trim()}: evaluated at deployment, ${sub === undefined ? 'not checked' : 'checked with a stand-in value'}.`,
      );
      return sub;
    }
    if (depth > MAX_DEPTH) return v;
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${path}/${i}`, key === 'observedCertificates' ? 'observedCertificates[]' : `${key}[]`, depth + 1));
    const o = asObject(v);
    if (!o) return v;
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(o)) {
      const value = walk(item, `${path}/${k}`, k, depth + 1);
      if (value !== undefined) out[k] = value;
    }
    return out;
  };
  return { settings: walk(settings, '', '', 0), notes };
}

function platformOfType(type: unknown): 'linux' | 'win32' | undefined {
  const t = asString(type) ?? '';
  if (/KeyVaultForLinux/i.test(t)) return 'linux';
  if (/KeyVaultFor(Windows|PaaS)/i.test(t)) return 'win32';
  return undefined;
}

function versionText(v: unknown): string | undefined {
  if (typeof v === 'number') return String(v);
  const s = asString(v);
  if (s === undefined || isArmExpression(s)) return undefined;
  return s.trim();
}

/** A value as the template holds it: an ARM expression as written, anything else as JSON. */
function showValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** One extension's `properties` → a target: settings with plain protectedSettings merged over them, as the agent does. */
function fromProperties(props: Record<string, unknown>, kind: string, at: string): ValidationTarget {
  const notes: string[] = [];
  const pub = props['settings'];
  const prot = asObject(props['protectedSettings']);
  const pubObj = asObject(pub);
  const settings = prot && pubObj ? { ...pubObj, ...prot } : (pub ?? null);
  const target: ValidationTarget = { kind, at, settings, notes };
  const platform = platformOfType(props['type']);
  if (platform !== undefined) target.platform = platform;
  const version = versionText(props['typeHandlerVersion']);
  if (version !== undefined) target.handlerVersion = version;
  else if (props['typeHandlerVersion'] !== undefined)
    notes.push(`typeHandlerVersion ${showValue(props['typeHandlerVersion'])} is evaluated at deployment; pass --handler-version to choose the profile.`);
  return target;
}

/** Every KeyVaultFor* extension in an ARM template: resources, nested resources, scale-set extensionProfile, nested deployments. */
function templateTargets(resources: unknown, at: string, out: ValidationTarget[], depth: number): void {
  if (!Array.isArray(resources) || depth > MAX_DEPTH) return;
  resources.forEach((r, i) => {
    if (out.length >= MAX_TARGETS) return;
    const res = asObject(r);
    const props = asObject(res?.['properties']);
    if (!res || !props) return;
    const here = `${at}[${i}]`;
    if (platformOfType(props['type']) !== undefined && ('settings' in props || 'protectedSettings' in props)) {
      out.push(fromProperties(props, `ARM extension ${asString(res['name']) ?? ''}`.trim(), here));
    }
    const profile = asObject(asObject(asObject(props['virtualMachineProfile'])?.['extensionProfile']));
    const extensions = profile?.['extensions'];
    if (Array.isArray(extensions)) {
      extensions.forEach((e, j) => {
        const ext = asObject(e);
        const p = asObject(ext?.['properties']);
        if (ext && p && platformOfType(p['type']) !== undefined) {
          out.push(fromProperties(p, `scale-set extension ${asString(ext['name']) ?? ''}`.trim(), `${here}.properties.virtualMachineProfile.extensionProfile.extensions[${j}]`));
        }
      });
    }
    templateTargets(res['resources'], `${here}.resources`, out, depth + 1);
    templateTargets(asObject(props['template'])?.['resources'], `${here}.properties.template.resources`, out, depth + 1);
  });
}

function parameterDefaults(template: Record<string, unknown>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [name, p] of Object.entries(asObject(template['parameters']) ?? {})) {
    const d = asObject(p);
    if (d && 'defaultValue' in d && !isArmExpression(d['defaultValue'])) out.set(name.toLowerCase(), d['defaultValue']);
  }
  return out;
}

/** Exact "[parameters('x')]" values replaced by x's defaultValue, as a deployment without overrides would see them. */
function withParameterDefaults(v: unknown, defaults: Map<string, unknown>, used: Set<string>, depth: number): unknown {
  if (typeof v === 'string') {
    const m = /^\s*\[\s*parameters\(\s*'([^']+)'\s*\)\s*\]\s*$/.exec(v);
    const name = m?.[1];
    if (name !== undefined && defaults.has(name.toLowerCase())) {
      used.add(name);
      return defaults.get(name.toLowerCase());
    }
    return v;
  }
  if (depth > MAX_DEPTH) return v;
  if (Array.isArray(v)) return v.map((x) => withParameterDefaults(x, defaults, used, depth + 1));
  const o = asObject(v);
  return o ? Object.fromEntries(Object.entries(o).map(([k, x]) => [k, withParameterDefaults(x, defaults, used, depth + 1)])) : v;
}

/** Find the settings inside whatever document the operator pointed us at. Never empty. */
export function extractTargets(doc: unknown): ValidationTarget[] {
  const o = asObject(doc);
  const runtime = o?.['runtimeSettings'];
  if (Array.isArray(runtime)) {
    const hs = asObject(asObject(runtime[0])?.['handlerSettings']);
    const notes: string[] = [];
    if (typeof hs?.['protectedSettings'] === 'string' && hs['protectedSettings'] !== '') {
      notes.push('protectedSettings are encrypted to the VM certificate and were not checked.');
    }
    return [{ kind: 'guest-agent .settings file', at: '', settings: hs?.['publicSettings'] ?? null, notes }];
  }
  if (o && Array.isArray(o['resources'])) {
    const out: ValidationTarget[] = [];
    const used = new Set<string>();
    templateTargets(withParameterDefaults(o['resources'], parameterDefaults(o), used, 0), 'resources', out, 0);
    for (const t of out) for (const name of used) t.notes.push(`parameters('${name}') is taken from its defaultValue.`);
    if (out.length > 0) return out;
    return [{ kind: 'ARM template', at: '', settings: null, notes: ['The template has no KeyVaultForLinux/KeyVaultForWindows extension resource.'] }];
  }
  if (o && asObject(o['parameters']) && /deploymentParameters/i.test(asString(o['$schema']) ?? '')) {
    const out: ValidationTarget[] = [];
    for (const [name, p] of Object.entries(asObject(o['parameters']) ?? {})) {
      const value = asObject(p)?.['value'];
      if (asObject(value)?.['secretsManagementSettings'] !== undefined)
        out.push({ kind: `parameters file, parameter ${name}`, at: `parameters.${name}.value`, settings: value, notes: [] });
    }
    if (out.length > 0) return out;
    return [{ kind: 'ARM parameters file', at: '', settings: null, notes: ['No parameter holds extension settings (an object with secretsManagementSettings).'] }];
  }
  const props = asObject(o?.['properties']);
  if (props && ('settings' in props || 'protectedSettings' in props || 'typeHandlerVersion' in props)) {
    return [fromProperties(props, 'ARM extension resource', '')];
  }
  if (o && !('secretsManagementSettings' in o)) {
    for (const key of ['settings', 'publicSettings'] as const) {
      if (key in o) return [{ kind: `{${key}: …}`, at: '', settings: o[key], notes: [] }];
    }
  }
  return [{ kind: 'public settings', at: '', settings: doc, notes: [] }];
}
