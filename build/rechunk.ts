/**
 * Second step of the package bundle (bundle.ts): esbuild's split ES-module output, regrouped and written as
 * CommonJS by Rollup.
 *
 * - Why regroup: esbuild puts every set of modules that a different set of entry points and import() targets
 *   reaches in a chunk of its own, so `kvvm enable` read 28 files. Each file costs Node a resolution, a read, a
 *   compile-cache lookup and a module wrapper. The modules the agent's commands run (`hot`: the static closure of
 *   the chunks holding them) become one chunk; everything else keeps esbuild's chunks, still loaded only by the
 *   command that needs them.
 * - Why CommonJS: Rollup can write split CommonJS (esbuild cannot), and Node's CommonJS loader has no asynchronous
 *   module jobs or linking per file. Alone it gained nothing measurable (the same 28 chunks: 91.7 ms as ES modules,
 *   90.8 as CommonJS, against `node -e 0` at 30.3, 60 interleaved runs); with the regrouping, enable 87.3 -> 76.5 ms
 *   against 29.5 (40 runs; bench/, figure 3).
 * Rollup keeps ES-module semantics across the regrouping (evaluation order, live bindings); nothing is tree-shaken,
 * so the code is the code esbuild wrote.
 */
import { posix } from 'node:path';
import type { Metafile } from 'esbuild';

export interface OutputText {
  /** Path relative to the output folder, forward slashes (cli.js, chunk-XXXX.js). */
  path: string;
  text: string;
}

const VIRTUAL = '\0kvvm-chunk:';
/** An import() target of hot code this small that only re-exports hot code is folded into the hot chunk. */
const FOLDED_TARGET_BYTES = 2048;

export interface HotAndBoot {
  /** The entry that turns the compile cache on, and the files it loads before its first import(). */
  entry: string;
  boot: ReadonlySet<string>;
  /** The files the agent's commands load, boot's aside: they become one chunk. */
  hot: ReadonlySet<string>;
}

/**
 * Splits esbuild's output files (paths relative to `outdirRelative`) for rechunkAsCommonJs. `boot`: the `entry` and
 * what it loads without an import(); they stay in the entry's file, because the entry turns Node's compile cache on
 * (compileCache.ts) and what its file holds is compiled before there is a cache to serve it. `hot`: every other file
 * that loads, without an import(), with an output holding one of `hotInputs` (source paths as esbuild's metafile
 * names them, relative to its working folder), and the small import() targets of loaded files that only re-export
 * loaded code.
 */
export function hotClosure(metafile: Metafile, outdirRelative: string, hotInputs: readonly string[], entry: string): HotAndBoot {
  const rel = (p: string): string => posix.relative(outdirRelative, p);
  const missing = hotInputs.filter((i) => !Object.values(metafile.outputs).some((o) => i in o.inputs));
  if (missing.length > 0) throw new Error(`bundle: no output holds ${missing.join(', ')}`);
  /** Adds `p` and the files it loads without an import() to `into`, not entering `stop`. */
  const staticClosure = (p: string, into: Set<string>, stop: ReadonlySet<string>): void => {
    if (into.has(rel(p)) || stop.has(rel(p))) return;
    into.add(rel(p));
    for (const i of metafile.outputs[p]?.imports ?? []) if (i.kind === 'import-statement' && !i.external) staticClosure(i.path, into, stop);
  };
  const boot = new Set<string>();
  staticClosure(posix.join(outdirRelative, entry), boot, new Set());
  const hot = new Set<string>();
  for (const [p, o] of Object.entries(metafile.outputs)) if (hotInputs.some((i) => i in o.inputs)) staticClosure(p, hot, boot);
  // The targets of the loaded files' import() that are only re-exports of loaded code (esbuild writes one per import()
  // target, e.g. cli.js's import of errors.js): folded in, they cost nothing to load, and left out, each is one more file.
  const loaded = (q: string): boolean => hot.has(rel(q)) || boot.has(rel(q));
  const empty = (q: string): boolean => metafile.outputs[q]?.bytes === 0 && metafile.outputs[q]?.imports.length === 0;
  for (let grew = true; grew;) {
    grew = false;
    for (const [p, o] of Object.entries(metafile.outputs)) {
      if (loaded(p) || o.bytes > FOLDED_TARGET_BYTES) continue;
      const foldable = o.imports.every((i) => i.external || (i.kind === 'import-statement' && (loaded(i.path) || empty(i.path))));
      const importedByLoaded = Object.entries(metafile.outputs).some(([q, oq]) => loaded(q) && oq.imports.some((i) => i.kind === 'dynamic-import' && i.path === p));
      if (foldable && importedByLoaded) {
        for (const i of o.imports) if (!i.external && !loaded(i.path)) hot.add(rel(i.path));
        hot.add(rel(p));
        grew = true;
      }
    }
  }
  return { entry, boot, hot };
}

/**
 * `outputs` (ES modules importing each other by './name.js') as CommonJS files: the `entries` keep their names,
 * the files in `hot` become one chunk, the others stay as they are.
 */
export async function rechunkAsCommonJs(outputs: readonly OutputText[], entries: readonly string[], groups: HotAndBoot): Promise<OutputText[]> {
  const { hot, boot } = groups;
  const bootChunk = groups.entry.replace(/\.js$/, '');
  const { rollup } = await import('rollup');
  const byPath = new Map(outputs.map((o) => [o.path, o.text]));
  const bundle = await rollup({
    input: Object.fromEntries(entries.map((e) => [e.replace(/\.js$/, ''), VIRTUAL + e])),
    treeshake: false,
    logLevel: 'warn',
    onLog(level, log) {
      throw new Error(`bundle: rollup ${level}: ${log.message}`);
    },
    plugins: [
      {
        name: 'kvvm-esbuild-output',
        resolveId(source, importer) {
          if (source.startsWith(VIRTUAL)) return source;
          if (importer?.startsWith(VIRTUAL) && source.startsWith('./')) {
            const path = posix.join(posix.dirname(importer.slice(VIRTUAL.length)), source);
            if (!byPath.has(path)) throw new Error(`bundle: ${importer.slice(VIRTUAL.length)} imports ${source}, which esbuild did not write`);
            return VIRTUAL + path;
          }
          return { id: source, external: true }; // node: built-ins
        },
        load(id) {
          return id.startsWith(VIRTUAL) ? byPath.get(id.slice(VIRTUAL.length)) : undefined;
        },
      },
    ],
  });
  try {
    const { output } = await bundle.generate({
      format: 'cjs',
      entryFileNames: '[name].js',
      chunkFileNames: 'chunk-[hash].js',
      // Hex, not base64: two names differing only in case would be one file on Windows.
      hashCharacters: 'hex',
      // Rollup adds a manual chunk's dependencies to it unless they are in another: the entry's own (boot) stay in
      // the entry's file, named after it.
      manualChunks: (id) => {
        if (!id.startsWith(VIRTUAL)) return undefined;
        const path = id.slice(VIRTUAL.length);
        return hot.has(path) ? 'agent' : boot.has(path) ? bootChunk : undefined;
      },
      // Built-ins: `import fs from 'node:fs'` is module.exports, as in Node's own ES-module wrappers.
      interop: 'default',
      esModule: false,
      generatedCode: 'es2015',
      strict: true,
      // import() of our own chunks becomes require() behind a promise; of built-ins too.
      dynamicImportInCjs: false,
    });
    return output.map((o) => {
      if (o.type !== 'chunk') throw new Error(`bundle: rollup emitted an asset ${o.fileName}`);
      return { path: o.fileName, text: o.code };
    });
  } finally {
    await bundle.close();
  }
}
