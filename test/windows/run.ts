/**
 * `npm run test:windows`, on Linux:
 *  1. the pure Windows-store tests (flags, SDDL, state, PFX packaging) with this Linux node;
 *  2. the crypt32 tests INSIDE Windows Node under Wine: scripts/wine-setup.sh prepares Wine, node.exe and koffi's
 *     win32 binary in .cache/wine-test/; openssl chains are made here first (there is no openssl inside Wine);
 *     node.exe's stdout/stderr go to files (with pipes it dies with EBADF), printed afterwards.
 * Exit code: the first failure's. Without Wine: CI (CI=true) fails, a developer machine skips with a note, exit 0.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { packageRoot } from '../../handler/paths.js';
import { OpensslFactory, pemSecret } from '../helpers/openssl.js';

const root = packageRoot();
const cache = join(root, '.cache', 'wine-test');
const nodeExe = join(cache, 'node', 'node.exe');
const prefix = join(cache, 'prefix');
const ci = process.env['CI'] === 'true';

function testFiles(dir: string): string[] {
  const abs = join(root, 'lib', 'test', 'windows', dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs).filter((f) => f.endsWith('.test.js')).sort().map((f) => join(abs, f));
}

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function ready(): boolean {
  return has('wine') && existsSync(nodeExe) && existsSync(join(prefix, '.kvvm-win10')) &&
    existsSync(join(root, 'node_modules', '@koromix', 'koffi-win32-x64', 'package.json'));
}

/** Unix path -> the Z: drive path Wine maps to "/". */
function winePath(path: string): string {
  return `Z:${path.replace(/\//g, '\\')}`;
}

async function makeChains(dir: string): Promise<void> {
  const factory = await OpensslFactory.create();
  try {
    const root = factory.rootCa('kvvm-wine-trusted-root');
    const inter = factory.intermediate('kvvm-wine-trusted-ca', root);
    const leaf = factory.leaf('kvvm-wine-trusted', inter);
    const otherRoot = factory.rootCa('kvvm-wine-untrusted-root');
    const otherInter = factory.intermediate('kvvm-wine-untrusted-ca', otherRoot);
    const otherLeaf = factory.leaf('kvvm-wine-untrusted', otherInter);
    writeFileSync(join(dir, 'chains.json'), JSON.stringify({
      trustedRootPem: root.certPem,
      trustedSecret: pemSecret(leaf.keyPem, leaf.certPem, inter.certPem, root.certPem),
      untrustedSecret: pemSecret(otherLeaf.keyPem, otherLeaf.certPem, otherInter.certPem, otherRoot.certPem),
    }));
  } finally {
    await factory.cleanup();
  }
}

async function main(): Promise<number> {
  console.log('test:windows: pure tests (Linux node)');
  const pure = spawnSync(process.execPath, ['--test', ...testFiles('pure')], { stdio: 'inherit', cwd: root });
  const pureStatus = pure.status ?? 1;

  if (!ready()) {
    if (has('wine') || ci || process.env['KVVM_WINE_SETUP'] === '1') {
      console.log('test:windows: preparing Wine (scripts/wine-setup.sh)');
      const setup = spawnSync('bash', [join(root, 'scripts', 'wine-setup.sh')], { stdio: 'inherit', cwd: root });
      if (setup.status !== 0 || !ready()) {
        console.error('test:windows: FAILED: Wine could not be prepared (see above); the crypt32 tests did not run.');
        return 1;
      }
    } else {
      console.log([
        '',
        'test:windows: SKIPPED the crypt32 tests: Wine is not installed on this machine.',
        'To run them: sudo apt-get install -y --no-install-recommends wine wine64 && bash scripts/wine-setup.sh && npm run test:windows',
        '(or KVVM_WINE_SETUP=1 npm run test:windows as root). In CI (CI=true) a missing Wine fails the run.',
      ].join('\n'));
      return pureStatus;
    }
  }

  const work = mkdtempSync(join(tmpdir(), 'kvvm-wine-'));
  try {
    await makeChains(work);
    const files = testFiles('wine').map((f) => relative(root, f).replace(/\//g, '\\'));
    const out = join(work, 'stdout.txt');
    const err = join(work, 'stderr.txt');
    console.log(`test:windows: ${files.length} test files in Windows Node under Wine`);
    // Shell redirection, not pipes: node.exe under Wine must see plain files as its standard handles.
    const command = `exec wine "${nodeExe}" --test --test-concurrency=1 ${files.map((f) => `'${f}'`).join(' ')} >'${out}' 2>'${err}' </dev/null`;
    const run = spawnSync('sh', ['-c', command], {
      cwd: root, stdio: 'inherit', timeout: 20 * 60_000,
      env: { ...process.env, WINEPREFIX: prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=', KVVM_WINE_FIXTURES: winePath(work) },
    });
    process.stdout.write(existsSync(out) ? readFileSync(out, 'utf8') : '');
    const errors = existsSync(err) ? readFileSync(err, 'utf8').trim() : '';
    if (errors) process.stderr.write(`${errors}\n`);
    spawnSync('wineserver', ['-w'], { stdio: 'ignore', env: { ...process.env, WINEPREFIX: prefix } });
    const status = run.status ?? 1;
    console.log(`test:windows: Windows Node exited with ${status}${run.error ? ` (${run.error.message})` : ''}`);
    return pureStatus !== 0 ? pureStatus : status;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
