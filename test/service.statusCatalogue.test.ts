/**
 * What goes wrong at run time, as operators see it: for each failure the certificate's substatus in the status
 * file says error, names the reason and says how to fix it, while the other certificates are unaffected.
 * Real dev vault over HTTPS, real SDK clients, certificates from openssl and the recorded Key Vault vectors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startDevVault, type DevVault } from '../handler/devvault/server.js';
import { parseSettings } from '../handler/settings/index.js';
import { profileFor } from '../handler/settings/profile.js';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { makeChainCheck } from '../handler/commands/service.js';
import { DEFAULT_RETRY_POLICY, runPollLoop } from '../handler/service/pollLoop.js';
import type { HandlerStatusReport, SubStatus } from '../handler/protocol/status.js';
import { OpensslFactory, pemSecret } from './helpers/openssl.js';
import { loadSecretVector } from './helpers/vectors.js';

const env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' };
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const USER_ID = '11111111-2222-3333-4444-555555555555';
const DENIED_ID = '99999999-2222-3333-4444-555555555555';

let vault: DevVault;
let dir: string;
let ssl: OpensslFactory;
let trustedRoot: X509Certificate;

before(async () => {
  vault = await startDevVault({ port: 0, identities: { systemAssigned: true, userAssigned: [USER_ID, DENIED_ID] } });
  dir = await mkdtemp(join(tmpdir(), 'kvvm-status-catalogue-'));
  ssl = await OpensslFactory.create();
  const root = ssl.rootCa('catalogue-root');
  trustedRoot = root.cert;
  const untrusted = ssl.rootCa('untrusted-root');
  const good = ssl.leaf('good', root, { serverAuth: true });
  vault.setSecret('good', ssl.pkcs12(good, [root], { mode: 'modern' }), { contentType: 'application/x-pkcs12' });
  const stranger = ssl.leaf('stranger', untrusted, { serverAuth: true });
  vault.setSecret('untrusted', ssl.pkcs12(stranger, [untrusted], { mode: 'modern' }), { contentType: 'application/x-pkcs12' });
  const old = ssl.leaf('expired', root, { serverAuth: true, notBefore: new Date('2020-01-01'), notAfter: new Date('2021-01-01') });
  vault.setSecret('expired', ssl.pkcs12(old, [root], { mode: 'legacy' }), { contentType: 'application/x-pkcs12' });
  const locked = ssl.leaf('locked', root, { serverAuth: false });
  vault.setSecret('password', ssl.pkcs12(locked, [root], { mode: 'modern', password: 'hunter2' }), { contentType: 'application/x-pkcs12' });
  vault.setSecret('keyless', pemSecret(locked.certPem, root.certPem), { contentType: 'application/x-pem-file' });
  vault.setSecret('garbage', 'bm90IGEgcGZ4', { contentType: 'application/x-pkcs12' });
  vault.setSecret('connection-string', 'Server=db;Password=not-for-logs', { contentType: 'text/plain' });
  const withdrawn = vault.setSecret('withdrawn', ssl.pkcs12(locked, [], { mode: 'modern' }), { contentType: 'application/x-pkcs12' });
  vault.setVersionEnabled('withdrawn', withdrawn, false);
  // The recorded Key Vault secret: self-signed with the server-auth EKU, trusted by nobody here.
  const recorded = loadSecretVector('secret-pkcs12-2022.json');
  vault.setSecret('recorded', recorded.value, { contentType: recorded.contentType });
});

after(async () => {
  await vault.close();
  await ssl.cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function substatusFor(names: string[], authenticationSettings: Record<string, string> = {}): Promise<SubStatus[]> {
  const parsed = parseSettings(
    {
      secretsManagementSettings: {
        requireInitialSync: false,
        observedCertificates: names.map((n) => ({ url: `${vault.vaultUrl}/secrets/${n}`, certificateStoreLocation: join(dir, 'store') })),
      },
      authenticationSettings: { msiEndpoint: vault.imdsEndpoint, ...authenticationSettings },
    },
    // requireInitialSync false (one report per cycle, no retries) is a 3.x setting; the chain rule under test is
    // the engine's default ('refuse'), passed in deps below, not the profile's.
    { platform: 'linux', env, profile: profileFor('3.0', 'linux', 'option') },
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const reader = createVaultReader({
    authentication: parsed.config.authentication,
    env,
    tlsCa: [vault.caCertPem],
    sleep: async () => undefined,
    identityRetry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
  const controller = new AbortController();
  const reports: HandlerStatusReport[] = [];
  await runPollLoop(
    parsed.config,
    {
      sync: { vault: reader, store: createPemStore({}), parse: parseCertificateSecret, checkChain: makeChainCheck([trustedRoot]), now: () => new Date(), log: silent },
      writeStatus: async (r) => {
        reports.push(r);
        if (reports.length >= 2) controller.abort();
      },
      isSuperseded: async () => false,
      sleep: async () => undefined,
      random: () => 0.5,
      retry: DEFAULT_RETRY_POLICY,
      concurrency: 4,
      jitter: false,
      initialJitterMs: 0,
    },
    controller.signal,
  );
  return reports.at(-1)?.substatus ?? [];
}

const CASES: Array<{ name: string; secret: string; auth?: Record<string, string>; status: 'error' | 'warning'; reason: string | RegExp; mention: RegExp }> = [
  { name: 'a server certificate chaining to an untrusted root', secret: 'untrusted', status: 'error', reason: 'chain-untrusted-root', mention: /root/i },
  { name: 'the recorded Key Vault self-signed server certificate', secret: 'recorded', status: 'error', reason: /chain-(untrusted-root|expired)/, mention: /trust|expired/i },
  { name: 'an expired server certificate', secret: 'expired', status: 'error', reason: 'chain-expired', mention: /expired/i },
  { name: 'a password-protected PFX', secret: 'password', status: 'error', reason: 'pkcs12-password', mention: /password/i },
  { name: 'a certificate whose key is not exportable (no private key in the secret)', secret: 'keyless', status: 'error', reason: 'no-private-key', mention: /exportable/i },
  { name: 'a corrupt PFX', secret: 'garbage', status: 'error', reason: /malformed-pkcs12|pkcs12-password/, mention: /PKCS#12|PFX/i },
  { name: 'a secret that is not a certificate', secret: 'connection-string', status: 'warning', reason: 'not-a-certificate', mention: /content type/i },
  { name: 'a secret whose only version is disabled', secret: 'withdrawn', status: 'error', reason: 'no-enabled-version', mention: /enabled/i },
  { name: 'a secret that does not exist', secret: 'no-such-secret', status: 'error', reason: 'secret-not-found', mention: /no-such-secret/ },
  {
    name: 'an msiClientId that is not an identity of this VM',
    secret: 'good',
    auth: { msiClientId: '00000000-1111-2222-3333-444444444444' },
    status: 'error',
    reason: 'identity-not-found',
    mention: /msiClientId/,
  },
  {
    name: 'an identity without access to the vault (RBAC)',
    secret: 'good',
    auth: { msiClientId: DENIED_ID },
    status: 'error',
    reason: 'forbidden',
    mention: /Key Vault Secrets User/,
  },
];

for (const c of CASES) {
  test(`status for ${c.name}: ${c.status}, reason and fix, other certificates unaffected`, async () => {
    if (c.auth?.msiClientId === DENIED_ID) vault.denyAccess(DENIED_ID, 'ForbiddenByRbac');
    const sub = await substatusFor([c.secret, 'good'], c.auth);
    const mine = sub.find((s) => s.name.endsWith(`/${c.secret}`));
    assert.ok(mine, JSON.stringify(sub));
    assert.equal(mine.status, c.status, mine.message);
    const reason = typeof c.reason === 'string' ? new RegExp(`\\b${c.reason}\\b`) : c.reason;
    assert.match(mine.message, reason);
    assert.match(mine.message, c.mention);
    if (c.status === 'error') assert.match(mine.message, /Fix: \S/);
    assert.doesNotMatch(mine.message, /not-for-logs|BEGIN PRIVATE KEY/);
    if (!c.auth) {
      const good = sub.find((s) => s.name.endsWith('/good'));
      assert.equal(good?.status, 'success', good?.message);
    }
  });
}
