/**
 * The Windows guest agent, played inside Windows Node under Wine: a C:\Packages\Plugins\<Pub.Type>\<ver>\ layout
 * (HandlerEnvironment.json with the Windows keys, RuntimeSettings\N.settings, Status\N.status), logs in
 * C:\WindowsAzure\Logs\Plugins\..., the CLI run as `node.exe lib\handler\cli.js <cmd>` with ConfigSequenceNumber & co.
 * install → enable (a real Windows service: registered, started by the SCM) → sync from the dev vault (on the Linux
 * side, run.ts) → rotate → enable seq 1 (service replaced, renewal link moved) → enable again (idempotent) → disable
 * (service stopped) → uninstall (service deleted, certificates kept). Stores are read back by a FRESH process.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { deleteService, queryService } from '../../../handler/service/windowsService.js';
import { KVVM_SERVICE_NAME } from '../../../handler/service/windowsServiceConfig.js';
import { SERVICE_AUTO_START, SERVICE_DEMAND_START, SERVICE_RUNNING, SERVICE_STOPPED } from '../../../handler/platform/win32/native.js';
import { loopbackLookup } from '../../../handler/vault/transport.js';
import { deleteSystemStore, dumpInFreshProcess, uniqueStoreName } from './fixture.js';
import { agent, finalStatus, windowsAgentFolder, writeSettings } from './agent.js';

interface LifecycleFixture {
  vaultUrl: string;
  imdsEndpoint: string;
  imdsHost: string;
  clientId: string;
  thumbprints: { web1: string; web2: string; api: string };
  web2Secret: string;
}

function fixture(): LifecycleFixture {
  const dir = process.env['KVVM_WINE_FIXTURES'];
  if (!dir) throw new Error('KVVM_WINE_FIXTURES is not set: run these tests through `npm run test:windows`, which starts the dev vault');
  return JSON.parse(readFileSync(join(dir, 'lifecycle.json'), 'utf8')) as LifecycleFixture;
}

/** Rotates a secret the way an operator would: PUT to the (Linux-side) dev vault with a token from its IMDS (node:http: no fetch under Wine). */
async function putSecret(f: LifecycleFixture, name: string, value: string, contentType: string): Promise<string> {
  // The vault's resource is its host without the vault name (https://localhost for https://kvvm.localhost:PORT).
  const resource = `https://${new URL(f.vaultUrl).hostname.split('.').slice(1).join('.')}`;
  const tokenUrl = `${f.imdsEndpoint}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}&client_id=${f.clientId}`;
  const token = await new Promise<string>((resolve, reject) => {
    httpGet(tokenUrl, { headers: { Metadata: 'true' } }, (res) => {
      let data = '';
      res
        .setEncoding('utf8')
        .on('data', (c: string) => (data += c))
        .on('end', () => resolve((JSON.parse(data) as { access_token: string }).access_token));
    }).once('error', reject);
  });
  const url = new URL(`${f.vaultUrl}/secrets/${name}?api-version=7.5`);
  const body = JSON.stringify({ value, contentType });
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'PUT',
        lookup: loopbackLookup,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        let data = '';
        res
          .setEncoding('utf8')
          .on('data', (c: string) => (data += c))
          .on('end', () => (res.statusCode === 200 ? resolve(data) : reject(new Error(`PUT ${res.statusCode}: ${data}`))));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
  return (JSON.parse(text) as { id: string }).id.split('/').pop() ?? '';
}

