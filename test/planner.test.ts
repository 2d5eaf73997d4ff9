import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planCertificate, selectWantedVersions } from '../handler/engine/planner.js';
import type { InstalledCertificate } from '../handler/stores/store.js';
import type { SecretVersionInfo } from '../handler/vault/types.js';

const now = new Date('2026-06-01T00:00:00Z');

function v(version: string, created: string, extra: Partial<SecretVersionInfo> = {}): SecretVersionInfo {
  return {
    version,
    enabled: true,
    createdOn: new Date(created),
    updatedOn: undefined,
    notBefore: undefined,
    expiresOn: undefined,
    contentType: 'application/x-pkcs12',
    managed: true,
    ...extra,
  };
}

function installed(version: string, active: boolean): InstalledCertificate {
  return { vaultName: 'v', secretName: 's', version, thumbprint: version.toUpperCase(), notAfter: now, active, location: '/x' };
}

test('the two newest enabled versions are wanted, newest first, whatever order the vault lists them in', () => {
  const wanted = selectWantedVersions([v('a', '2026-01-01'), v('c', '2026-03-01'), v('b', '2026-02-01')], { keep: 2, now });
  assert.deepEqual(
    wanted.map((w) => w.version),
    ['c', 'b'],
  );
});

test('disabled and not-yet-valid versions are never wanted', () => {
  const wanted = selectWantedVersions([v('old', '2026-01-01'), v('disabled', '2026-02-01', { enabled: false }), v('future', '2026-03-01', { notBefore: new Date('2027-01-01') })], {
    keep: 2,
    now,
  });
  assert.deepEqual(
    wanted.map((w) => w.version),
    ['old'],
  );
});

test('a pinned version is the only one wanted, and nothing when it is disabled', () => {
  const list = [v('a', '2026-01-01'), v('b', '2026-02-01', { enabled: false })];
  assert.deepEqual(
    selectWantedVersions(list, { keep: 2, now, pinnedVersion: 'A' }).map((w) => w.version),
    ['a'],
  );
  assert.deepEqual(selectWantedVersions(list, { keep: 2, now, pinnedVersion: 'b' }), []);
});

const planTable: Array<{ name: string; wanted: string[]; installed: InstalledCertificate[]; expect: string[] }> = [
  { name: 'first sync installs and activates the newest, then the previous', wanted: ['n', 'p'], installed: [], expect: ['install n', 'activate n', 'install p'] },
  { name: 'nothing changed plans nothing', wanted: ['n', 'p'], installed: [installed('n', true), installed('p', false)], expect: [] },
  {
    name: 'a rotation installs the new version, activates it, keeps the previous and removes the oldest',
    wanted: ['r', 'n'],
    installed: [installed('n', true), installed('p', false)],
    expect: ['install r', 'activate r', 'remove p'],
  },
  { name: 'an installed but inactive newest version is activated', wanted: ['n'], installed: [installed('n', false), installed('o', true)], expect: ['activate n', 'remove o'] },
  { name: 'an empty wanted list keeps everything installed', wanted: [], installed: [installed('n', true)], expect: [] },
  {
    name: 'a rollback (newest disabled in the vault) reactivates the older version and drops the withdrawn one',
    wanted: ['p'],
    installed: [installed('n', true), installed('p', false)],
    expect: ['activate p', 'remove n'],
  },
];

for (const row of planTable) {
  test(`plan: ${row.name}`, () => {
    const actions = planCertificate(row.wanted, row.installed).map((a) => `${a.kind} ${a.version}`);
    assert.deepEqual(actions, row.expect);
  });
}

test('plan: nothing is ever removed before the newest version is active', () => {
  const combos: InstalledCertificate[][] = [[], [installed('a', true)], [installed('a', true), installed('b', false)], [installed('b', false), installed('c', true)]];
  for (const inst of combos) {
    for (const wanted of [['x'], ['x', 'a'], ['a', 'b'], ['c']]) {
      const actions = planCertificate(wanted, inst);
      const firstRemove = actions.findIndex((a) => a.kind === 'remove');
      const activateIdx = actions.findIndex((a) => a.kind === 'activate');
      const alreadyActive = inst.find((i) => i.active)?.version === wanted[0];
      if (firstRemove >= 0) assert.ok(alreadyActive || (activateIdx >= 0 && activateIdx < firstRemove), JSON.stringify({ wanted, actions }));
    }
  }
});
