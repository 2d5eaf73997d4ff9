/**
 * overrides.ts: the one reader of KVVM_* variables. Values are validated (a catalogue of bad ones), the typed
 * object is what the service and the vault host check use, and the CLI refuses to start with a bad value.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidOverridesError, overrideLogLines, readOverrides, serviceOverrideVariables } from '../handler/overrides.js';
import { isAllowedVaultHost } from '../handler/cloud.js';
import { spawnSync } from 'node:child_process';

const HANDLER_DIR = fileURLToPath(new URL('../../handler/', import.meta.url));
const CLI = fileURLToPath(new URL('../handler/cli.js', import.meta.url));

describe('KVVM_* overrides', () => {
  it('unset variables give the production defaults', () => {
    const r = readOverrides({ PATH: '/usr/bin' });
    assert.deepEqual(r.overrides, {
      extraVaultSuffixes: [],
      armEndpoint: undefined,
      armCaFile: undefined,
      waagentDir: undefined,
      devPollIntervalS: undefined,
      devRestMinS: undefined,
      noJitter: false,
      retryBaseMs: undefined,
      logConsole: false,
      restartBaseMs: undefined,
      initNone: false,
    });
    assert.deepEqual(r.set, []);
    assert.deepEqual(overrideLogLines(r), []);
  });

  it('set variables become typed fields, and each is logged with its value', () => {
    const r = readOverrides({
      KVVM_EXTRA_VAULT_SUFFIXES: ' .Vault.Local.AzureStack.External , localhost',
      KVVM_DEV_POLL_INTERVAL_S: '2',
      KVVM_NO_JITTER: '1',
      KVVM_RETRY_BASE_MS: '150',
      KVVM_WAAGENT_DIR: '/tmp/w',
      KVVM_LOG_CONSOLE: '0',
    });
    assert.deepEqual(r.invalid, []);
    assert.deepEqual(r.overrides.extraVaultSuffixes, ['.vault.local.azurestack.external', 'localhost']);
    assert.equal(r.overrides.devPollIntervalS, 2);
    assert.equal(r.overrides.noJitter, true);
    assert.equal(r.overrides.retryBaseMs, 150);
    assert.equal(r.overrides.waagentDir, '/tmp/w');
    assert.equal(r.overrides.logConsole, false);
    const service = readOverrides({ KVVM_RESTART_BASE_MS: '100', KVVM_INIT: 'none' });
    assert.deepEqual(service.invalid, []);
    assert.equal(service.overrides.restartBaseMs, 100);
    assert.equal(service.overrides.initNone, true);
    assert.deepEqual(
      readOverrides({ KVVM_RESTART_BASE_MS: '1.5', KVVM_INIT: 'sysv' }).invalid.map((i) => i.name),
      ['KVVM_RESTART_BASE_MS', 'KVVM_INIT'],
    );
    const lines = overrideLogLines(r).map((l) => `${l.level} ${l.message}`);
    assert.ok(lines.includes('warn development override: KVVM_DEV_POLL_INTERVAL_S=2'), lines.join('\n'));
    assert.ok(lines.includes('info environment: KVVM_EXTRA_VAULT_SUFFIXES= .Vault.Local.AzureStack.External , localhost'), lines.join('\n'));
    assert.equal(lines.length, 6);
  });

  const BAD: Array<[string, string]> = [
    ['KVVM_DEV_POLL_INTERVAL_S', 'abc'],
    ['KVVM_DEV_POLL_INTERVAL_S', '0'],
    ['KVVM_DEV_POLL_INTERVAL_S', '-5'],
    ['KVVM_DEV_POLL_INTERVAL_S', ''],
    ['KVVM_DEV_POLL_INTERVAL_S', '1e9'],
    ['KVVM_DEV_POLL_INTERVAL_S', 'Infinity'],
    ['KVVM_DEV_REST_MIN_S', '0'],
    ['KVVM_DEV_REST_MIN_S', 'soon'],
    ['KVVM_RETRY_BASE_MS', 'fast'],
    ['KVVM_RETRY_BASE_MS', '0'],
    ['KVVM_RETRY_BASE_MS', '99999999'],
    ['KVVM_NO_JITTER', 'yes'],
    ['KVVM_NO_JITTER', 'true'],
    ['KVVM_LOG_CONSOLE', '2'],
    ['KVVM_EXTRA_VAULT_SUFFIXES', 'https://vault.example'],
    ['KVVM_EXTRA_VAULT_SUFFIXES', 'a b'],
    ['KVVM_EXTRA_VAULT_SUFFIXES', '*.localhost'],
    ['KVVM_WAAGENT_DIR', ' '],
  ];
  for (const [name, value] of BAD) {
    it(`${name}=${JSON.stringify(value)} is refused with its name and value, and the default stays`, () => {
      const r = readOverrides({ [name]: value });
      assert.equal(r.invalid.length, 1);
      assert.equal(r.invalid[0]?.name, name);
      const err = invalidOverridesError(r);
      assert.equal(err?.reason, 'invalid-override');
      assert.ok(err?.message.includes(`${name}="${value}"`), err?.message);
      assert.ok(err?.fix?.includes(name));
      assert.deepEqual(readOverrides({}).overrides, r.overrides);
    });
  }

  it('unknown KVVM_* names are reported (a typo shows) and never carried into the Windows service', () => {
    const env = { KVVM_NO_JITER: '1', KVVM_NO_JITTER: '1', KVVM_ARM_ENDPOINT: 'https://arm.localhost', KVVM_WINE_FIXTURES: 'x' };
    const r = readOverrides(env);
    assert.deepEqual(r.unknown, ['KVVM_NO_JITER', 'KVVM_WINE_FIXTURES']);
    assert.ok(overrideLogLines(r).some((l) => l.message === 'ignored unknown environment variables: KVVM_NO_JITER, KVVM_WINE_FIXTURES'));
    assert.deepEqual(serviceOverrideVariables(env), { KVVM_NO_JITTER: '1' });
  });

  it('the vault host allow-list takes its extra suffixes from the overrides', () => {
    assert.equal(isAllowedVaultHost('kvvm.localhost', {}), false);
    assert.equal(isAllowedVaultHost('kvvm.localhost', { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' }), true);
    assert.equal(isAllowedVaultHost('kvvm.localhost', { KVVM_EXTRA_VAULT_SUFFIXES: 'local host' }), false, 'an invalid value is not half-applied');
  });

  it('the CLI refuses to run any command with a bad value, naming it (exit 2)', () => {
    const r = spawnSync(process.execPath, [CLI, 'validate', '--settings', '/nonexistent.json'], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', KVVM_DEV_POLL_INTERVAL_S: 'soon' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /kvvm validate: KVVM_DEV_POLL_INTERVAL_S="soon" must be a number of seconds/);
  });

  it('no handler module other than overrides.ts reads a KVVM_* variable', async () => {
    const readers: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.ts') && p !== join(HANDLER_DIR, 'overrides.ts')) {
          const text = await readFile(p, 'utf8');
          if (/env(?:\.KVVM_|\[\s*['"`]KVVM_|\[\s*[A-Z_]+_ENV\s*\])/.test(text)) readers.push(p);
        }
      }
    };
    await walk(HANDLER_DIR);
    assert.deepEqual(readers, []);
  });
});
