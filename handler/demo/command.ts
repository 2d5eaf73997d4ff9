/**
 * `kvvm demo` (npm start): the whole product on this machine in under a minute. A local dev vault with a
 * generated CA holds two certificates (one PKCS#12, one PEM, both with a chain); the real handler is driven the
 * way the guest agent drives it (install, enable) and its detached service syncs them into a local store; then
 * one certificate is rotated in the vault and the live table shows the service pick the new version up. A tiny
 * HTTPS server in this process serves 'web' from the store's link; the certificate's onChange command
 * (/bin/kill -HUP <this process>, the way `nginx -s reload` works) makes it reload, and the table shows the
 * served thumbprint change.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCa, issueCertificate, toPemSecret, toPkcs12Base64, type IssuedCertificate } from '../devvault/certFactory.js';
import { startDevVault } from '../devvault/server.js';
import { parseSettings } from '../settings/index.js';
import type { ObservedCertificate } from '../settings/config.js';
import { createPemStore } from '../stores/pemStore.js';
import type { CommandHost } from '../commands/context.js';
import { makeAgentFolder, type AgentFolder } from './agentFolder.js';
import { renderTable, type DemoRow } from './table.js';
import { servedThumbprint, startDemoHttpsServer, type DemoHttpsServer } from './httpsServer.js';
import { executableExists } from '../consumers/executable.js';

const run = promisify(execFile);
const EXTENSION_NAME = 'Microsoft.Azure.KeyVault.KeyVaultForLinux';
const DEMO_POLL_S = 3;
const DEADLINE_MS = 55_000;
/** What the demo's onChange command runs: kill(1), as Debian and most distributions place it. */
const KILL = '/bin/kill';

