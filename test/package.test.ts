/**
 * The extension packages as the platform receives them: `npm run package`'s build, run into a temporary folder.
 * - every zip holds what its OS needs (manifest commands in that OS's syntax, runtime, CLI, schemas, koffi on Windows);
 * - one version (package.json's) everywhere: the zip's package.json, file names, extension image definitions;
 * - packaging the same sources twice gives the same bytes;
 * - the linux-x64 zip, unpacked like /var/lib/waagent/<Name>-<version>/ with the execute bit on every file, goes
 *   through install → enable → sync → disable → uninstall driven the way the agent drives it
 *   (`/bin/sh -c "<command from the zip's HandlerManifest.json>"`, cwd = extension folder, agent env),
 *   and the service runs on the packaged runtime, not on the node running this test.
 * Building all four packages takes about a minute and a half; the runtimes come from .cache/npm (npm pack).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildPackages, repoRootFromHere, type BuiltPackage } from '../build/package.js';
import { NODE_VERSION, PLATFORMS, packageFileName, platformById } from '../build/platforms.js';
import { readZip, unpackZip, type ZipEntry } from '../build/zip.js';
import { validateHandlerManifest } from '../handler/protocol/manifest.js';
import { makeAgentLayout, type AgentLayout } from './helpers/agentFolder.js';
import { startDevVault, type DevVault } from '../handler/devvault/server.js';
import { createCa, issueCertificate, toPemSecret } from '../handler/devvault/certFactory.js';
import { posixSupervisor } from '../handler/service/posixSupervisor.js';
import { WORKER_NODE_OPTIONS } from '../handler/service/restartLoop.js';

const { isRunning } = posixSupervisor;

const run = promisify(execFile);
const repoRoot = repoRootFromHere();
const cacheDir = join(repoRoot, '.cache', 'npm');
const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

let firstBuild: Promise<{ dir: string; built: BuiltPackage[] }> | undefined;
/** All four packages, built once for the whole file. */
function buildAll(): Promise<{ dir: string; built: BuiltPackage[] }> {
  firstBuild ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kvvm-package-'));
    const built = await buildPackages({ repoRoot, outDir: dir, platforms: PLATFORMS, cacheDir, log: () => undefined });
    return { dir, built };
  })();
  return firstBuild;
}

after(async () => {
  if (firstBuild) await rm((await firstBuild).dir, { recursive: true, force: true });
});

function entry(entries: ZipEntry[], path: string): ZipEntry {
  const e = entries.find((x) => x.path === path);
  assert.ok(e, `the package holds ${path}`);
  return e;
}

