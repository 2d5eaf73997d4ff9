/**
 * The code every package ships: the compiled CLI (lib/handler/**.js, what the tests run) bundled into a few
 * CommonJS files, so a kvvm process reads a few files instead of resolving and compiling hundreds of modules
 * (enable and the service start, bench/ figures 3 and 4). Two steps:
 *
 * 1. esbuild bundles the entry points with code splitting (ES modules: esbuild splits only those). Entry points:
 *    lib/handler/cli.js (everything the agent and people run) and the certificate parser's worker thread,
 *    lib/handler/parserWorker.js. Each command's modules stay behind their dynamic import() (main.ts).
 * 2. rechunk.ts (Rollup) writes that output as CommonJS, with the agent's commands (HOT_INPUTS and what they load)
 *    in one chunk and the entry's own start-up code in cli.js; other commands keep esbuild's chunks, loaded only
 *    when that command runs. Everything sits in lib/handler/, so `new URL('./parserWorker.js', import.meta.url)`
 *    in whichever chunk holds the parser pool names the worker's entry, and paths.ts still finds the package root.
 *    The package.json the package ships says "type": "commonjs" (package.ts).
 *
 * - Left out of the bundle (loaded at run time from the package's node_modules with createRequire, and only when
 *   needed): koffi (native; Windows only), node-forge (legacy PFX ciphers) and ajv (the reporting validators for
 *   invalid settings; the validators valid settings need are generated here, settings/prebuiltValidators.ts).
 *   RUNTIME_MODULES lists them; package.ts ships them and what they depend on.
 * - CommonJS dependencies call require() for Node's built-in modules: esbuild's require shim finds the CommonJS
 *   module's own `require`.
 * - Third-party licence texts: every package whose code is in the bundle has its licence files copied to
 *   licenses/<package>/ (the bundle drops their comments).
 * The output depends only on the inputs (esbuild and Rollup are deterministic), so two builds give the same bytes.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative, sep } from 'node:path';
import type { Ajv, Options, ValidateFunction } from 'ajv';
import type { Metafile, Plugin } from 'esbuild';
import { decidingValidatorSpecs } from '../handler/settings/schema.js';
import { validatorKey } from '../handler/settings/validatorCache.js';
import { hotClosure, rechunkAsCommonJs } from './rechunk.js';

/** Packages the bundle loads at run time from node_modules (see above): shipped with their dependencies. */
export const RUNTIME_MODULES = ['koffi', 'node-forge', 'ajv'] as const;

export interface BundleFile {
  /** Path inside the package, forward slashes. */
  path: string;
  data: Buffer;
}

/**
 * The modules the agent's commands run (install, enable, disable, update, uninstall: the dispatcher, the lifecycle
 * commands and the settings checks): rechunk.ts puts the chunks holding them, and what those load without an
 * import(), in one file. cli.js's own start-up code stays in cli.js (rechunk.ts, hotClosure).
 */
const HOT_INPUTS = ['main.js', 'commands/lifecycle.js', 'settings/parse.js'].map((f) => `lib/handler/${f}`);

/** The bundled lib/handler/ (entries and chunks) and the licence files of the bundled packages. */
export async function bundleHandler(repoRoot: string, onMetafile?: (metafile: Metafile) => void): Promise<BundleFile[]> {
  const lib = join(repoRoot, 'lib', 'handler');
  // Imported here, not at the top: only the package build needs esbuild (a devDependency), not every tool and
  // test that imports build/package.js (the bench, the version stamp test).
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: repoRoot,
    entryPoints: [
      { in: join(lib, 'cli.js'), out: 'cli' },
      { in: join(lib, 'certs', 'parserWorker.js'), out: 'parserWorker' },
    ],
    outdir: join(repoRoot, 'lib', 'bundle'), // not written: write is false; the paths only name the outputs
    write: false,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    chunkNames: 'chunk-[hash]',
    legalComments: 'none',
    minifyWhitespace: true,
    minifySyntax: true,
    metafile: true,
    logLevel: 'silent',
    plugins: [prebuiltValidatorsPlugin(repoRoot)],
  });
  if (result.errors.length > 0) throw new Error(`bundle: ${result.errors.map((e) => e.text).join('; ')}`);
  onMetafile?.(result.metafile);
  if (!Object.keys(result.metafile.inputs).some((k) => k.includes('kvvm-validator:')))
    throw new Error('bundle: the prebuilt settings validators are not in the bundle (nothing imports settings/prebuiltValidators.js?)');
  const outRoot = join(repoRoot, 'lib', 'bundle');
  const esm = result.outputFiles.map((f) => ({ path: relative(outRoot, f.path).split(sep).join('/'), text: f.text }));
  const groups = hotClosure(result.metafile, 'lib/bundle', HOT_INPUTS, 'cli.js');
  const files: BundleFile[] = (await rechunkAsCommonJs(esm, ['cli.js', 'parserWorker.js'], groups))
    .map((f) => ({ path: `lib/handler/${f.path}`, data: Buffer.from(f.text) }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of files) if (f.path.includes('/', 'lib/handler/'.length)) throw new Error(`bundle: ${f.path} is not beside the entry points`);
  files.push(...(await licenceFiles(repoRoot, Object.keys(result.metafile.inputs))));
  return files;
}

