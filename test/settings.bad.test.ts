/**
 * The catalogue of bad settings: every entry must be rejected with a stable reason at the right JSON path, and
 * the message must name the offending key or value and come with a fix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSettings } from '../handler/settings/parse.js';

import { BAD_SETTINGS as CASES } from './fixtures/settings/badCases.js';
import { cert, sms } from './fixtures/settings/helpers.js';

describe('bad settings are rejected with a reason, a path, a message naming the culprit, and a fix', () => {
  it('the catalogue holds at least 40 distinct cases', () => {
    assert.ok(CASES.length >= 40, `only ${CASES.length} cases`);
    assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length, 'case names must be unique');
  });
  for (const c of CASES) {
    it(c.name, () => {
      const result = parseSettings(c.settings, { platform: c.platform ?? 'linux', env: {} });
      assert.equal(result.ok, false, `expected rejection, got ${JSON.stringify(result)}`);
      if (result.ok) return;
      const hit = result.problems.find((p) => p.reason === c.reason && p.path === c.path);
      assert.ok(hit, `no problem ${c.reason} at ${JSON.stringify(c.path)}; got ${JSON.stringify(result.problems, null, 1)}`);
      assert.ok(hit.message.length > 0 && hit.fix.length > 0, 'message and fix must be non-empty');
      assert.ok(hit.message.includes(c.mention), `message ${JSON.stringify(hit.message)} should mention ${JSON.stringify(c.mention)}`);
      if (c.secret !== undefined) assert.ok(!JSON.stringify(result).includes(c.secret), 'no problem or warning repeats the secret');
    });
  }
});

describe('problem details that operators rely on', () => {
  it('a host outside the allowed clouds lists the allowed suffixes and the override variable', () => {
    const r = parseSettings(sms(['https://certs.example.com/secrets/cert1']), { platform: 'linux', env: {} });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.problems[0]?.message ?? '', /\.vault\.azure\.net/);
    assert.match(r.problems[0]?.fix ?? '', /KVVM_EXTRA_VAULT_SUFFIXES/);
  });
  it('a wrong-case store location names the right spelling in the fix', () => {
    const r = parseSettings(cert({ certificateStoreLocation: 'LOCALMACHINE' }), { platform: 'win32', env: {} });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.problems[0]?.fix ?? '', /"LocalMachine"/);
  });
  it('schema and logical problems are reported together in one pass', () => {
    const r = parseSettings(sms(['http://a.vault.azure.net/secrets/x', 'https://b.vault.azure.net/keys/y'], { pollingIntervalInS: 'soon', linkOnRenewal: 'maybe' }), {
      platform: 'linux',
      env: {},
    });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.problems.map((p) => p.reason).sort(), ['invalid-boolean', 'invalid-number', 'url-keys-path', 'url-not-https']);
  });
});
