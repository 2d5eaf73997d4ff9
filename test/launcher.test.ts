/**
 * bin/kvvm, the Linux launcher HandlerManifest.json names: run by the real /bin/sh in a package-shaped folder
 * (bin/kvvm, runtime/node, lib/handler/cli.js), invoked each way the agent or a person may invoke it. The folder's
 * lib/handler/cli.js is a script printing what it was run with (the launcher is what is under test here; the
 * package test runs the real CLI through it), and runtime/node a script that marks the environment and runs this
 * test's Node, so the CLI can tell which Node ran it (/usr/bin may hold a node too).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../handler/paths.js';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'kvvm launcher-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A package-shaped folder; `runtime`: whether it ships runtime/node. */
function makePackage(name: string, runtime: boolean): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'lib', 'handler'), { recursive: true });
  copyFileSync(join(packageRoot(), 'bin', 'kvvm'), join(dir, 'bin', 'kvvm'));
  writeFileSync(
    join(dir, 'lib', 'handler', 'cli.js'),
    "console.log(JSON.stringify({ script: process.argv[1], args: process.argv.slice(2), runtime: process.env.VIA_PACKAGE_RUNTIME === '1' }));\n",
  );
  if (runtime) {
    mkdirSync(join(dir, 'runtime'));
    writeFileSync(join(dir, 'runtime', 'node'), `#!/bin/sh\nVIA_PACKAGE_RUNTIME=1 exec '${process.execPath}' "$@"\n`, { mode: 0o755 });
  }
  return dir;
}

interface Launched {
  script: string;
  args: string[];
  /** Whether the package's runtime/node ran the CLI. */
  runtime: boolean;
}

async function launch(command: string, args: string[], cwd: string, path: string): Promise<Launched> {
  const { stdout } = await run('/bin/sh', ['-c', `${command} "$@"`, 'sh', ...args], { cwd, env: { PATH: path } });
  return JSON.parse(stdout) as Launched;
}

describe('bin/kvvm', () => {
  const pkg = makePackage('pkg', true);
  const cli = join(pkg, 'lib', 'handler', 'cli.js');
  const nodeDir = dirname(process.execPath);

  test('by absolute path: the CLI beside it, run by the runtime beside it, arguments passed on unchanged', async () => {
    const r = await launch(`'${pkg}/bin/kvvm'`, ['enable', 'a b', '$HOME'], root, `${nodeDir}:/usr/bin:/bin`);
    assert.equal(r.script, cli);
    assert.equal(r.runtime, true, 'runtime/node, not the node on PATH');
    assert.deepEqual(r.args, ['enable', 'a b', '$HOME']);
  });

  test('by a path relative to the working folder, as HandlerManifest.json names it (bin/kvvm enable)', async () => {
    assert.equal((await launch('bin/kvvm', ['enable'], pkg, '/usr/bin:/bin')).script, cli);
    assert.equal((await launch('./kvvm', ['enable'], join(pkg, 'bin'), '/usr/bin:/bin')).script, cli);
  });

  test('found on PATH, and as `sh kvvm` from its own folder (no slash in $0)', async () => {
    assert.equal((await launch('kvvm', ['disable'], root, `${join(pkg, 'bin')}:/usr/bin:/bin`)).script, cli);
    assert.equal((await launch('sh kvvm', ['disable'], join(pkg, 'bin'), '/usr/bin:/bin')).script, cli);
  });

  test('in a folder whose name has a space (the runtime and the CLI are found all the same)', async () => {
    const spaced = makePackage('with space', true);
    assert.deepEqual(await launch(`'${spaced}/bin/kvvm'`, ['enable'], root, '/usr/bin:/bin'), {
      script: join(spaced, 'lib', 'handler', 'cli.js'),
      args: ['enable'],
      runtime: true,
    });
  });

  test('without runtime/node: the node on PATH', async () => {
    const bare = makePackage('no-runtime', false);
    assert.deepEqual(await launch(`'${bare}/bin/kvvm'`, ['enable'], root, `${nodeDir}:/usr/bin:/bin`), {
      script: join(bare, 'lib', 'handler', 'cli.js'),
      args: ['enable'],
      runtime: false,
    });
  });

  test('without runtime/node and without node on PATH: exit 127 naming both places', async () => {
    const bare = makePackage('no-node', false);
    // /bin/sh itself is run by absolute path; PATH names an empty folder.
    const empty = join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    await assert.rejects(run('/bin/sh', [join(bare, 'bin', 'kvvm'), 'enable'], { cwd: root, env: { PATH: empty } }), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 127);
      assert.match(err.stderr ?? '', /no Node\.js runtime found \(expected .*runtime\/node or node on PATH\)/);
      return true;
    });
  });
});
