/**
 * parseSettings: the one entry point from "merged handler settings" to KvvmConfig.
 *
 * Pipeline: decode (null/empty, double-encoded strings) → union JSON Schema (shape, unknown keys with
 * suggestions) → logical checks (URLs, GUIDs, store locations, platform rules) → generation detection against
 * the per-generation schemas. Schema and logical problems are reported together so an operator fixes everything
 * in one redeployment.
 */
import type { KvvmConfig, SettingsWarning } from './config.js';
import { decodeSettings } from './decode.js';
import { normalizeSettings, type NormalizeOptions } from './normalize.js';
import { oversizedArrays } from './bounds.js';
import { problem, problemsFromAjv, UNKNOWN_KEY_IGNORED, type SettingsProblem } from './problems.js';
import { detectGeneration, loadSettingsSchemas, shapeErrors } from './schema.js';

export type SettingsResult = { ok: true; config: KvvmConfig } | { ok: false; problems: SettingsProblem[] };

export interface ParseSettingsOptions extends NormalizeOptions {
  /** Folder holding the JSON Schemas; default: the package's schemas/. */
  schemasDir?: string;
}

/** A logical problem under a path the schema already complained about adds nothing (and may be nonsense). */
function mergeProblems(schema: SettingsProblem[], logical: SettingsProblem[]): SettingsProblem[] {
  // A set of paths and a walk up each logical path: linear, where comparing every pair was quadratic.
  const schemaPaths = new Set(schema.map((s) => s.path));
  const covered = (path: string): boolean => {
    for (let p = path; ; p = p.slice(0, p.lastIndexOf('/'))) {
      if (schemaPaths.has(p)) return true;
      if (p === '') return false;
    }
  };
  return [...schema, ...logical.filter((l) => !covered(l.path))];
}

/** A deep copy of `data` without the keys at `paths` (JSON pointers); only plain objects and arrays are copied. */
function withoutKeys(data: Record<string, unknown>, paths: readonly string[]): Record<string, unknown> {
  const copy = structuredClone(data);
  for (const path of paths) {
    const segments = path
      .slice(1)
      .split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const key = segments.pop();
    let cur: unknown = copy;
    for (const s of segments) cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[s] : undefined;
    if (key !== undefined && typeof cur === 'object' && cur !== null && !Array.isArray(cur)) delete (cur as Record<string, unknown>)[key];
  }
  return copy;
}

export function parseSettings(raw: unknown, options: ParseSettingsOptions): SettingsResult {
  const decoded = decodeSettings(raw);
  if (!decoded.ok) return { ok: false, problems: decoded.problems };
  let data = decoded.value;

  const schemas = options.schemasDir === undefined ? loadSettingsSchemas() : loadSettingsSchemas(options.schemasDir);
  // Arrays over their bound are refused before anything walks them (the schema's maxItems, checked first so
  // that an oversized list costs no more than counting it).
  const oversized = oversizedArrays(data);
  if (oversized.length > 0) return { ok: false, problems: oversized };
  let schemaProblems = problemsFromAjv(shapeErrors(schemas, data), data);
  // Unknown keys that resemble no known key are ignored, as the Microsoft handler does; near misses stay errors.
  const ignored = schemaProblems.filter((p) => p.reason === UNKNOWN_KEY_IGNORED);
  const ignoredWarnings: SettingsWarning[] = ignored.map((p) => ({ path: p.path, message: `${p.message} ${p.fix}` }));
  if (ignored.length > 0) {
    data = withoutKeys(
      data,
      ignored.map((p) => p.path),
    );
    schemaProblems = problemsFromAjv(shapeErrors(schemas, data), data);
  }

  const { parts, problems: logical } = normalizeSettings(data, options);
  const problems = mergeProblems(schemaProblems, logical);
  if (problems.length > 0) return { ok: false, problems };

  const generation = detectGeneration(schemas, data);
  if (generation === undefined) {
    // The union schema is meant to be exactly the union of the generation schemas; this is a kvvm bug.
    return {
      ok: false,
      problems: [
        problem(
          '',
          'schema-mismatch',
          'The settings passed the combined schema but none of the 1.0/3.0/4.0 schemas (a kvvm defect).',
          'Report this to the kvvm maintainers with the settings file (secrets redacted).',
        ),
      ],
    };
  }
  const warnings: SettingsWarning[] = [...decoded.warnings, ...ignoredWarnings, ...parts.warnings];
  return { ok: true, config: { generation, ...parts, warnings } };
}