describe('the Windows agent drives kvvm under Wine: a real Windows service, the Windows certificate store', () => {
  const f = fixture();
  // 3.0.0 in the folder name and in AZURE_GUEST_AGENT_EXTENSION_VERSION, as the agent gives both.
  const layout = windowsAgentFolder('3.0.0', '3.0.0', f.imdsHost);
  const storeName = uniqueStoreName();
  const where = `LocalMachine\\${storeName}`;
  after(() => {
    if (queryService()) deleteService(); // only when a step failed before uninstall
    deleteSystemStore('LocalMachine', storeName);
    rmSync(layout.extensionFolder, { recursive: true, force: true });
  });

  const settings = {
    secretsManagementSettings: {
      pollingIntervalInS: '3600',
      // 3.0.0 is the 3.x profile: without this, success would come as soon as polling starts (docs/versions.md).
      requireInitialSync: true,
      linkOnRenewal: true,
      observedCertificates: [
        { url: `${f.vaultUrl}/secrets/web`, certificateStoreName: storeName, certificateStoreLocation: 'LocalMachine', keyExportable: true },
        { url: `${f.vaultUrl}/secrets/api`, certificateStoreName: storeName, certificateStoreLocation: 'LocalMachine', keyExportable: true },
      ],
    },
    // Public, not protected: Wine 8 has no CryptDecryptMessage (docs/windows.md).
    authenticationSettings: { msiClientId: f.clientId },
  };

  it('install, then enable registers and starts the kvvm Windows service, which installs both certificates', async () => {
    assert.equal(queryService(), undefined, 'a kvvm service is already registered in this Wine prefix');
    writeSettings(layout, 0, settings);
    const install = agent(layout, 0, 'install');
    assert.equal(install.code, 0, install.stderr);
    const enable = agent(layout, 0, 'enable');
    assert.equal(enable.code, 0, `${enable.stdout}\n${enable.stderr}`);
    const svc = queryService();
    assert.ok(svc, 'enable registered no service');
    assert.equal(svc.state, SERVICE_RUNNING);
    assert.equal(svc.startType, SERVICE_AUTO_START, 'an enabled extension starts at boot');
    // node.exe "<lib>\\handler\\cli.js" windows-service-host "<launch file>": the hidden CLI command runs the service.
    assert.match(svc.binaryPathName, /^"[^"]*node\.exe" "[^"]*\\lib\\handler\\cli\.js" windows-service-host "[^"]*\\kvvm-service\.launch\.json"$/i, svc.binaryPathName);

    const status = await finalStatus(layout, 0);
    assert.equal(status.status, 'success', status.message);
    assert.equal(status.substatus.length, 2);
    assert.equal(readFileSync(join(layout.extensionFolder, 'mrseq'), 'utf8').trim(), '0');
    const dump = dumpInFreshProcess([where])[where] ?? [];
    assert.deepEqual(new Set(dump.map((c) => c.thumbprint)), new Set([f.thumbprints.web1, f.thumbprints.api]));
    assert.ok(
      dump.every((c) => c.friendlyName?.startsWith('kvvm:kvvm/')),
      JSON.stringify(dump),
    );
    // The service logs in the handler's log folder: its own host log and the sync service's.
    assert.match(readFileSync(join(layout.logFolder, 'kvvm-windows-service.log'), 'utf8'), /certificate service started/);
    assert.match(readFileSync(join(layout.logFolder, 'kvvm-service.log'), 'utf8'), /service started for sequence 0/);
  });

  it('a rotation delivered with sequence 1 replaces the service; the new version is installed and the old one links to it', async () => {
    const pid0 = queryService()?.pid;
    await putSecret(f, 'web', f.web2Secret, 'application/x-pkcs12');
    writeSettings(layout, 1, settings);
    const enable = agent(layout, 1, 'enable');
    assert.equal(enable.code, 0, `${enable.stdout}\n${enable.stderr}`);
    const status = await finalStatus(layout, 1);
    assert.equal(status.status, 'success', status.message);
    const svc = queryService();
    assert.equal(svc?.state, SERVICE_RUNNING);
    assert.equal(svc?.startType, SERVICE_AUTO_START, 'enable (which stops the old service first) registers it to start at boot again');
    assert.notEqual(svc?.pid, pid0, 'a new sequence number restarts the service');
    const dump = dumpInFreshProcess([where])[where] ?? [];
    const web1 = dump.find((c) => c.thumbprint === f.thumbprints.web1);
    assert.ok(
      dump.some((c) => c.thumbprint === f.thumbprints.web2),
      'the rotated version is installed',
    );
    assert.equal(web1?.renewal, f.thumbprints.web2, 'CERT_RENEWAL_PROP_ID of the old version names the new one');
    // Event 1001 (IIS Automatic Rebind) cannot be raised here: Wine's powershell.exe is a stub that runs nothing.
    // The activation above succeeded anyway, and the service log says why the event was not raised.
    const messages = readFileSync(join(layout.logFolder, 'kvvm-service.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { message: string; level: string });
    const event = messages.find((m) => m.message.startsWith(`certificate lifecycle event 1001 NOT raised for ${where}: ${f.thumbprints.web1} -> ${f.thumbprints.web2}: `));
    assert.ok(event, JSON.stringify(messages.slice(-6)));
    assert.equal(event.level, 'warn');
    assert.match(event.message, /(not a working PowerShell|does not exist)/);
  });

  it('enable again with the same sequence number changes nothing', () => {
    const pid = queryService()?.pid;
    const again = agent(layout, 1, 'enable');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already applied/);
    assert.equal(queryService()?.pid, pid);
  });

  it('disable stops the service and keeps it from starting at boot; the certificates stay', () => {
    const disable = agent(layout, 1, 'disable');
    assert.equal(disable.code, 0, disable.stderr);
    assert.equal(queryService()?.state, SERVICE_STOPPED);
    assert.equal(queryService()?.startType, SERVICE_DEMAND_START, 'a disabled extension does not start again at the next boot');
    assert.ok((dumpInFreshProcess([where])[where] ?? []).some((c) => c.thumbprint === f.thumbprints.web2));
  });

  it("uninstall deletes the service and kvvm's state, and keeps the certificates", () => {
    const uninstall = agent(layout, 1, 'uninstall');
    assert.equal(uninstall.code, 0, uninstall.stderr);
    assert.match(uninstall.stdout, /Windows service deleted/);
    assert.equal(queryService(KVVM_SERVICE_NAME), undefined);
    assert.throws(() => readFileSync(join(layout.extensionFolder, 'mrseq')));
    const dump = dumpInFreshProcess([where])[where] ?? [];
    assert.deepEqual(new Set(dump.map((c) => c.thumbprint)), new Set([f.thumbprints.web1, f.thumbprints.web2, f.thumbprints.api]));
  });
});
