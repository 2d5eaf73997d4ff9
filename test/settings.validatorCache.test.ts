/**
 * The validators valid settings need come from ajv standalone code in the package's compile cache folder
 * (settings/validatorCache.ts): a process that finds them there validates settings without loading ajv, and
 * reaches the same verdicts as the process that compiled them. Real child processes, as enable and the service
 * start; the cache files are named by the hash of what they were made from, so the tests share them safely.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COMPILE_CACHE_DIR } from '../handler/compileCache.js';
import { packageRoot } from '../handler/paths.js';
import { sms, URL1, URL2 } from './fixtures/settings/helpers.js';

/** Valid settings of both forms (4.0 objects, 1.0 URL strings: the latter runs all three generation checks). */
const VALID = [sms([{ url: URL1 }]), sms([URL1, URL2]), sms([{ url: URL1, certificateStoreLocation: '/var/lib/certs' }], { pollingIntervalInS: '600' })];

/** Parses VALID and `extra` in a new process (Linux rules); prints the verdicts (generation or problem reasons) and whether ajv got loaded. */
function verdictsInChild(extra: object[] = []): { verdicts: string[]; ajvLoaded: boolean } {
  const parse = pathToFileURL(join(packageRoot(), 'lib', 'handler', 'settings', 'parse.js')).href;
  const script = `
    import { createRequire } from 'node:module';
    const { parseSettings } = await import(${JSON.stringify(parse)});
    const docs = ${JSON.stringify([...VALID, ...extra])};
    const verdicts = docs.map((d) => { const r = parseSettings(d, { platform: 'linux', env: {} }); return r.ok ? r.config.generation : r.problems.map((p) => p.reason).join(','); });
    const ajvLoaded = Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/ajv/dist/core.js'));
    process.stdout.write(JSON.stringify({ verdicts, ajvLoaded }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { verdicts: string[]; ajvLoaded: boolean };
}

describe('settings validators from the compile cache', () => {
  it('a process that finds them cached validates valid settings without loading ajv, with the same verdicts', () => {
    const first = verdictsInChild();
    assert.ok(existsSync(join(packageRoot(), COMPILE_CACHE_DIR, 'ajv')), 'the first process left the validators in the cache');
    const cached = readdirSync(join(packageRoot(), COMPILE_CACHE_DIR, 'ajv')).filter((f) => f.endsWith('.cjs'));
    assert.ok(cached.some((f) => f.startsWith('settings-union-')) && cached.some((f) => f.startsWith('settings-4.0-')), cached.join(', '));
    const second = verdictsInChild();
    assert.deepEqual(second.verdicts, first.verdicts);
    assert.deepEqual(second.verdicts, ['4.0', '1.0', '4.0']);
    assert.equal(second.ajvLoaded, false, 'ajv was loaded although every validator valid settings need was cached');
  });

  it('invalid settings still get the full report (ajv loaded for it), the same from a cached and a fresh process', () => {
    const bad = [{ secretsManagementSettings: { pollingIntervalInS: 'soon', observedCertificates: [{ url: 5 }] } }, { secretsManagementSettings: {} }];
    const a = verdictsInChild(bad);
    const b = verdictsInChild(bad);
    assert.deepEqual(a.verdicts, b.verdicts);
    assert.ok(
      a.verdicts.slice(-2).every((v) => v.length > 0 && !/^\d\.\d$/.test(v)),
      a.verdicts.join('; '),
    );
    assert.equal(b.ajvLoaded, true);
  });
});
