/**
 * The Windows rows of docs/versions.md through `enable`, inside Windows Node under Wine: one agent folder
 * (C:\Packages\Plugins\<Publisher>.<Type>\<version>\) per row, the handler version given the way the agent gives
 * it — AZURE_GUEST_AGENT_EXTENSION_VERSION in one row, only the folder name in the other — the real handler and
 * its real Windows service syncing from the dev vault (started on the Linux side by run.ts).
 * Asserted: the status file; the PFXImportCertStore flags the service used, from its log line per import (the
 * import runs in the service process the SCM started, which a test cannot wrap; profiles.test records the same
 * flags by wrapping the binding in-process); and the installed key's CERT_KEY_PROV_INFO_PROP_ID, read back by a
 * FRESH process.
 * Not runnable under Wine: a real CNG key (Wine 8's PFXImportCertStore has no key storage provider, so the 4.x
 * CNG probe fails and kvvm falls back to a CAPI1 import with no CSP name; on Windows the key lands in a CNG KSP,
 * provider type 0), KeyGuard, and the CSP name choosing the provider (Wine ignores it and puts every imported key
 * in "Microsoft Enhanced Cryptographic Provider v1.0"; measured). So under Wine the rows differ in the flags and
 * the CSP name handed to PFXImportCertStore, which the import line states.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { deleteService, queryService } from '../../../handler/service/windowsService.js';
import { agent, finalStatus, windowsAgentFolder, writeSettings, type AgentFolder, type AgentStatus } from './agent.js';
import { deleteSystemStore, dumpInFreshProcess, uniqueStoreName, type DumpedCertificate } from './fixture.js';

interface ProfileFixture {
  vaultUrl: string;
  imdsHost: string;
  clientId: string;
  thumbprints: { profileKv: string; profileSrv: string };
}

function fixture(): ProfileFixture {
  const dir = process.env['KVVM_WINE_FIXTURES'];
  if (!dir) throw new Error('KVVM_WINE_FIXTURES is not set: run these tests through `npm run test:windows`, which starts the dev vault');
  return JSON.parse(readFileSync(join(dir, 'lifecycle.json'), 'utf8')) as ProfileFixture;
}

/** The CSP name the dev vault's PFX carries, as Key Vault's do (handler/devvault/pkcs12.ts). */
const KEY_VAULT_CSP = 'Microsoft Enhanced RSA and AES Cryptographic Provider';

const sub = (s: AgentStatus, name: string): AgentStatus['substatus'][number] | undefined => s.substatus.find((x) => x.name === `kvvm/${name}`);

interface Row {
  name: string;
  folderVersion: string;
  envVersion: string | undefined;
  run: (layout: AgentFolder, f: ProfileFixture, where: string, storeName: string) => Promise<void>;
}

function observedIn(f: ProfileFixture, storeName: string, names: string[], extra: Record<string, unknown> = {}): unknown[] {
  return names.map((n) => ({ url: `${f.vaultUrl}/secrets/${n}`, certificateStoreName: storeName, certificateStoreLocation: 'LocalMachine', ...extra }));
}

const PKCS12_PREFER_CNG_KSP = 0x100;
const PKCS12_ALWAYS_CNG_KSP = 0x200;

