/**
 * How much settings may ask for. The JSON Schemas carry the same bounds (maxItems, maxLength) for editors and
 * for the error messages; these are checked first, by counting, so that an oversized array is refused before
 * the schema validator or the logical checks walk it (a test keeps both in step).
 */
import { pointer, problem, type SettingsProblem } from './problems.js';
import { asObject } from './values.js';

export const MAX_OBSERVED_CERTIFICATES = 10_000;
export const MAX_ACLS = 64;
const MAX_ACCOUNTS = 64;

/** Problems for every bounded array over its limit; [] when none is. Linear in the number of entries. */
export function oversizedArrays(data: unknown): SettingsProblem[] {
  const sms = asObject(asObject(data)?.['secretsManagementSettings']);
  const list = sms?.['observedCertificates'];
  if (!Array.isArray(list)) return [];
  const at = pointer('secretsManagementSettings', 'observedCertificates');
  if (list.length > MAX_OBSERVED_CERTIFICATES) {
    return [
      problem(
        at,
        'too-many-items',
        `observedCertificates has ${list.length} entries; at most ${MAX_OBSERVED_CERTIFICATES} are allowed.`,
        'Split the certificates over several VMs or extensions, or observe fewer certificates.',
      ),
    ];
  }
  const out: SettingsProblem[] = [];
  list.forEach((entry, i) => {
    const o = asObject(entry);
    for (const [key, max] of [
      ['acls', MAX_ACLS],
      ['accounts', MAX_ACCOUNTS],
    ] as const) {
      const value = o?.[key];
      if (Array.isArray(value) && value.length > max) {
        out.push(
          problem(
            pointer('secretsManagementSettings', 'observedCertificates', i, key),
            'too-many-items',
            `${key} has ${value.length} entries; at most ${max} are allowed.`,
            key === 'acls' ? 'Grant access through a group instead of listing every user.' : 'Grant access through a group instead of listing every account.',
          ),
        );
      }
    }
  });
  return out;
}