/** licenses/<package>/<file> for every node_modules package with code in the bundle. */
async function licenceFiles(repoRoot: string, inputs: readonly string[]): Promise<BundleFile[]> {
  const packages = new Set<string>();
  for (const input of inputs) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input.split(sep).join('/'));
    if (m) packages.add(input.slice(0, input.indexOf(m[1]!) + m[1]!.length));
  }
  const out: BundleFile[] = [];
  for (const dir of [...packages].sort()) {
    const name = dir.slice(dir.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const abs = join(repoRoot, dir);
    const texts = (await readdir(abs)).filter((f) => /^(licen[cs]e|notice|copying)/i.test(f)).sort();
    if (texts.length === 0) throw new Error(`bundle: ${name} has no licence file to ship with its bundled code`);
    for (const f of texts) out.push({ path: `licenses/${name}/${f}`, data: await readFile(join(abs, f)) });
  }
  return out;
}

/**
 * Replaces settings/prebuiltValidators.js (empty in the development build) with the ajv standalone code of the
 * validators valid settings need, generated from the package's schemas/ now, so no package ever generates or
 * writes executable code at run time, and valid settings are checked without loading ajv. Each validator carries
 * the key of what it was made from (validatorKey: options, name, schema texts); validatorCache.ts uses it only
 * for exactly those schemas.
 */
function prebuiltValidatorsPlugin(repoRoot: string): Plugin {
  const target = join(repoRoot, 'lib', 'handler', 'settings', 'prebuiltValidators.js');
  const settingsDir = join(repoRoot, 'lib', 'handler', 'settings');
  let generated: Promise<GeneratedValidator[]> | undefined;
  const validators = (): Promise<GeneratedValidator[]> => (generated ??= generateValidators(repoRoot));
  return {
    name: 'kvvm-prebuilt-validators',
    setup(b) {
      b.onLoad({ filter: /[\\/]prebuiltValidators\.js$/ }, async (args) => {
        if (args.path !== target) return undefined;
        const list = await validators();
        const imports = list.map((_, i) => `import validator${i} from 'kvvm-validator:${i}';`).join('\n');
        const entries = list.map((v, i) => `${JSON.stringify(v.name)}: { key: ${JSON.stringify(v.key)}, validate: validator${i} }`).join(',\n  ');
        return { contents: `${imports}\nexport const PREBUILT_VALIDATORS = {\n  ${entries}\n};\n`, loader: 'js', resolveDir: settingsDir };
      });
      b.onResolve({ filter: /^kvvm-validator:\d+$/ }, (args) => ({ path: args.path, namespace: 'kvvm-validator' }));
      b.onLoad({ filter: /.*/, namespace: 'kvvm-validator' }, async (args) => {
        const v = (await validators())[Number(args.path.slice('kvvm-validator:'.length))];
        if (!v) throw new Error(`bundle: no generated validator ${args.path}`);
        // resolveDir: the standalone code require()s ajv's small runtime helpers, which esbuild bundles in.
        return { contents: v.code, loader: 'js', resolveDir: repoRoot };
      });
    },
  };
}

interface GeneratedValidator {
  name: string;
  key: string;
  /** An ES module whose default export is the validator. */
  code: string;
}

/** The ajv standalone code of every validator schema.ts's decidingValidatorSpecs lists, from the repository's schemas/. */
function generateValidators(repoRoot: string): Promise<GeneratedValidator[]> {
  const require = createRequire(join(repoRoot, 'package.json'));
  const { Ajv: AjvCtor } = require('ajv') as { Ajv: new (o: Options) => Ajv };
  const { default: standaloneCode } = require('ajv/dist/standalone') as { default: (ajv: Ajv, validate: ValidateFunction) => string };
  return Promise.resolve(
    decidingValidatorSpecs(join(repoRoot, 'schemas')).map((spec) => {
      const ajv = new AjvCtor({ ...spec.options, code: { source: true, esm: true } });
      return { name: spec.name, key: validatorKey(spec), code: standaloneCode(ajv, spec.compile(ajv)) };
    }),
  );
}
