import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KvvmError } from '../handler/errors.js';
import { describeJsonError } from '../handler/jsonError.js';
import { parseHandlerEnvironment } from '../handler/protocol/handlerEnvironment.js';
import { writeStatus } from '../handler/protocol/status.js';
import { MAX_ACLS, MAX_OBSERVED_CERTIFICATES } from '../handler/settings/bounds.js';
import { decodeSettings } from '../handler/settings/decode.js';
import { parseSettings } from '../handler/settings/parse.js';
import { SHARED_DIRECTORIES } from '../handler/settings/sharedDirectories.js';
import { loadSettingsSchemas } from '../handler/settings/schema.js';
import { TEMP_PREFIX } from '../handler/stores/pemFiles.js';
import { STORE_MARKER } from '../handler/stores/storeDirectory.js';
import { lookupIdInFile } from '../handler/stores/pemAcl.js';

/**
 * Issue 13, "Low": each item rejected as early as it can be, with the JSON path and the fix, or fixed.
 * One catalogue; each row is the input the review used.
 */

const URL = 'https://myvault.vault.azure.net/secrets/web';
const AT = '/secretsManagementSettings/observedCertificates/0';

function entry(extra: Record<string, unknown>): unknown {
  return { secretsManagementSettings: { observedCertificates: [{ url: URL, ...extra }] } };
}

function problemsOf(settings: unknown): Array<{ path: string; reason: string; message: string; fix: string }> {
  const result = parseSettings(settings, { platform: 'linux', env: {} });
  return result.ok ? [] : result.problems;
}

