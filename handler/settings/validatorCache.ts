/**
 * The settings validators that valid settings need (schema.ts: the union's first-error gate and the generation
 * checks). Compiling them with ajv costs enable and every service start about a Node start's worth of time
 * (bench/, figure 3), so the package build generates them as ajv standalone code (build/bundle.ts fills
 * prebuiltValidators.ts) and a packaged kvvm validates valid settings without loading ajv. Nothing generates or
 * writes executable code at run time.
 *
 * Each prebuilt validator carries the key of what it was made from (validatorKey: the options, its name, the
 * schema texts), and is used only for exactly those schemas; anything else (the development build, whose
 * prebuiltValidators.ts is empty, or another schemas folder) is compiled with ajv.
 */
import { createRequire } from 'node:module';
import type { Ajv, Options, ValidateFunction } from 'ajv';
import { PREBUILT_VALIDATORS } from './prebuiltValidators.js';

/** One validator: what it is made from, and how ajv makes it (an ajv instance with `options` given). */
export interface ValidatorSpec {
  name: string;
  options: Options;
  /** The schema texts it depends on. */
  sources: readonly string[];
  compile: (ajv: Ajv) => ValidateFunction;
}

/** ajv, loaded only for a validator that is not prebuilt (or for the reporting validators, on invalid settings). */
export function ajvConstructor(): typeof Ajv {
  return (createRequire(import.meta.url)('ajv') as { Ajv: typeof Ajv }).Ajv;
}

/**
 * What a validator is made from, in full (its options, name and schema texts as one JSON text): compared whole, not
 * hashed, so checking a prebuilt validator needs no node:crypto, whose loading costs enable about 5 ms (lazyCrypto.ts;
 * a hash in JavaScript, tried at stop 19, ran cold in the interpreter and cost more than loading crypto). The bundle
 * carries these texts, about 20 KiB a validator.
 */
export function validatorKey(spec: Pick<ValidatorSpec, 'name' | 'options' | 'sources'>): string {
  return JSON.stringify([spec.options, spec.name, spec.sources]);
}

/** The validator `spec` describes: the prebuilt one when it was made from exactly these schemas, else compiled. */
export function decidingValidator(spec: ValidatorSpec): ValidateFunction {
  const prebuilt = PREBUILT_VALIDATORS[spec.name];
  if (prebuilt !== undefined && prebuilt.key === validatorKey(spec)) return prebuilt.validate;
  return spec.compile(new (ajvConstructor())(spec.options));
}