export async function runDemoCommand(argv: string[], host: CommandHost): Promise<number> {
  const dirFlag = argv.indexOf('--dir');
  const root = dirFlag >= 0 && argv[dirFlag + 1] ? argv[dirFlag + 1]! : await mkdtemp(join(tmpdir(), 'kvvm-demo-'));
  const started = Date.now();
  const say = (text: string): void => host.stdout(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${text}\n`);

  say(`working folder ${root}`);
  let enabled = false;
  let stopService: (() => Promise<void>) | undefined;
  // The onChange command signals this process; the handler is in place before the service can send the first one
  // (the initial install counts as a change), since SIGHUP's default action would end the demo.
  let httpsServer: DemoHttpsServer | undefined;
  let demoRootPem = '';
  let hups = 0;
  const onHup = (): void => {
    hups += 1;
    void httpsServer?.reload().catch((err: unknown) => say(`reload failed: ${String(err)}`));
  };
  process.on('SIGHUP', onHup);
  const vault = await startDevVault({ port: 0, stateDir: join(root, 'vault') });
  try {
    say(`dev vault at ${vault.vaultUrl}, managed identity at ${vault.imdsEndpoint}`);
    const root_ = createCa('kvvm demo root CA');
    demoRootPem = root_.certPem;
    const intermediate = issueCertificate({ issuer: root_, subjectCn: 'kvvm demo intermediate CA', isCa: true, days: 1825 });
    const web = issueCertificate({ issuer: intermediate, subjectCn: 'web.contoso.test', dnsNames: ['web.contoso.test'], serverAuth: true, days: 90 });
    const api = issueCertificate({ issuer: intermediate, subjectCn: 'api-client.contoso.test', serverAuth: false, days: 90 });
    vault.setSecret('web', toPkcs12Base64(web.keyPem, [web.certPem, intermediate.certPem, root_.certPem]), { contentType: 'application/x-pkcs12' });
    // Uploaded in the order users report (root, leaf, intermediate): the leaf is found by its key, not its place.
    vault.setSecret('api', toPemSecret(api.keyPem, [root_.certPem, api.certPem, intermediate.certPem]), { contentType: 'application/x-pem-file' });
    say(`vault holds 'web' (PKCS#12, TLS server, chain to the demo root) and 'api' (PEM, client certificate)`);

    // The machine trusts the dev vault's TLS CA and the demo root, as it would trust a public CA.
    const trustFile = join(root, 'trusted-roots.pem');
    await writeFile(trustFile, vault.caCertPem + root_.certPem);

    const agent = makeAgentFolder(root, EXTENSION_NAME, '0.1.0');
    const store = join(root, 'store');
    const publicSettings = {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: [
          { url: `${vault.vaultUrl}/secrets/web`, certificateStoreLocation: store, onChange: { command: [KILL, '-HUP', String(process.pid)], timeoutInS: 10 } },
          { url: `${vault.vaultUrl}/secrets/api`, certificateStoreLocation: store },
        ],
      },
      authenticationSettings: { msiEndpoint: vault.imdsEndpoint },
    };
    agent.writeSettings(0, publicSettings);
    const env: Record<string, string> = {
      ...(Object.fromEntries(Object.entries(host.env).filter((e): e is [string, string] => e[1] !== undefined)) as Record<string, string>),
      ...agent.env(0),
      KVVM_EXTRA_VAULT_SUFFIXES: 'localhost',
      NODE_EXTRA_CA_CERTS: trustFile,
      KVVM_DEV_POLL_INTERVAL_S: String(DEMO_POLL_S),
      KVVM_NO_JITTER: '1',
      KVVM_WAAGENT_DIR: agent.waagentDir,
    };
    const cli = host.scriptPath ?? process.argv[1] ?? 'kvvm';
    stopService = async () => {
      await run(host.execPath, [cli, 'disable'], { cwd: agent.extensionFolder, env }).catch(() => undefined);
    };
    const agentRun = async (command: string): Promise<void> => {
      const { stdout } = await run(host.execPath, [cli, command], { cwd: agent.extensionFolder, env });
      say(`agent ran '${command}': ${stdout.trim()}`);
    };
    await agentRun('install');
    await agentRun('enable');
    enabled = true;

    const parsed = parseSettings(publicSettings, { platform: 'linux', env, executableExists });
    if (!parsed.ok) throw new Error('demo settings did not validate');
    const certs = parsed.config.observedCertificates;
    const webTarget = certs.find((c) => c.secretName === 'web')?.target;
    const webLink = join(store, webTarget?.platform === 'linux' ? webTarget.linkName : 'web');
    const view = createLiveView(host, certs, agent);

    const ready = await view.waitFor((s) => s.status === 'success', 'initial sync');
    if (!ready) return fail(host, agent.logFolder);
    // The status may turn success before the first sync (requireInitialSync false): wait for the link itself.
    const linked = await view.waitFor(async () => (await view.rows()).some((r) => r.certificate.endsWith('/web') && r.version !== '-'), 'the first install of web');
    if (!linked) return fail(host, agent.logFolder);
    httpsServer = await startDemoHttpsServer(webLink);
    say(`https://127.0.0.1:${httpsServer.port} serves 'web' from ${webLink}; its onChange command is "${KILL} -HUP ${process.pid}" (this process reloads on SIGHUP)`);
    const before = (await view.rows()).find((r) => r.certificate.endsWith('/web'))?.version;

    const rotated: IssuedCertificate = issueCertificate({ issuer: intermediate, subjectCn: 'web.contoso.test', dnsNames: ['web.contoso.test'], serverAuth: true, days: 90 });
    const newVersion = vault.setSecret('web', toPkcs12Base64(rotated.keyPem, [rotated.certPem, intermediate.certPem, root_.certPem]), {
      contentType: 'application/x-pkcs12',
    });
    say(`rotated 'web' in the vault: new version ${newVersion} (was ${before ?? '?'}); waiting for the service's next poll`);
    const picked = await view.waitFor(async () => {
      const row = (await view.rows()).find((r) => r.certificate.endsWith('/web'));
      return row?.version === newVersion && (await view.served()) === row.thumbprint;
    }, 'rotation');
    if (!picked) return fail(host, agent.logFolder);
    say(`rotation picked up: ${webLink} now points at version ${newVersion}; the previous version is kept`);
    say(`the onChange command reloaded the HTTPS server (${hups} SIGHUP${hups === 1 ? '' : 's'} received): it now serves the new certificate`);

    await agentRun('disable');
    await agentRun('uninstall');
    enabled = false;
    say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s. Store: ${store}  Logs: ${agent.logFolder}`);
    return 0;
  } finally {
    // Never leave a detached service behind, whatever happened above.
    if (enabled && stopService) await stopService();
    await httpsServer?.close();
    process.off('SIGHUP', onHup);
    await vault.close();
  }

  function createLiveView(h: CommandHost, observed: ObservedCertificate[], agent: AgentFolder) {
    const pem = createPemStore({});
    let last = '';
    const rows = async (): Promise<DemoRow[]> => {
      const out: DemoRow[] = [];
      for (const cert of observed) {
        const installed = await pem.list(cert);
        const active = installed.find((i) => i.active);
        out.push({
          certificate: `${cert.vaultName}/${cert.secretName}`,
          version: active?.version ?? '-',
          thumbprint: active?.thumbprint ?? '-',
          expires: active ? active.notAfter.toISOString().slice(0, 10) : '-',
          state: active ? `active (${installed.length} kept)` : 'waiting',
        });
      }
      return out;
    };
    const served = async (): Promise<string> => (httpsServer ? servedThumbprint(httpsServer.port, 'web.contoso.test', demoRootPem).catch(() => '?') : '-');
    // Read and judged as the agent would (protocol/status.ts); an invalid file is shown, and waited past.
    const readStatus = async (): Promise<{ status: string; message: string }> => {
      const view = await agent.readStatus(0);
      if (view.state === 'missing') return { status: 'missing', message: 'no status file yet' };
      if (view.state === 'invalid') return { status: 'invalid', message: view.reason };
      return { status: view.agentStatus, message: view.message ?? '' };
    };
    const waitFor = async (done: ((s: { status: string; message: string }) => boolean) | (() => Promise<boolean>), what: string): Promise<boolean> => {
      const render = async (status: { status: string; message: string }): Promise<void> => {
        const serving = httpsServer ? `https://127.0.0.1:${httpsServer.port} serves thumbprint ${await served()} (reloads: ${httpsServer.reloads})\n` : '';
        const table = renderTable(await rows()) + serving + `status: ${status.status} — ${status.message}\n`;
        if (table !== last) {
          h.stdout(`\n${table}`);
          last = table;
        }
      };
      while (Date.now() - started < DEADLINE_MS) {
        const status = await readStatus();
        await render(status);
        if (status.status === 'error') {
          say(`the extension reported an error during ${what}`);
          return false;
        }
        if (await done(status)) {
          await render(await readStatus()); // the state that satisfied the wait, on screen
          return true;
        }
        await sleep(250);
      }
      say(`gave up waiting for ${what}`);
      return false;
    };
    return { rows, waitFor, served };
  }
}

function fail(host: CommandHost, logFolder: string): number {
  host.stderr(`kvvm demo: did not finish; see the service log in ${logFolder}\n`);
  return 1;
}
