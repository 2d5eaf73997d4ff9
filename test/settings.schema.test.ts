/** The schema files themselves: loadable, editor-friendly, and consistent with each other. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { schemasDir } from '../handler/paths.js';
import { detectGeneration, loadSettingsSchemas } from '../handler/settings/schema.js';
import { editDistance, suggestKey } from '../handler/settings/suggest.js';
import { fixture, sms, URL1 } from './fixtures/settings/helpers.js';

const files = readdirSync(schemasDir())
  .filter((f) => /^settings.*\.schema\.json$/.test(f))
  .sort();

describe('settings schemas', () => {
  it('there is a union schema and one per generation', () => {
    assert.deepEqual(files, ['settings-1.0.schema.json', 'settings-3.0.schema.json', 'settings-4.0.schema.json', 'settings.schema.json']);
  });
  it('each declares $schema and a title, for editors', () => {
    for (const f of files) {
      const s = JSON.parse(readFileSync(join(schemasDir(), f), 'utf8')) as Record<string, unknown>;
      assert.equal(s['$schema'], 'http://json-schema.org/draft-07/schema#', f);
      assert.equal(typeof s['title'], 'string', f);
    }
  });
  it('every documented setting in the union schema carries a description', () => {
    const s = JSON.parse(readFileSync(join(schemasDir(), 'settings.schema.json'), 'utf8')) as {
      definitions: Record<string, { properties?: Record<string, unknown>; description?: string; $ref?: string }>;
    };
    const d = s.definitions;
    const described = (p: unknown): boolean => {
      const o = p as { description?: string; $ref?: string };
      if (typeof o.description === 'string') return true;
      const target = o.$ref?.replace('#/definitions/', '');
      return target !== undefined && typeof d[target]?.description === 'string';
    };
    for (const def of ['secretsManagementSettings', 'observedCertificateV3', 'authenticationSettings']) {
      for (const [key, prop] of Object.entries(d[def]?.properties ?? {})) assert.ok(described(prop), `${def}.${key} has no description`);
    }
  });
  it('4.0 rejects the keys 4.0 removed, 3.0 accepts them, 1.0 only takes URL strings', () => {
    const schemas = loadSettingsSchemas();
    assert.equal(schemas.byGeneration['4.0'](sms([{ url: URL1 }], { linkOnRenewal: true })), false);
    assert.equal(schemas.byGeneration['4.0'](sms([{ url: URL1, keyExportable: true }])), false);
    assert.equal(schemas.byGeneration['3.0'](sms([{ url: URL1, keyExportable: true }], { requireInitialSync: true })), true);
    assert.equal(schemas.byGeneration['1.0'](sms([{ url: URL1 }])), false);
    assert.equal(schemas.byGeneration['1.0'](sms([URL1], { certificateStoreLocation: 'LocalMachine' })), true);
  });
  it('every fixture the union schema accepts is accepted by exactly the generation detected', () => {
    const schemas = loadSettingsSchemas();
    for (const name of ['win-3.0-powershell.json', 'win-4.0-cli.json', 'paas-1.0.json', 'linux-3.0.json', 'blog-minimal.json']) {
      const data = fixture(name);
      assert.equal(schemas.union(data), true, name);
      assert.ok(detectGeneration(schemas, data), name);
    }
  });
  it('the union schema rejects a misspelled key', () => {
    assert.equal(loadSettingsSchemas().union(sms([URL1], { pollingIntervalInSeconds: '3600' })), false);
  });
});

describe('key suggestions', () => {
  it('edit distance counts substitutions, insertions and transpositions', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('acls', 'alcs'), 1);
    assert.equal(editDistance('', 'abc'), 3);
  });
  it('suggests near misses, prefixes and known aliases, and nothing for unrelated words', () => {
    const keys = ['pollingIntervalInS', 'observedCertificates', 'certificateStoreLocation', 'requireInitialSync'];
    assert.equal(suggestKey('observedCertificate', keys), 'observedCertificates');
    assert.equal(suggestKey('pollingInterval', keys), 'pollingIntervalInS');
    assert.equal(suggestKey('certStoreLocation', keys), 'certificateStoreLocation');
    assert.equal(suggestKey('requireInitalSync', keys), 'requireInitialSync');
    assert.equal(suggestKey('banana', keys), undefined);
  });
});
