/**
 * The guest agent, played through the whole lifecycle on a temporary folder laid out like /var/lib/waagent:
 * install → enable seq 0 → status success → rotate in the vault → enable seq 1 → new version in the store and
 * symlink moved → enable seq 1 again (idempotent) → disable → enable → uninstall. The handler runs as a separate
 * process with the agent's environment, the service is really detached, the vault is the dev vault over HTTPS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { agentCommand, finalStatus } from './helpers/agentCommands.js';
import { AGENT_SERVICE_CLIENT_ID, withAgentService } from './helpers/agentService.js';
import { createCa, issueCertificate, toPemSecret, toPkcs12Base64 } from '../handler/devvault/certFactory.js';
import { posixSupervisor } from '../handler/service/posixSupervisor.js';
import { setTimeout as sleep } from 'node:timers/promises';

const { isRunning } = posixSupervisor;

/** A liveness deadline, not a timing assertion. */
async function waitUntil(done: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not within 60 s: ${what}`);
    await sleep(50);
  }
}

test('the agent drives the extension through install, enable, rotation, disable, enable and uninstall', { timeout: 180_000 }, () =>
  withAgentService('lifecycle', async ({ root, vault, layout, env, trust }) => {
    const ca = createCa('lifecycle root');
    const web1 = issueCertificate({ issuer: ca, subjectCn: 'web.test', dnsNames: ['web.test'], serverAuth: true });
    const api = issueCertificate({ issuer: ca, subjectCn: 'api.test', serverAuth: false });
    const webV1 = vault.setSecret('web', toPkcs12Base64(web1.keyPem, [web1.certPem, ca.certPem]), { contentType: 'application/x-pkcs12' });
    const apiV1 = vault.setSecret('api', toPemSecret(api.keyPem, [ca.certPem, api.certPem]), { contentType: 'application/x-pem-file' });
    await trust(ca.certPem);

    const store = join(root, 'store');
    const settings = {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: [
          { url: `${vault.vaultUrl}/secrets/web`, certificateStoreLocation: store, customSymbolicLinkName: 'web.pem' },
          { url: `${vault.vaultUrl}/secrets/api`, certificateStoreLocation: store },
        ],
      },
    };
    // The identity arrives in protected settings, encrypted by the "platform" to the <THUMB>.crt next to the
    // extension folder: enable must decrypt and merge it, or the token request fails (the VM has no system identity).
    const protectedSettings = { authenticationSettings: { msiEndpoint: vault.imdsEndpoint, msiClientId: AGENT_SERVICE_CLIENT_ID } };
    layout.writeSettings(0, settings, protectedSettings);

    // install → enable seq 0 → success once both certificates are in (requireInitialSync absent: 4.0 default).
    assert.equal((await agentCommand(layout, 0, 'install', env)).code, 0);
    const enable0 = await agentCommand(layout, 0, 'enable', env);
    assert.equal(enable0.code, 0, enable0.stderr);
    const status0 = await finalStatus(layout, 0);
    assert.equal(status0.status, 'success', status0.message);
    assert.equal(status0.substatus.length, 2);
    assert.ok(status0.substatus.every((s) => s.status === 'success'));
    // Every KVVM_* variable in effect is named in the service's log, test knobs as development overrides.
    const serviceLog = await readFile(join(layout.logFolder, 'kvvm-service.log'), 'utf8');
    assert.match(serviceLog, /development override: KVVM_NO_JITTER=1/);
    assert.match(serviceLog, /environment: KVVM_EXTRA_VAULT_SUFFIXES=localhost/);
    // Each certificate's substatus tells the operator what is installed and where.
    const webStatus = status0.substatus.find((s) => s.name === 'kvvm/web')?.formattedMessage.message ?? '';
    assert.ok(webStatus.includes(`version ${webV1}`) && webStatus.includes(web1.cert.fingerprint.replace(/:/g, '')), webStatus);
    assert.ok(webStatus.includes(`in ${join(store, `kvvm.web.${webV1}`)}`), webStatus);
    assert.equal((await readFile(join(layout.extensionFolder, 'mrseq'), 'utf8')).trim(), '0');

    assert.equal((await stat(store)).mode & 0o777, 0o700);
    const webLink = join(store, 'web.pem');
    assert.ok((await lstat(webLink)).isSymbolicLink());
    assert.match(await readlink(webLink), new RegExp(webV1));
    const apiLink = join(store, 'kvvm.api'); // default link name: <vault>.<certificate>
    assert.match(await readlink(apiLink), new RegExp(apiV1));
    let pemFiles = 0;
    for (const f of await readdir(store)) {
      const st = await lstat(join(store, f));
      if (st.isFile() && /\.pem$/i.test(f)) {
        pemFiles += 1;
        assert.equal(st.mode & 0o777, 0o600, f);
      }
    }
    assert.equal(pemFiles, 2, 'one private PEM file per installed version');
    const webPem = await readFile(webLink, 'utf8');
    assert.match(webPem, /-----BEGIN PRIVATE KEY-----/);
    assert.equal(new X509Certificate(webPem.slice(webPem.indexOf('-----BEGIN CERTIFICATE-----'))).fingerprint, web1.cert.fingerprint);

    // Rotate in the vault, then the agent delivers a new sequence number: the service restarts and syncs at once.
    const web2 = issueCertificate({ issuer: ca, subjectCn: 'web.test', dnsNames: ['web.test'], serverAuth: true });
    const webV2 = vault.setSecret('web', toPkcs12Base64(web2.keyPem, [web2.certPem, ca.certPem]), { contentType: 'application/x-pkcs12' });
    layout.writeSettings(1, settings, protectedSettings);
    // The service is its supervisor: between cycles it holds no worker (the worker rests, restartLoop.ts).
    const supervisorPid = join(layout.extensionFolder, 'kvvm-supervisor.pid');
    const pid0 = (await isRunning(supervisorPid)).pid;
    assert.equal((await agentCommand(layout, 1, 'enable', env)).code, 0);
    const status1 = await finalStatus(layout, 1);
    assert.equal(status1.status, 'success', status1.message);
    assert.match(await readlink(webLink), new RegExp(webV2));
    const webFiles = (await readdir(store)).filter((f) => f.startsWith('kvvm.web.') && /\.pem$/i.test(f));
    assert.equal(webFiles.length, 2, `two newest versions kept: ${webFiles.join(', ')}`);
    const running1 = await isRunning(supervisorPid);
    assert.ok(running1.running);
    assert.notEqual(running1.pid, pid0, 'a new sequence number replaces the service');

    // The agent re-runs enable with the same sequence number on every goal state: nothing changes.
    const again = await agentCommand(layout, 1, 'enable', env);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already applied/);
    assert.equal((await isRunning(supervisorPid)).pid, running1.pid);

    // disable stops the service; certificates stay.
    assert.equal((await agentCommand(layout, 1, 'disable', env)).code, 0);
    assert.equal((await isRunning(supervisorPid)).running, false);
    assert.equal((await isRunning(join(layout.extensionFolder, 'kvvm-service.pid'))).running, false);
    assert.match(await readlink(webLink), new RegExp(webV2));

    // enable after disable (same sequence number, e.g. after a reboot) starts the service again; enable returns
    // once its supervisor holds the service lock, and the worker runs its cycle, then rests (its wake record).
    const wakeFile = join(layout.extensionFolder, 'kvvm-service.wake');
    const restedAt = (): Promise<number> =>
      stat(wakeFile).then(
        (st) => st.mtimeMs,
        () => 0,
      );
    const restedBefore = await restedAt();
    assert.equal((await agentCommand(layout, 1, 'enable', env)).code, 0);
    assert.ok((await isRunning(supervisorPid)).running);
    await waitUntil(async () => (await restedAt()) !== restedBefore, 'the restarted service rests after its cycle');

    // uninstall stops it and removes kvvm's state, not the certificates.
    assert.equal((await agentCommand(layout, 1, 'uninstall', env)).code, 0);
    assert.equal((await isRunning(supervisorPid)).running, false);
    assert.equal((await isRunning(join(layout.extensionFolder, 'kvvm-service.pid'))).running, false);
    await assert.rejects(stat(join(layout.extensionFolder, 'mrseq')));
    await assert.rejects(stat(join(layout.extensionFolder, 'state')));
    assert.match(await readlink(webLink), new RegExp(webV2));
    assert.match(await readlink(apiLink), new RegExp(apiV1));
  }),
);
