/**
 * `kvvm dev-vault` is a vault for everyone, not only for kvvm: started as a user starts it (a real child process),
 * it is reached with plain curl as printed; then, with the hosts line it printed applied to a private /etc/hosts
 * (bind-mounted in a mount namespace of this test's own: `unshare -m` + `mount --bind`, root only, as here and in
 * CI), by Node's https and fetch and the real @azure/keyvault-secrets and @azure/keyvault-certificates clients,
 * with no custom resolver and no check disabled (the printed CA trusted through NODE_EXTRA_CA_CERTS). A PFX
 * imported through the certificates API, and one put in with `kvvm dev-vault put` as printed, are then installed
 * by the handler, driven as the agent drives it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { packageRoot } from '../handler/paths.js';
import { makeAgentLayout } from './helpers/agentFolder.js';
import { agentCommand, finalStatus } from './helpers/agentCommands.js';

const run = promisify(execFile);
const CLI = join(packageRoot(), 'lib', 'handler', 'cli.js');
const CLIENTS = join(packageRoot(), 'lib', 'test', 'helpers', 'devVaultClients.js');
const PATH = process.env['PATH'] ?? '/usr/bin:/bin';

interface Started {
  child: ChildProcessByStdio<null, Readable, Readable>;
  info: { vaultUrl: string; imdsEndpoint: string; caCertFile: string; hostsLine: string; resolvesHere: boolean };
  guidance: string;
}

/** Starts `kvvm dev-vault` and reads its JSON line and its guidance (stderr, up to the extension settings). */
function startDevVaultProcess(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [CLI, 'dev-vault', ...args], { env: { PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const check = (): void => {
      const line = out.split('\n')[0];
      if (out.includes('\n') && line && err.includes('Point an extension at it')) resolve({ child, info: JSON.parse(line) as Started['info'], guidance: err });
    };
    child.stdout.on('data', (c: Buffer) => ((out += c.toString()), check()));
    child.stderr.on('data', (c: Buffer) => ((err += c.toString()), check()));
    child.once('exit', (code) => reject(new Error(`kvvm dev-vault exited (${code}) before it was ready: ${err}`)));
  });
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

test('an ordinary client reaches kvvm dev-vault as printed, imports a PFX through the certificates API, and the handler installs it', { timeout: 300_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-devvault-clients-'));
  let started: Started | undefined;
  const layout = makeAgentLayout(join(root, 'agent'));
  const env: Record<string, string> = {};
  try {
    // Two certificates made by openssl, without serverAuth (no chain to a trusted root is needed): a PFX with a
    // password for the SDK's import, and a password-less web.pfx for the printed `put` command.
    for (const [name, pass] of [
      ['sdk', 'pw-1'],
      ['web', ''],
    ] as const) {
      await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${name}.test`, '-days', '30'], root);
      await openssl(['pkcs12', '-export', '-inkey', `${name}.key`, '-in', `${name}.crt`, '-out', `${name}.pfx`, '-passout', `pass:${pass}`], root);
    }
    started = await startDevVaultProcess(['--state', join(root, 'vault')]);
    const { info, guidance } = started;
    const host = new URL(info.vaultUrl).hostname;
    assert.equal(info.hostsLine, `127.0.0.1 ${host}`);
    assert.ok(guidance.includes(`kvvm dev-vault put web ./web.pfx --vault-url ${info.vaultUrl}`), guidance);
    Object.assign(env, { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost', NODE_EXTRA_CA_CERTS: info.caCertFile, KVVM_NO_JITTER: '1' });

    // Plain curl, the command it printed, run as printed (a token from the vault's token endpoint, then a list).
    const curlLine = guidance
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.startsWith('curl '));
    assert.ok(curlLine, guidance);
    if (!info.resolvesHere) {
      assert.ok(guidance.includes(`\n  ${info.hostsLine}\n`), 'the exact hosts line, on a line of its own');
      assert.ok(curlLine.includes(`--resolve ${host}:`), curlLine);
    }
    const listed = JSON.parse((await run('sh', ['-c', curlLine], { env: { PATH } })).stdout) as { value: unknown[] };
    assert.deepEqual(listed.value, []);

    // `kvvm dev-vault put` exactly as printed (kvvm for `node cli.js`), from the folder holding web.pfx.
    const putLine = guidance
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.startsWith('kvvm dev-vault put '));
    const exportLine = guidance
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.startsWith('export NODE_EXTRA_CA_CERTS='));
    assert.ok(putLine && exportLine, guidance);
    const put = await run('sh', ['-c', `${exportLine} && ${putLine.replace(/^kvvm /, `"${process.execPath}" "${CLI}" `)}`], { cwd: root, env: { PATH } });
    assert.match(put.stdout, new RegExp(`secret URL for observedCertificates: ${info.vaultUrl}/secrets/web`));

    // The ordinary clients, inside a mount namespace whose /etc/hosts has the printed line.
    const hosts = join(root, 'hosts');
    await writeFile(hosts, `${await readFile('/etc/hosts', 'utf8')}\n${info.hostsLine}\n`);
    const clients = await run(
      'unshare',
      ['-m', 'sh', '-c', 'mount --bind "$1" /etc/hosts && shift && exec "$@"', 'sh', hosts, process.execPath, CLIENTS, info.vaultUrl, join(root, 'sdk.pfx'), 'pw-1'],
      {
        env: { PATH, NODE_EXTRA_CA_CERTS: info.caCertFile, AZURE_POD_IDENTITY_AUTHORITY_HOST: new URL(info.imdsEndpoint).origin },
      },
    );
    const seen = JSON.parse(clients.stdout) as Record<string, Record<string, unknown>> & { versions: string[] };
    for (const probe of [seen['https'], seen['fetch']]) {
      assert.equal(probe?.['status'], 401, 'unauthenticated: the Key Vault challenge');
      assert.match(String(probe?.['challenge']), /^Bearer authorization="https:\/\/login\.windows\.net\/[^"]+", resource="https:\/\/localhost"$/);
    }
    const sdkLeaf = new X509Certificate(await readFile(join(root, 'sdk.crt')));
    assert.equal(seen['imported']?.['x5t'], sdkLeaf.fingerprint.replace(/:/g, '').toLowerCase());
    assert.equal(seen['imported']?.['secretId'], `${info.vaultUrl}/secrets/imported/${String(seen['imported']?.['version'])}`);
    assert.equal(seen['imported']?.['policyContentType'], 'application/x-pkcs12');
    assert.deepEqual(seen['importedSecret'], { contentType: 'application/x-pkcs12', managed: true, version: seen['imported']?.['version'] });
    assert.deepEqual(seen.versions, [seen['imported']?.['version']]);
    assert.equal(seen['got']?.['version'], seen['imported']?.['version']);
    assert.ok(Number(seen['got']?.['cerBytes']) > 500);
    assert.equal(seen['created']?.['doneAfterBegin'], false, 'the pending operation answered inProgress first');
    assert.equal(seen['created']?.['doneAtEnd'], true, 'the SDK polled it until completed');
    assert.equal(seen['created']?.['subject'], 'CN=created.test');
    assert.equal(seen['created']?.['contentType'], 'application/x-pem-file');
    assert.deepEqual(seen['createdSecret'], { contentType: 'application/x-pem-file', hasKey: true, hasCert: true });

    // The handler, driven as the agent drives it, installs the SDK-imported and the put certificates.
    const store = join(root, 'store');
    layout.writeSettings(0, {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: ['imported', 'web'].map((n) => ({ url: `${info.vaultUrl}/secrets/${n}`, certificateStoreLocation: store })),
      },
      authenticationSettings: { msiEndpoint: info.imdsEndpoint },
    });
    assert.equal((await agentCommand(layout, 0, 'install', env)).code, 0);
    const enable = await agentCommand(layout, 0, 'enable', env);
    assert.equal(enable.code, 0, enable.stderr);
    const status = await finalStatus(layout, 0);
    assert.equal(status.status, 'success', status.message);
    const webLeaf = new X509Certificate(await readFile(join(root, 'web.crt')));
    for (const [name, leaf] of [
      ['imported', sdkLeaf],
      ['web', webLeaf],
    ] as const) {
      const pem = await readFile(join(store, `kvvm.${name}`), 'utf8'); // default link name <vault>.<certificate>
      assert.match(pem, /-----BEGIN PRIVATE KEY-----/);
      assert.equal(new X509Certificate(pem.slice(pem.indexOf('-----BEGIN CERTIFICATE-----'))).fingerprint, leaf.fingerprint, name);
    }
  } finally {
    await agentCommand(layout, 0, 'disable', env).catch(() => undefined);
    started?.child.kill('SIGTERM');
    await rm(root, { recursive: true, force: true });
  }
});

test('kvvm dev-vault --seed imports every .pfx/.pem of a folder as a certificate, and --help shows a whole session', async () => {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-devvault-seed-'));
  let started: Started | undefined;
  try {
    await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-subj', '/CN=seed.test', '-days', '30'], root);
    await openssl(['pkcs12', '-export', '-inkey', 'k.pem', '-in', 'c.pem', '-out', 'from-pfx.pfx', '-passout', 'pass:'], root);
    await writeFile(join(root, 'from_pem.pem'), `${await readFile(join(root, 'k.pem'), 'utf8')}${await readFile(join(root, 'c.pem'), 'utf8')}`);
    await copyFile(join(root, 'c.pem'), join(root, 'ignored.txt'));
    const seedDir = join(root, 'seed');
    await run('mkdir', [seedDir]);
    for (const f of ['from-pfx.pfx', 'from_pem.pem', 'ignored.txt']) await copyFile(join(root, f), join(seedDir, f));
    started = await startDevVaultProcess(['--seed', seedDir, '--host', 'seeded.localhost']);
    assert.match(started.guidance, /seeded 2 certificate\(s\) from .*: from-pfx, from-pem\n/);
    assert.match(started.info.vaultUrl, /^https:\/\/seeded\.localhost:\d+$/);
    // Read back through the printed curl's own token step, listing the secrets Key Vault would have created.
    const curlLine = started.guidance
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.startsWith('curl '));
    assert.ok(curlLine);
    const listed = JSON.parse((await run('sh', ['-c', curlLine], { env: { PATH } })).stdout) as { value: Array<{ id: string; contentType: string; managed: boolean }> };
    assert.deepEqual(listed.value.map((v) => [v.id.replace(started!.info.vaultUrl, ''), v.contentType, v.managed]).sort(), [
      ['/secrets/from-pem', 'application/x-pem-file', true],
      ['/secrets/from-pfx', 'application/x-pkcs12', true],
    ]);
    const help = await run(process.execPath, [CLI, 'dev-vault', '--help'], { env: { PATH } });
    for (const step of [
      'kvvm dev-vault --state',
      'kvvm dev-vault put web ./web.pfx --vault-url',
      '/etc/hosts',
      '"observedCertificates"',
      'msiEndpoint',
      'KVVM_EXTRA_VAULT_SUFFIXES',
    ]) {
      assert.ok(help.stdout.includes(step), `--help shows: ${step}`);
    }
  } finally {
    started?.child.kill('SIGTERM');
    await rm(root, { recursive: true, force: true });
  }
});
