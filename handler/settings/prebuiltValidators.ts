/**
 * The settings validators the package carries prebuilt, by name (validatorCache.ts). Empty here, in the
 * development build: the package build (build/bundle.ts) replaces this module with the ajv standalone code it
 * generates from the package's schemas/, each validator with the key of the schemas it was made from.
 */
import type { ValidateFunction } from 'ajv';

export const PREBUILT_VALIDATORS: Readonly<Partial<Record<string, { key: string; validate: ValidateFunction }>>> = {};
