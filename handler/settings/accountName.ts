/**
 * Linux account names in "acls", one rule for the settings check and the store (which passes them to setfacl,
 * chown and getent), so nothing passes validation and fails only at install.
 *
 * The rule is useradd's (shadow-utils): letters, digits, "_", "." and "-", not starting with "-" (it would read as
 * an option), an optional trailing "$" (Samba machine accounts), at most 32 characters; or a numeric id. Numeric
 * ids stop at 4294967294: 4294967295 is (uid_t)-1, "leave unchanged" to chown, and larger values wrap around
 * (4294967296 would become 0, root) in the 32-bit id the kernel takes.
 */
const NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}$/;
const MAX_ACCOUNT_ID = 4_294_967_294;

/** Why `value` is not an account name kvvm accepts, or undefined when it is one. */
export function accountNameProblem(value: string): string | undefined {
  if (/^[0-9]+$/.test(value)) {
    return value.length > 10 || Number(value) > MAX_ACCOUNT_ID ? `the numeric id ${value} is above ${MAX_ACCOUNT_ID}, the largest Linux id` : undefined;
  }
  const bare = value.endsWith('$') ? value.slice(0, -1) : value;
  if (value.length > 32) return `it is ${value.length} characters long; Linux account names have at most 32`;
  if (value.startsWith('-')) return 'it starts with "-"';
  if (!NAME.test(bare)) {
    const bad = [...bare].find((c) => !/[A-Za-z0-9_.-]/.test(c));
    if (bad === '@') return 'it contains "@"; a directory account (SSSD, user@domain) is given by its numeric id';
    return bad === undefined
      ? 'it is not a Linux account name'
      : `it contains ${JSON.stringify(bad)}; Linux account names have only letters, digits, "_", "." and "-" (and an optional final "$")`;
  }
  return undefined;
}

export function isAccountName(value: string): boolean {
  return accountNameProblem(value) === undefined;
}
