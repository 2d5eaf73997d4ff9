/**
 * The pure part of a sync: given the versions the vault says should be installed and what the store holds,
 * decide what to do. No I/O, no clock: table-tested in test/planner.test.ts.
 */
import type { InstalledCertificate } from '../stores/store.js';
import type { SecretVersionInfo } from '../vault/types.js';

/** How many versions of each certificate stay installed (4.x keeps the two newest). */
export const VERSIONS_KEPT = 2;

export type PlannedAction = { kind: 'install'; version: string } | { kind: 'activate'; version: string } | { kind: 'remove'; version: string };

/**
 * The versions that should be installed, newest first: the enabled versions ordered by creation time, at most
 * `keep` of them. A pinned version yields exactly that version. Disabled versions are never wanted (an operator
 * disables a version to withdraw it), and versions not yet valid are skipped so a pre-staged certificate does
 * not replace one that works today.
 */
export function selectWantedVersions(versions: readonly SecretVersionInfo[], options: { keep: number; now: Date; pinnedVersion?: string | undefined }): SecretVersionInfo[] {
  if (options.pinnedVersion !== undefined) {
    const pinned = versions.find((v) => v.version.toLowerCase() === options.pinnedVersion?.toLowerCase());
    return pinned && pinned.enabled ? [pinned] : [];
  }
  const t = options.now.getTime();
  return versions
    .filter((v) => v.enabled)
    .filter((v) => v.notBefore === undefined || v.notBefore.getTime() <= t)
    .slice()
    .sort((a, b) => (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0))
    .slice(0, options.keep);
}

/**
 * Actions that bring the store to `wanted` (newest first). Order matters: the newest version is installed and
 * activated first, then the previous one is installed, and nothing is removed until the newest wanted version is
 * active. The applier (certificateSync.ts) stops at a failure of the newest version or of the activation, and only
 * warns when an older version fails, so a failed download never costs the machine the certificate it has.
 */
export function planCertificate(wanted: readonly string[], installed: readonly InstalledCertificate[]): PlannedAction[] {
  const newest = wanted[0];
  if (newest === undefined) return []; // nothing to converge to: keep what is installed
  const have = new Set(installed.map((i) => i.version));
  const actions: PlannedAction[] = [];
  // The newest first, all the way to active: the previous version is a convenience, the newest is the point.
  if (!have.has(newest)) actions.push({ kind: 'install', version: newest });
  const active = installed.find((i) => i.active);
  if (active?.version !== newest) actions.push({ kind: 'activate', version: newest });
  for (const version of wanted.slice(1)) {
    if (!have.has(version)) actions.push({ kind: 'install', version });
  }
  const keep = new Set(wanted);
  for (const item of installed) {
    if (!keep.has(item.version)) actions.push({ kind: 'remove', version: item.version });
  }
  return actions;
}
