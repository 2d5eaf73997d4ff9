/**
 * The JSON Schemas in schemas/ are the source of truth for the SHAPE of settings (keys, types); editors use the
 * same files. Logical checks (URLs, GUIDs, paths, platform rules) live in normalize.ts, because a schema can only
 * say "does not match pattern", never why.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import { schemasDir } from '../paths.js';
import { ajvConstructor, decidingValidator, type ValidatorSpec } from './validatorCache.js';

export type SettingsGeneration = '1.0' | '3.0' | '4.0';

const UNION_SCHEMA_FILE = 'settings.schema.json';
const GENERATION_SCHEMA_FILES: Readonly<Record<SettingsGeneration, string>> = {
  '1.0': 'settings-1.0.schema.json',
  '3.0': 'settings-3.0.schema.json',
  '4.0': 'settings-4.0.schema.json',
};

export interface SettingsSchemas {
  /** Every generation at once; the first gate, and what editors use. Reports every error (allErrors). */
  union: ValidateFunction;
  /** The same schema stopping at the first error: linear in the input, the gate before `union` runs. */
  unionFirstError: ValidateFunction;
  /** One observedCertificates entry (either form), reporting every error: see shapeErrors. */
  observedItem: ValidateFunction;
  byGeneration: Readonly<Record<SettingsGeneration, ValidateFunction>>;
}

function readSchemaText(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8');
}

const cache = new Map<string, SettingsSchemas>();

/** A value made on first use: valid settings never need the reporting validators (see loadSettingsSchemas). */
function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/**
 * The validators that answer yes/no questions (which generation? valid at all?) and stop at the first error.
 * allErrors costs quadratic time where many array items fail through a $ref (ajv concatenates the error list per
 * item): 64k 1.0 URLs took 42 s in the 3.0 check. Every settings check needs these, so the package build
 * generates them ahead of time (build/bundle.ts; validatorCache.ts), and this list is what it generates.
 */
const DECIDING_OPTIONS: Options = { allErrors: false, allowUnionTypes: true, strict: true };

function unionOf(ajv: Ajv, dir: string): ValidateFunction {
  const validate = ajv.getSchema(UNION_SCHEMA_FILE);
  if (!validate) throw new Error(`kvvm: cannot compile ${join(dir, UNION_SCHEMA_FILE)}`);
  return validate;
}

// The generation schemas $ref "settings.schema.json#/definitions/..."; registering the union under its file
// name resolves those refs offline, exactly as an editor resolves them next to each other on disk.
function unionSpec(dir: string, unionText: string): ValidatorSpec {
  return {
    name: 'settings-union',
    options: DECIDING_OPTIONS,
    sources: [unionText],
    compile: (ajv) => unionOf(ajv.addSchema(JSON.parse(unionText) as Record<string, unknown>, UNION_SCHEMA_FILE), dir),
  };
}

function generationSpec(g: SettingsGeneration, unionText: string, text: string): ValidatorSpec {
  return {
    name: `settings-${g}`,
    options: DECIDING_OPTIONS,
    sources: [unionText, text],
    compile: (ajv) => ajv.addSchema(JSON.parse(unionText) as Record<string, unknown>, UNION_SCHEMA_FILE).compile(JSON.parse(text) as Record<string, unknown>),
  };
}

/** Every first-error validator of the schemas in `dir`: what the package build generates (build/bundle.ts). */
export function decidingValidatorSpecs(dir: string): ValidatorSpec[] {
  const unionText = readSchemaText(dir, UNION_SCHEMA_FILE);
  return [unionSpec(dir, unionText), ...(['1.0', '3.0', '4.0'] as const).map((g) => generationSpec(g, unionText, readSchemaText(dir, GENERATION_SCHEMA_FILES[g])))];
}

/**
 * The validators for the schemas in `dir` (default: the package's schemas/). Memoised per folder, and each one
 * made on first use: compiling costs tens of milliseconds per schema, and valid settings (what enable and the
 * service see almost always) need only the first-error validators, which the package carries prebuilt
 * (validatorCache.ts), never the reporting ones (bench/, figure 3).
 */
