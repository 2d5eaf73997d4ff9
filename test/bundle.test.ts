/**
 * The shape of the package bundle (build/bundle.ts, build/rechunk.ts) that enable's start-up time depends on
 * (bench/, figure 3): CommonJS; cli.js loads no chunk of ours before it has turned Node's compile cache on; and
 * the agent's commands run from one chunk, which loads no other chunk of ours until something calls import().
 * Real esbuild and Rollup on this checkout's lib/. That the bundle runs is package.test.ts's part.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { compileFunction } from 'node:vm';
import { bundleHandler, type BundleFile } from '../build/bundle.js';
import { packageRoot } from '../handler/paths.js';

let handler = new Map<string, string>();

before(async () => {
  const files: BundleFile[] = await bundleHandler(packageRoot());
  handler = new Map(files.filter((f) => f.path.startsWith('lib/handler/')).map((f) => [f.path.slice('lib/handler/'.length), f.data.toString('utf8')]));
});

/** The chunks of ours a file requires as it is loaded: top-level require() statements, not those inside a function. */
function staticChunkRequires(code: string): string[] {
  return [...code.matchAll(/^(?:const [\w$]+ = )?require\('\.\/([^']+)'\);$/gm)].map((m) => m[1]!);
}

/** Every chunk of ours a file names anywhere (top level or behind import()). */
function namedChunks(code: string): string[] {
  return [...new Set([...code.matchAll(/require\('\.\/([^']+)'\)/g)].map((m) => m[1]!))];
}

test('every file compiles as a CommonJS module body (an import or export statement would not) and is strict', () => {
  assert.ok(handler.has('cli.js') && handler.has('parserWorker.js'));
  for (const [name, code] of handler) {
    const body = code.replace(/^#!.*/, ''); // Node's CommonJS loader strips the hashbang line the same way
    assert.doesNotThrow(() => compileFunction(body, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: name }), `${name} is CommonJS`);
    assert.match(body, /^\s*'use strict';/, `${name} starts strict`);
  }
});

test('cli.js loads no chunk of ours before it turns the compile cache on, and is small', () => {
  const cli = handler.get('cli.js')!;
  assert.deepEqual(staticChunkRequires(cli), [], 'cli.js requires a chunk at load time: that chunk would be compiled without the cache');
  assert.match(cli, /enableCompileCache/);
  assert.ok(cli.length < 64 * 1024, `cli.js is ${cli.length} bytes: start-up code only`);
});

test("the agent's commands run from one chunk that loads no other chunk of ours", () => {
  const cli = handler.get('cli.js')!;
  const loaded = namedChunks(cli).filter((f) => f !== 'cli.js');
  assert.equal(loaded.length, 1, `cli.js loads ${loaded.join(', ')}`);
  const agent = handler.get(loaded[0]!)!;
  for (const name of ['enableCommand', 'disableCommand', 'parseSettings', 'tryAcquireLock', 'writeStatus'])
    assert.match(agent, new RegExp(`\\b${name}\\b`), `${name} is in the agent chunk`);
  // cli.js is the one it may require at load time: already loaded, it holds the start-up code both use.
  assert.deepEqual(
    staticChunkRequires(agent).filter((f) => f !== 'cli.js'),
    [],
  );
  // The other commands' code is elsewhere, behind import(): the service worker's vault client is not in it.
  assert.doesNotMatch(agent, /\bSecretClient\b/);
});
