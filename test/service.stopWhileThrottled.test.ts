/**
 * `disable` while the service waits out a vault's Retry-After: the real service against the dev vault answering
 * every read with 429 and "Retry-After: 120". The wait ends when the service is told to stop, so disable stops it
 * with SIGTERM alone; before, the worker sat in the 120 s wait and was SIGKILLed after the grace period.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentCommand } from './helpers/agentCommands.js';
import { AGENT_SERVICE_CLIENT_ID, withAgentService } from './helpers/agentService.js';
import { createCa, issueCertificate, toPkcs12Base64 } from '../handler/devvault/certFactory.js';
import { posixSupervisor } from '../handler/service/posixSupervisor.js';

test("disable during a vault's Retry-After wait stops the service at once (SIGTERM, no kill)", { timeout: 120_000 }, () =>
  withAgentService('stop-throttled', async ({ root, vault, layout, env }) => {
    const ca = createCa('stop-throttled root');
    const web = issueCertificate({ issuer: ca, subjectCn: 'web.test', serverAuth: false });
    vault.setSecret('web', toPkcs12Base64(web.keyPem, [web.certPem, ca.certPem]), { contentType: 'application/x-pkcs12' });
    layout.writeSettings(0, {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: [{ url: `${vault.vaultUrl}/secrets/web`, certificateStoreLocation: join(root, 'store'), customSymbolicLinkName: 'web.pem' }],
      },
      authenticationSettings: { msiEndpoint: vault.imdsEndpoint, msiClientId: AGENT_SERVICE_CLIENT_ID },
    });
    vault.injectFaults({ status: 429, retryAfterS: 120, count: 1000 });
    assert.equal((await agentCommand(layout, 0, 'install', env)).code, 0);
    assert.equal((await agentCommand(layout, 0, 'enable', env)).code, 0);

    // Liveness deadline, not a timing assertion: the service has met a 429 and is waiting out its Retry-After.
    const deadline = Date.now() + 60_000;
    while (vault.stats().vault.throttled === 0) {
      assert.ok(Date.now() < deadline, 'the service never reached the vault');
      await sleep(50);
    }
    const throttled = vault.stats().vault.throttled;

    const disable = await agentCommand(layout, 0, 'disable', env);
    assert.equal(disable.code, 0, disable.stderr);
    assert.match(disable.stdout, /service stopped/, `SIGTERM sufficed: no SIGKILL (${disable.stdout.trim()})`);
    assert.equal((await posixSupervisor.isRunning(join(layout.extensionFolder, 'kvvm-service.pid'))).running, false);
    assert.equal(vault.stats().vault.throttled, throttled, 'nothing was retried after the stop');
  }),
);