export function loadSettingsSchemas(dir: string = schemasDir()): SettingsSchemas {
  const hit = cache.get(dir);
  if (hit) return hit;
  const unionText = once(() => readSchemaText(dir, UNION_SCHEMA_FILE));
  const unionSchema = (): Record<string, unknown> => JSON.parse(unionText()) as Record<string, unknown>;
  // allErrors: report every problem in one status, not one per redeployment. verbose: problems.ts reads the
  // failing schema's property list to suggest the key the operator meant. Only invalid settings need these.
  const reporting = once(() => new (ajvConstructor())({ allErrors: true, verbose: true, allowUnionTypes: true, strict: true }).addSchema(unionSchema(), UNION_SCHEMA_FILE));
  const union = once(() => unionOf(reporting(), dir));
  const unionFirstError = once(() => decidingValidator(unionSpec(dir, unionText())));
  const observedItem = once(() => reporting().compile({ $ref: `${UNION_SCHEMA_FILE}#/definitions/secretsManagementSettings/properties/observedCertificates/items` }));
  const generation = (g: SettingsGeneration): (() => ValidateFunction) =>
    once(() => decidingValidator(generationSpec(g, unionText(), readSchemaText(dir, GENERATION_SCHEMA_FILES[g]))));
  const byGeneration = { '1.0': generation('1.0'), '3.0': generation('3.0'), '4.0': generation('4.0') };
  const schemas: SettingsSchemas = {
    get union() {
      return union();
    },
    get unionFirstError() {
      return unionFirstError();
    },
    get observedItem() {
      return observedItem();
    },
    byGeneration: {
      get '1.0'() {
        return byGeneration['1.0']();
      },
      get '3.0'() {
        return byGeneration['3.0']();
      },
      get '4.0'() {
        return byGeneration['4.0']();
      },
    },
  };
  cache.set(dir, schemas);
  return schemas;
}

/**
 * The newest generation whose schema accepts `data` (which already passed the union schema). 4.0 is tried
 * first: settings without any 3.0-only key (linkOnRenewal, requireInitialSync, keyExportable) ARE 4.0 settings,
 * and 4.0 behaviour is kvvm's default anyway.
 */
export function detectGeneration(schemas: SettingsSchemas, data: unknown): SettingsGeneration | undefined {
  for (const g of ['4.0', '3.0', '1.0'] as const) {
    if (schemas.byGeneration[g](data)) return g;
  }
  return undefined;
}

/** Where observedCertificates sits, and a stand-in entry every schema generation accepts. */
const OBSERVED_PATH = '/secretsManagementSettings/observedCertificates';
const STAND_IN_ENTRY = 'https://stand-in';

/**
 * Every shape error of `data`, in time linear in its size. The union schema alone would be quadratic here: ajv
 * concatenates the error list at every failing array item reached through a $ref (10,000 entries with an unknown
 * key took 21 s). So the entries are validated one by one, each with its own short error list, and the rest of
 * the document with one stand-in entry in their place.
 */
export function shapeErrors(schemas: SettingsSchemas, data: unknown): ErrorObject[] {
  if (schemas.unionFirstError(data)) return [];
  const sms = (data as { secretsManagementSettings?: unknown } | null)?.secretsManagementSettings;
  const list = typeof sms === 'object' && sms !== null && !Array.isArray(sms) ? (sms as Record<string, unknown>)['observedCertificates'] : undefined;
  if (!Array.isArray(list) || list.length === 0) {
    schemas.union(data);
    return [...(schemas.union.errors ?? [])];
  }
  const rest = { ...(data as Record<string, unknown>), secretsManagementSettings: { ...(sms as Record<string, unknown>), observedCertificates: [STAND_IN_ENTRY] } };
  const errors: ErrorObject[] = [];
  if (!schemas.union(rest)) errors.push(...(schemas.union.errors ?? []));
  list.forEach((entry, i) => {
    if (schemas.observedItem(entry)) return;
    for (const err of schemas.observedItem.errors ?? []) errors.push({ ...err, instancePath: `${OBSERVED_PATH}/${i}${err.instancePath}` });
  });
  return errors;
}