/** The service's "imported <thumbprint>: PFXImportCertStore flags 0x… (…)" line: the flags and how the provider was chosen. */
function importLine(layout: AgentFolder, thumbprint: string): { flags: number; how: string } {
  const messages = readFileSync(join(layout.logFolder, 'kvvm-service.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { message: string }).message);
  const prefix = `imported ${thumbprint}: PFXImportCertStore flags 0x`;
  const line = messages.find((m) => m.startsWith(prefix));
  assert.ok(line, `no import line for ${thumbprint}: ${JSON.stringify(messages.slice(-8))}`);
  const m = /^([0-9a-f]+) \((.*)\)$/.exec(line.slice(prefix.length));
  assert.ok(m, line);
  return { flags: parseInt(m[1] ?? '', 16), how: m[2] ?? '' };
}

function installed(where: string, thumbprint: string): DumpedCertificate | undefined {
  return (dumpInFreshProcess([where])[where] ?? []).find((c) => c.thumbprint === thumbprint);
}

const ROWS: Row[] = [
  {
    name: '3.x Windows, version from AZURE_GUEST_AGENT_EXTENSION_VERSION 3.0.2 (the folder says 4.0.0): success without waiting for every certificate, untrusted server-auth chain installed with a warning, interval as given, CAPI1 import by the PFX CSP name',
    folderVersion: '4.0.0',
    envVersion: '3.0.2',
    run: async (layout, f, where, storeName) => {
      writeSettings(layout, 0, {
        // requireInitialSync absent: under 3.x that means success once polling starts.
        secretsManagementSettings: { pollingIntervalInS: '30', observedCertificates: observedIn(f, storeName, ['profile-kv', 'profile-srv', 'profile-missing']) },
        authenticationSettings: { msiClientId: f.clientId },
      });
      const enable = agent(layout, 0, 'enable');
      assert.equal(enable.code, 0, `${enable.stdout}\n${enable.stderr}`);
      const s = await finalStatus(layout, 0, (x) => x.status === 'error' || (sub(x, 'profile-kv')?.status === 'success' && sub(x, 'profile-srv')?.status === 'success'));
      // Success while a certificate still fails: 3.x never waits for all of them.
      assert.equal(s.status, 'success', s.message);
      assert.equal(sub(s, 'profile-missing')?.status, 'error', JSON.stringify(s.substatus));
      assert.doesNotMatch(s.message, /Initial sync/);
      assert.match(sub(s, 'profile-srv')?.formattedMessage.message ?? '', /chain does not validate/);
      assert.match(s.message, /pollingIntervalInS "30" is below 60 s/);
      assert.match(
        readFileSync(join(layout.logFolder, 'kvvm-service.log'), 'utf8'),
        /3\.x profile \(KeyVaultForWindows 3\.x rules; handler version 3\.0\.2 from AZURE_GUEST_AGENT_EXTENSION_VERSION\)/,
      );
      // CAPI1: no CNG flag, and the PFX handed over keeps Key Vault's CSP name (on Windows that name picks the provider).
      const imported = importLine(layout, f.thumbprints.profileKv);
      assert.equal(imported.flags & (PKCS12_PREFER_CNG_KSP | PKCS12_ALWAYS_CNG_KSP), 0, `flags 0x${imported.flags.toString(16)}`);
      assert.equal(imported.how, `no CNG flag; the PFX's CSP name "${KEY_VAULT_CSP}" picks the provider`);
      const kv = installed(where, f.thumbprints.profileKv);
      assert.ok(kv, `${f.thumbprints.profileKv} is not installed in ${where}`); // key usability: windowsStore.test
      assert.ok((kv.keyProvType ?? 0) > 0, `a CAPI1 key (provider type > 0): ${JSON.stringify(kv)}`);
      assert.ok(installed(where, f.thumbprints.profileSrv), 'the server-auth leaf whose chain does not validate is installed');
    },
  },
  {
    name: '4.x Windows, version only in the folder name (...\\KeyVaultForWindows\\4.0.0, no AZURE_GUEST_AGENT_EXTENSION_VERSION): keyExportable refused naming the key, then the CNG-path import without the PFX CSP name',
    folderVersion: '4.0.0',
    envVersion: undefined,
    run: async (layout, f, where, storeName) => {
      writeSettings(layout, 0, {
        secretsManagementSettings: { pollingIntervalInS: '3600', observedCertificates: observedIn(f, storeName, ['profile-kv'], { keyExportable: true }) },
        authenticationSettings: { msiClientId: f.clientId },
      });
      const refused = agent(layout, 0, 'enable');
      assert.notEqual(refused.code, 0, 'enable must fail on a setting 4.0 removed');
      const s0 = await finalStatus(layout, 0);
      assert.equal(s0.status, 'error');
      assert.match(
        s0.message,
        /\/secretsManagementSettings\/observedCertificates\/0\/keyExportable: keyExportable true is not supported by handler version 4\.0\.0 \(4\.x profile\)/,
      );
      assert.match(s0.message, /Remove keyExportable/);
      assert.equal(installed(where, f.thumbprints.profileKv), undefined, 'nothing installed from refused settings');

      writeSettings(layout, 1, {
        secretsManagementSettings: { pollingIntervalInS: '3600', observedCertificates: observedIn(f, storeName, ['profile-kv']) },
        authenticationSettings: { msiClientId: f.clientId },
      });
      const enable = agent(layout, 1, 'enable');
      assert.equal(enable.code, 0, `${enable.stdout}\n${enable.stderr}`);
      const s1 = await finalStatus(layout, 1);
      assert.equal(s1.status, 'success', s1.message);
      assert.match(
        readFileSync(join(layout.logFolder, 'kvvm-service.log'), 'utf8'),
        /4\.x profile \(KeyVaultForWindows 4\.0 rules; handler version 4\.0\.0 from the extension folder name\)/,
      );
      // The CNG path: the CSP name is stripped before import; the probe decides. On Windows PKCS12_PREFER_CNG_KSP
      // and a KSP key (type 0); under Wine (no KSP) the probe fails and the key goes to the default CAPI1 provider.
      const imported = importLine(layout, f.thumbprints.profileKv);
      const kv = installed(where, f.thumbprints.profileKv);
      assert.ok(kv, `${f.thumbprints.profileKv} is not installed in ${where}`); // key usability: windowsStore.test
      if (imported.how === 'CNG' || imported.how === 'CNG with KeyGuard') {
        assert.notEqual(imported.flags & PKCS12_PREFER_CNG_KSP, 0, `flags 0x${imported.flags.toString(16)}`);
        assert.equal(kv.keyProvType, 0, JSON.stringify(kv));
      } else {
        assert.equal(imported.how, 'CNG probe failed on this platform, CAPI1 default provider; no CSP name in the PFX');
        assert.equal(imported.flags & (PKCS12_PREFER_CNG_KSP | PKCS12_ALWAYS_CNG_KSP), 0, `flags 0x${imported.flags.toString(16)}`);
        assert.notEqual(kv.keyProvider, KEY_VAULT_CSP, JSON.stringify(kv));
      }
    },
  },
];

describe('Windows behaviour profiles through enable, one agent folder per row (Wine)', () => {
  const f = fixture();
  for (const row of ROWS) {
    it(row.name, async () => {
      assert.equal(queryService(), undefined, 'a kvvm service is already registered in this Wine prefix');
      const layout = windowsAgentFolder(row.folderVersion, row.envVersion, f.imdsHost);
      const storeName = uniqueStoreName();
      try {
        await row.run(layout, f, `LocalMachine\\${storeName}`, storeName);
      } finally {
        agent(layout, 9, 'uninstall');
        if (queryService()) deleteService();
        deleteSystemStore('LocalMachine', storeName);
        rmSync(layout.extensionFolder, { recursive: true, force: true });
      }
    });
  }
  after(() => {
    if (queryService()) deleteService();
  });
});