describe('settings the review found accepted or badly explained', () => {
  const rejected: Array<[string, unknown, string, string]> = [
    ['link name that is a kvvm temp file', entry({ customSymbolicLinkName: '.kvvm-tmp.x' }), `${AT}/customSymbolicLinkName`, 'invalid-link-name'],
    ['link name that is the store marker', entry({ customSymbolicLinkName: '.kvvm-store' }), `${AT}/customSymbolicLinkName`, 'invalid-link-name'],
    ['link name read as an option', entry({ customSymbolicLinkName: '-rf' }), `${AT}/customSymbolicLinkName`, 'invalid-link-name'],
    ['link name with a newline', entry({ customSymbolicLinkName: 'web\n.pem' }), `${AT}/customSymbolicLinkName`, 'invalid-link-name'],
    ['link name with a trailing newline', entry({ customSymbolicLinkName: 'web.pem\n' }), `${AT}/customSymbolicLinkName`, 'invalid-link-name'],
    ['user with "@"', entry({ acls: [{ user: 'user@x.com' }] }), `${AT}/acls/0/user`, 'invalid-acl-name'],
    ['user of 33 characters', entry({ acls: [{ user: 'a'.repeat(33) }] }), `${AT}/acls/0/user`, 'invalid-acl-name'],
    ['group id 2^32 (would wrap to 0, root)', entry({ acls: [{ group: '4294967296' }] }), `${AT}/acls/0/group`, 'invalid-acl-name'],
    ['uid -1 spelled as 4294967295', entry({ acls: [{ user: '4294967295' }] }), `${AT}/acls/0/user`, 'invalid-acl-name'],
    ['user starting with "-"', entry({ acls: [{ user: '-x' }] }), `${AT}/acls/0/user`, 'invalid-acl-name'],
    ['relative store folder', entry({ certificateStoreLocation: 'certs/web' }), `${AT}/certificateStoreLocation`, 'store-location-not-absolute'],
    ['too many acls', entry({ acls: Array.from({ length: MAX_ACLS + 1 }, () => ({ group: 'web' })) }), `${AT}/acls`, 'too-many-items'],
    ['a URL of 3000 characters', entry({ url: `${URL}${'x'.repeat(3000)}` }), `${AT}/url`, 'too-long'],
  ];
  for (const [name, settings, path, reason] of rejected) {
    it(`rejects ${name} at ${path} with a fix`, () => {
      const found = problemsOf(settings).find((p) => p.path === path);
      assert.equal(found?.reason, reason, JSON.stringify(problemsOf(settings)));
      assert.ok((found?.fix ?? '').length > 10);
    });
  }

  it('a directory account written user@domain is told to use its numeric id', () => {
    assert.match(problemsOf(entry({ acls: [{ user: 'user@x.com' }] }))[0]?.message ?? '', /numeric id/);
  });

  it('accepts the names useradd accepts: a Samba machine account "nobody$", numeric ids up to 4294967294', () => {
    assert.deepEqual(problemsOf(entry({ acls: [{ user: 'nobody$' }, { group: '4294967294' }, { user: 'a'.repeat(32) }] })), []);
  });

  it('every shared system directory as certificateStoreLocation is refused at its JSON path', () => {
    for (const dir of SHARED_DIRECTORIES) {
      const found = problemsOf(entry({ certificateStoreLocation: `${dir}/` }));
      assert.equal(found[0]?.path, `${AT}/certificateStoreLocation`, dir);
      assert.match(found[0]?.reason ?? '', dir === '/' ? /store-location-root/ : /store-location-shared/, dir);
    }
    assert.deepEqual(problemsOf(entry({ certificateStoreLocation: '/etc/ssl/private/web' })), [], 'a subdirectory is fine');
  });

  it('"__proto__" and "constructor" as keys are reported as unknown keys at their paths, not "belongs in [object Object]"', () => {
    const settings = JSON.parse(`{"secretsManagementSettings": {"observedCertificates": ["${URL}"], "__proto__": 1, "constructor": 2}}`) as unknown;
    const result = parseSettings(settings, { platform: 'linux', env: {} });
    // Unknown keys are problems or (with the version profiles) warnings; either way, said plainly at their path.
    const said = result.ok ? result.config.warnings.map((w) => ({ path: w.path, text: w.message })) : result.problems.map((p) => ({ path: p.path, text: `${p.message} ${p.fix}` }));
    for (const key of ['__proto__', 'constructor']) {
      const entry = said.find((x) => x.path === `/secretsManagementSettings/${key}`);
      assert.ok(entry, `${key}: ${JSON.stringify(said)}`);
      assert.doesNotMatch(entry.text, /\[object|function/);
    }
  });

  it('1e400 is reported as a number too large, not as null', () => {
    const settings = JSON.parse(`{"secretsManagementSettings": {"observedCertificates": ["${URL}"], "pollingIntervalInS": 1e400}}`) as unknown;
    const found = problemsOf(settings)[0];
    assert.equal(found?.path, '/secretsManagementSettings/pollingIntervalInS');
    assert.match(found?.message ?? '', /too large/);
    assert.doesNotMatch(found?.message ?? '', /null/);
  });

  it('a settings string that is not JSON is reported by position, never quoting its text', () => {
    const secret = 'hunter2-SECRET-value';
    for (const text of [`{"secretsManagementSettings": ${secret}}`, `{"a": "${secret}`, `{"a": 1, ${secret}`]) {
      const decoded = decodeSettings(text);
      assert.ok(!decoded.ok);
      const message = decoded.problems[0]?.message ?? '';
      assert.match(message, /at character \d+/);
      assert.doesNotMatch(message, /hunter2|SECRET/);
    }
  });

  it('describeJsonError names line and column of the first bad character', () => {
    assert.equal(describeJsonError('{\n  "a": x\n}'), 'at character 9 (line 2, column 8): unexpected character');
    assert.match(describeJsonError('{"a": [1, 2'), /ends too early/);
  });

  it('more observed certificates than the bound is one problem, found by counting', () => {
    const urls = Array.from({ length: MAX_OBSERVED_CERTIFICATES + 1 }, (_, i) => `${URL}${i}`);
    const found = problemsOf({ secretsManagementSettings: { observedCertificates: urls } });
    assert.deepEqual(
      found.map((p) => [p.path, p.reason]),
      [['/secretsManagementSettings/observedCertificates', 'too-many-items']],
    );
  });

  it("the bounds in bounds.ts are the schema's, and the store's own file names are the ones settings refuse", () => {
    const union = loadSettingsSchemas().union.schema as { definitions: Record<string, { maxItems?: number; properties?: Record<string, { maxItems?: number }> }> };
    assert.equal(union.definitions['secretsManagementSettings']?.properties?.['observedCertificates']?.maxItems, MAX_OBSERVED_CERTIFICATES);
    assert.equal(union.definitions['acls']?.maxItems, MAX_ACLS);
    assert.equal(problemsOf(entry({ customSymbolicLinkName: `${TEMP_PREFIX}y` }))[0]?.reason, 'invalid-link-name');
    assert.equal(problemsOf(entry({ customSymbolicLinkName: STORE_MARKER }))[0]?.reason, 'invalid-link-name');
  });

  it('a numeric id above the largest Linux id never resolves (no wrap-around to uid/gid 0)', () => {
    assert.equal(lookupIdInFile('/etc/group', '4294967296'), undefined);
    assert.equal(lookupIdInFile('/etc/group', '4294967294'), 4294967294);
  });
});

describe('agent folders the review found giving raw errno codes', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kvvm-low-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('a relative folder in HandlerEnvironment.json is refused by name', () => {
    const text = JSON.stringify([
      { name: 'Microsoft.Azure.KeyVault.KeyVaultForLinux', version: 1.0, handlerEnvironment: { logFolder: '/var/log/x', configFolder: 'config', statusFolder: '/s' } },
    ]);
    const parsed = parseHandlerEnvironment(text, '/ext');
    assert.ok('problem' in parsed);
    assert.match(parsed.problem, /configFolder" "config" is not an absolute path/);
  });

  it('a status folder that is a file says so and how to fix it', async () => {
    const file = join(root, 'status-is-a-file');
    await writeFile(file, '');
    await assert.rejects(
      writeStatus(file, 0, 'KeyVaultForLinux', { operation: 'Enable', status: 'success', code: 0, message: 'ok' }, new Date()),
      (e: unknown) => e instanceof KvvmError && e.reason === 'status-write' && /a file where a directory is needed/.test(e.message) && /Move away/.test(e.fix ?? ''),
    );
  });

  it('a read-only status folder says so and how to fix it', async () => {
    const folder = join(root, 'ro');
    await mkdir(folder);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'kvvm-ro', folder], { encoding: 'utf8' });
    assert.equal(mounted.status, 0, `a read-only tmpfs is needed (tests run as root): ${mounted.stderr}`);
    try {
      await assert.rejects(
        writeStatus(folder, 0, 'KeyVaultForLinux', { operation: 'Enable', status: 'success', code: 0, message: 'ok' }, new Date()),
        (e: unknown) => e instanceof KvvmError && /read-only file system \(EROFS\)/.test(e.message) && /writable again/.test(e.fix ?? ''),
      );
    } finally {
      spawnSync('umount', [folder]);
    }
  });
});
