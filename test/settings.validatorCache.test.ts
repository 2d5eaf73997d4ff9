/**
 * The settings validators valid settings need ship prebuilt in the package: the package build generates them as
 * ajv standalone code into the bundle (build/bundle.ts, settings/validatorCache.ts), so nothing generates or
 * writes executable code at run time, and a packaged kvvm validates valid settings without ajv. Real bundle, real
 * child processes running it (`kvvm validate`), verdicts compared with the development build (ajv compiling).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { bundleHandler } from '../build/bundle.js';
import { packageRoot } from '../handler/paths.js';
import { sms, URL1, URL2 } from './fixtures/settings/helpers.js';

const run = promisify(execFile);
const repoRoot = packageRoot();

/** Valid settings of both forms (4.0 objects, 1.0 URL strings: the latter runs all three generation checks). */
const VALID = [sms([{ url: URL1 }]), sms([URL1, URL2]), sms([{ url: URL1, certificateStoreLocation: '/var/lib/certs' }], { pollingIntervalInS: '600' })];
const INVALID = [{ secretsManagementSettings: { pollingIntervalInS: 'soon', observedCertificates: [{ url: 5 }] } }, { secretsManagementSettings: {} }];

interface Verdict {
  ok: boolean;
  config?: { generation: string };
  problems?: Array<{ reason: string; path: string }>;
}

let work = '';
/** The bundled lib/handler/ with schemas/ and package.json beside it, as a package holds them; no node_modules. */
let bundled = '';

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvvm-validators-'));
  bundled = join(work, 'package');
  for (const f of await bundleHandler(repoRoot)) {
    await mkdir(dirname(join(bundled, f.path)), { recursive: true });
    await writeFile(join(bundled, f.path), f.data);
  }
  await cp(join(repoRoot, 'schemas'), join(bundled, 'schemas'), { recursive: true });
  await writeFile(join(bundled, 'package.json'), JSON.stringify({ name: 'kvvm', version: '0.1.0', type: 'commonjs', private: true }));
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** `kvvm validate <file> --json` for each document, with the CLI at `cli`. */
async function verdicts(cli: string, docs: readonly object[]): Promise<Verdict[]> {
  const out: Verdict[] = [];
  for (const [i, doc] of docs.entries()) {
    const file = join(work, `settings-${i}.json`);
    await writeFile(file, JSON.stringify(doc));
    const { stdout } = await run(process.execPath, [cli, 'validate', file, '--platform', 'linux', '--json']).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    out.push(JSON.parse(stdout) as Verdict);
  }
  return out;
}

const summary = (v: Verdict[]): string[] => v.map((x) => (x.ok ? (x.config?.generation ?? '?') : (x.problems ?? []).map((p) => `${p.path} ${p.reason}`).join(',')));

describe('settings validators prebuilt into the package bundle', () => {
  it('the bundle validates valid settings without ajv (none installed beside it), with the development build’s verdicts', async () => {
    const dev = summary(await verdicts(join(repoRoot, 'lib', 'handler', 'cli.js'), VALID));
    assert.deepEqual(dev, ['4.0', '1.0', '4.0']);
    assert.deepEqual(summary(await verdicts(join(bundled, 'lib', 'handler', 'cli.js'), VALID)), dev);
    // Nothing was generated or written at run time (Node's own compile cache aside).
    assert.deepEqual((await readdir(bundled)).filter((f) => f !== '.node-compile-cache').sort(), ['lib', 'licenses', 'package.json', 'schemas']);
    assert.deepEqual(
      (await readdir(join(bundled, '.node-compile-cache')).catch(() => [] as string[])).filter((f) => f === 'ajv'),
      [],
      'no validator code written at run time',
    );
  });

  it('invalid settings get the full report from ajv (loaded from node_modules), the same as the development build', async () => {
    await symlink(join(repoRoot, 'node_modules'), join(bundled, 'node_modules'), 'dir');
    try {
      const dev = summary(await verdicts(join(repoRoot, 'lib', 'handler', 'cli.js'), INVALID));
      assert.ok(
        dev.every((v) => v.length > 0 && !/^\d\.\d$/.test(v)),
        dev.join('; '),
      );
      assert.deepEqual(summary(await verdicts(join(bundled, 'lib', 'handler', 'cli.js'), INVALID)), dev);
    } finally {
      await rm(join(bundled, 'node_modules'));
    }
  });

  it('a prebuilt validator is used only for the schemas it was made from: changed schemas are compiled with ajv', async () => {
    // The package's union schema now caps pollingIntervalInS at 2 characters: a prebuilt validator made from the
    // original would still accept "600"; the bundle must follow the schema it is given.
    const original = await readFile(join(bundled, 'schemas', 'settings.schema.json'), 'utf8');
    const union = JSON.parse(original) as { definitions: { pollingIntervalInS: Record<string, unknown> } };
    union.definitions.pollingIntervalInS['maxLength'] = 2;
    await writeFile(join(bundled, 'schemas', 'settings.schema.json'), JSON.stringify(union));
    await symlink(join(repoRoot, 'node_modules'), join(bundled, 'node_modules'), 'dir');
    try {
      const [verdict] = await verdicts(join(bundled, 'lib', 'handler', 'cli.js'), [VALID[2]!]);
      assert.equal(verdict?.ok, false, JSON.stringify(verdict));
      assert.ok(
        verdict?.problems?.some((p) => p.path === '/secretsManagementSettings/pollingIntervalInS'),
        JSON.stringify(verdict),
      );
    } finally {
      await rm(join(bundled, 'node_modules'));
      await writeFile(join(bundled, 'schemas', 'settings.schema.json'), original);
    }
  });
});