test('every package holds its OS-specific manifest, its runtime, the CLI, the schemas and (Windows) koffi', { timeout: 600_000 }, async () => {
  const { built } = await buildAll();
  assert.deepEqual(built.map((b) => b.platform.id).sort(), ['linux-arm64', 'linux-x64', 'win-arm64', 'win-x64']);
  const schemaFiles = (await readdirNames(join(repoRoot, 'schemas'))).map((f) => `schemas/${f}`);
  assert.ok(schemaFiles.length > 0);
  for (const b of built) {
    const entries = readZip(await readFile(b.file));
    const paths = new Set(entries.map((e) => e.path));
    const manifestDoc: unknown = JSON.parse(entry(entries, 'HandlerManifest.json').data.toString('utf8'));
    const verdict = validateHandlerManifest(manifestDoc);
    assert.ok(verdict.ok, `${b.platform.id}: ${verdict.ok ? '' : verdict.reason}`);
    const windows = b.platform.os === 'windows';
    assert.equal(verdict.manifest.name, windows ? 'KeyVaultForWindows' : 'KeyVaultForLinux');
    for (const verb of ['install', 'uninstall', 'update', 'enable', 'disable'] as const) {
      assert.equal(verdict.manifest.commands[`${verb}Command`], windows ? `bin\\kvvm.exe ${verb}` : `bin/kvvm ${verb}`, `${b.platform.id} ${verb}`);
    }
    assert.equal(verdict.manifest.updateWithInstall, true);

    assert.ok(paths.has('lib/handler/cli.js') && paths.has('lib/handler/parserWorker.js'), `${b.platform.id}: the bundled CLI and the parser's worker`);
    assert.ok(![...paths].some((p) => /^lib\/handler\/.+\//.test(p)), `${b.platform.id}: lib/handler/ is the bundle (entries and chunks), not tsc's tree`);
    for (const s of schemaFiles) assert.ok(paths.has(s), `${b.platform.id}: ${s}`);
    // node_modules: only what the bundle loads at run time (build/bundle.ts RUNTIME_MODULES) and their dependencies.
    const shippedModules = new Set(
      [...paths].filter((p) => p.startsWith('node_modules/') && p.endsWith('/package.json')).map((p) => p.slice('node_modules/'.length, -'/package.json'.length)),
    );
    for (const m of ['koffi', 'node-forge', 'ajv', 'fast-uri']) assert.ok(shippedModules.has(m), `${b.platform.id}: node_modules/${m}`);
    assert.ok(!shippedModules.has('@azure/keyvault-secrets') && !shippedModules.has('winston'), `${b.platform.id}: bundled packages are not shipped again`);
    assert.ok(paths.has('licenses/@azure/keyvault-secrets/LICENSE'), `${b.platform.id}: the licences of the bundled packages`);
    assert.ok(![...paths].some((p) => p.startsWith('node_modules/typescript/') || p.startsWith('node_modules/fast-check/')), 'no devDependencies');
    assert.ok(![...paths].some((p) => p.startsWith('lib/test/') || p.endsWith('.map')), 'no tests or source maps');
    assert.ok(paths.has('licenses/node/LICENSE'));

    const koffiNatives = [...paths].filter((p) => /^node_modules\/@koromix\/koffi-[^/]+\/.+\/koffi\.node$/.test(p));
    if (windows) {
      const triplet = b.platform.arch === 'x64' ? 'win32_x64' : 'win32_arm64';
      assert.deepEqual(koffiNatives, [`node_modules/@koromix/koffi-win32-${b.platform.arch}/${triplet}/koffi.node`]);
      const native = entry(entries, koffiNatives[0]!).data;
      assert.equal(native.subarray(0, 2).toString('latin1'), 'MZ', 'koffi.node is a PE image');
      const exe = entry(entries, 'bin/kvvm.exe').data;
      assert.equal(exe.subarray(0, 2).toString('latin1'), 'MZ');
      assert.equal(peMachine(exe), b.platform.arch === 'x64' ? 0x8664 : 0xaa64, 'kvvm.exe is built for the package architecture');
      assert.ok(exe.includes(Buffer.from('NODE_SEA_BLOB', 'utf16le')) || exe.includes(Buffer.from('NODE_SEA_BLOB')), 'the SEA blob is injected');
      assert.ok(!paths.has('runtime/node') && !paths.has('bin/kvvm'));
    } else {
      assert.deepEqual(koffiNatives, [], 'Linux packages carry no koffi native (nothing loads it on Linux)');
      const node = entry(entries, 'runtime/node');
      assert.equal(node.mode, 0o755);
      assert.equal(node.data.subarray(0, 4).toString('latin1'), '\x7fELF');
      assert.equal(node.data.readUInt16LE(18), b.platform.arch === 'x64' ? 62 : 183, 'runtime/node is built for the package architecture');
      const launcher = entry(entries, 'bin/kvvm');
      assert.equal(launcher.mode, 0o755);
      assert.equal(launcher.data.toString('utf8'), await readFile(join(repoRoot, 'bin', 'kvvm'), 'utf8'));
    }
    assert.equal(entry(entries, 'lib/handler/cli.js').mode, 0o644);
  }
});

test('one version everywhere: package.json → the zip, its package.json, the file names and the image definitions', { timeout: 600_000 }, async () => {
  const { built } = await buildAll();
  assert.match(version, /^\d+\.\d+\.\d+$/);
  for (const b of built) {
    assert.equal(b.file.endsWith(`/packages/${packageFileName(b.platform, version)}`), true, b.file);
    assert.match(b.file, new RegExp(`-${version}-${b.platform.id}\\.zip$`));
    const entries = readZip(await readFile(b.file));
    const pkg = JSON.parse(entry(entries, 'package.json').data.toString('utf8')) as { version: string; type: string };
    assert.equal(pkg.version, version);
    assert.equal(pkg.type, 'commonjs', 'the bundle is CommonJS (bundle.ts): the packaged package.json must say so');
    const xml = await readFile(b.manifestXml, 'utf8');
    assert.match(xml, new RegExp(`<Version>${version.replace(/\./g, '\\.')}</Version>`));
    assert.match(xml, /<ProviderNameSpace>Microsoft\.Azure\.KeyVault<\/ProviderNameSpace>/);
    assert.match(xml, new RegExp(`<Type>${b.platform.type}</Type>`));
    assert.match(xml, new RegExp(`<SupportedOS>${b.platform.os === 'linux' ? 'Linux' : 'Windows'}</SupportedOS>`));
    assert.match(xml, /<IsInternalExtension>false<\/IsInternalExtension>/);
    assert.match(xml, /<BlockRoleUponFailure>false<\/BlockRoleUponFailure>/);
    assert.doesNotMatch(xml, /\{\{/);
    const json = JSON.parse(await readFile(b.manifestJson, 'utf8')) as { identifier: { version: string; type: string }; properties: Record<string, unknown> };
    assert.equal(json.identifier.version, version);
    assert.equal(json.identifier.type, b.platform.type);
    assert.equal(json.properties['computeRole'], 'IaaS');
    assert.equal(json.properties['supportedOS'], b.platform.os === 'linux' ? 'Linux' : 'Windows');
    assert.equal(json.properties['isInternalExtension'], false);
  }
  // The Node runtime the packages carry is the pinned one.
  const linux = built.find((b) => b.platform.id === platformById('linux-x64').id)!;
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-package-node-'));
  try {
    await unpackZip(await readFile(linux.file), dir);
    const { stdout } = await run(join(dir, 'runtime', 'node'), ['--version']);
    assert.equal(stdout.trim(), `v${NODE_VERSION}`);
    const { stdout: kvvmVersion } = await run('/bin/sh', ['-c', 'bin/kvvm --version'], { cwd: dir });
    assert.equal(kvvmVersion.trim(), version);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('packaging the same sources twice gives the same zip bytes (linux-x64 and win-x64)', { timeout: 600_000 }, async () => {
  // Two builds back to back (not against buildAll's): lib/ must not change in between.
  const platforms = [platformById('linux-x64'), platformById('win-x64')];
  const dirs = [await mkdtemp(join(tmpdir(), 'kvvm-package-a-')), await mkdtemp(join(tmpdir(), 'kvvm-package-b-'))] as const;
  try {
    const first = await buildPackages({ repoRoot, outDir: dirs[0], platforms, cacheDir, log: () => undefined });
    const second = await buildPackages({ repoRoot, outDir: dirs[1], platforms, cacheDir, log: () => undefined });
    for (const [i, b1] of first.entries()) {
      const b2 = second[i]!;
      const [z1, z2] = [await readFile(b1.file), await readFile(b2.file)];
      assert.ok(z1.equals(z2), `${b1.platform.id}: the two builds differ in ${differingEntries(z1, z2).join(', ') || 'zip structure'}`);
      assert.equal(await readFile(b1.manifestXml, 'utf8'), await readFile(b2.manifestXml, 'utf8'));
      assert.equal(await readFile(b1.manifestJson, 'utf8'), await readFile(b2.manifestJson, 'utf8'));
    }
  } finally {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

function differingEntries(a: Buffer, b: Buffer): string[] {
  const other = new Map(readZip(b).map((e) => [e.path, e]));
  const out: string[] = [];
  for (const e of readZip(a)) {
    const o = other.get(e.path);
    if (!o || !o.data.equals(e.data) || o.mode !== e.mode) out.push(e.path);
    other.delete(e.path);
  }
  return [...out, ...other.keys()].slice(0, 20);
}

test('the linux-x64 package, unpacked like the agent does, syncs from the vault on its own runtime and cleans up', { timeout: 600_000 }, async () => {
  const { built } = await buildAll();
  const pkg = built.find((b) => b.platform.id === 'linux-x64')!;
  const root = await mkdtemp(join(tmpdir(), 'kvvm-package-smoke-'));
  const name = 'Microsoft.Azure.KeyVault.KeyVaultForLinux';
  const extensionFolder = join(root, 'var', 'lib', 'waagent', `${name}-${version}`);
  let vault: DevVault | undefined;
  let layout: AgentLayout | undefined;
  let commands: Record<string, string> = {};
  let env: Record<string, string> = {};
  const agent = async (verb: 'install' | 'enable' | 'disable' | 'uninstall', seq: number): Promise<{ code: number; stdout: string; stderr: string }> => {
    const command = commands[`${verb}Command`]!;
    try {
      const { stdout, stderr } = await run('/bin/sh', ['-c', command], {
        cwd: extensionFolder,
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...layout!.env(seq), ...env },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  try {
    // The agent unzips into /var/lib/waagent/<Name>-<version>/ and sets the execute bit on every file.
    await unpackZip(await readFile(pkg.file), extensionFolder, { executeBitOnEveryFile: true });
    layout = makeAgentLayout(root, { name, version });
    const manifest = validateHandlerManifest(JSON.parse(await readFile(join(extensionFolder, 'HandlerManifest.json'), 'utf8')));
    assert.ok(manifest.ok);
    commands = manifest.manifest.commands;

    vault = await startDevVault({ port: 0 });
    const ca = createCa('package smoke root');
    const leaf = issueCertificate({ issuer: ca, subjectCn: 'pkg.test', serverAuth: true });
    const secretVersion = vault.setSecret('pkg', toPemSecret(leaf.keyPem, [leaf.certPem, ca.certPem]), { contentType: 'application/x-pem-file' });
    const trust = join(root, 'trusted.pem');
    await writeFile(trust, vault.caCertPem + ca.certPem);
    // KVVM_DEV_REST_MIN_S above the interval: the worker stays resident between cycles, so that the test can see
    // which runtime runs it (it otherwise rests after its cycle: serviceRest.test.ts).
    env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', NODE_EXTRA_CA_CERTS: trust, KVVM_NO_JITTER: '1', KVVM_DEV_REST_MIN_S: '86400' };
    const store = join(root, 'store');
    layout.writeSettings(0, {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        // success only once the certificate is in, under either profile the package version selects (docs/versions.md)
        requireInitialSync: true,
        observedCertificates: [{ url: `${vault.vaultUrl}/secrets/pkg`, certificateStoreLocation: store, customSymbolicLinkName: 'pkg.pem' }],
      },
      authenticationSettings: { msiEndpoint: vault.imdsEndpoint },
    });

    const install = await agent('install', 0);
    assert.equal(install.code, 0, install.stderr);
    const enable = await agent('enable', 0);
    assert.equal(enable.code, 0, enable.stderr);
    const status = await finalStatus(layout, 0);
    assert.equal(status, 'success');
    assert.match(await readlink(join(store, 'pkg.pem')), new RegExp(secretVersion));
    assert.equal(new X509Certificate(await readFile(join(store, 'pkg.pem'))).fingerprint, leaf.cert.fingerprint);

    // The detached service runs on the packaged runtime and the packaged CLI, not on this test's node.
    const pidFile = join(extensionFolder, 'kvvm-service.pid');
    const service = await isRunning(pidFile);
    assert.ok(service.running && service.pid !== undefined);
    assert.equal(await readlink(`/proc/${service.pid}/exe`), join(extensionFolder, 'runtime', 'node'));
    assert.notEqual(await readlink(`/proc/${service.pid}/exe`), process.execPath);
    const argv = (await readFile(`/proc/${service.pid}/cmdline`, 'utf8')).split('\0');
    assert.deepEqual(argv.slice(1, -1), [...WORKER_NODE_OPTIONS, join(extensionFolder, 'lib', 'handler', 'cli.js'), 'service']);

    assert.equal((await agent('disable', 0)).code, 0);
    assert.equal((await isRunning(pidFile)).running, false);
    assert.equal((await agent('uninstall', 0)).code, 0);
    await assert.rejects(readFile(join(extensionFolder, 'mrseq')));
    assert.match(await readlink(join(store, 'pkg.pem')), new RegExp(secretVersion), 'certificates stay after uninstall');
  } finally {
    if (layout && commands['disableCommand']) await agent('disable', 0).catch(() => undefined);
    await vault?.close();
    await rm(root, { recursive: true, force: true });
  }
});

async function finalStatus(layout: AgentLayout, seq: number): Promise<string> {
  const deadline = Date.now() + 90_000; // liveness bound, not a timing assertion
  let last = 'no status file';
  while (Date.now() < deadline) {
    const view = await layout.readStatus(seq);
    if (view.state === 'valid') {
      const s = (view.document as Array<{ status: { status: string; formattedMessage: { message: string } } }>)[0]!.status;
      last = `${s.status}: ${s.formattedMessage.message}`;
      if (s.status === 'success') return s.status;
      if (s.status === 'error') return last;
    }
    await sleep(200);
  }
  throw new Error(`status ${seq} never became final; last: ${last}`);
}

async function readdirNames(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
}

/** IMAGE_FILE_HEADER.Machine of a PE file. */
function peMachine(exe: Buffer): number {
  const pe = exe.readUInt32LE(0x3c);
  assert.equal(exe.subarray(pe, pe + 4).toString('latin1'), 'PE\0\0');
  return exe.readUInt16LE(pe + 4);
}
