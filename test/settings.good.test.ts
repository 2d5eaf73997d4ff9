/**
 * Good settings: every documented example (placeholders filled) normalizes, and the defaults, generation
 * detection and warnings are what README/spec promise.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LINUX_STORE, linuxTarget, windowsTarget, type KvvmConfig } from '../handler/settings/config.js';
import { parseSettings, type SettingsResult } from '../handler/settings/parse.js';
import { profileFor } from '../handler/settings/profile.js';
import { formatProblems, formatWarnings, type SettingsProblem } from '../handler/settings/problems.js';
import { cert, fixture, GUID1, sms, URL1, URL2 } from './fixtures/settings/helpers.js';

function ok(result: SettingsResult): KvvmConfig {
  if (!result.ok) assert.fail(`expected valid settings, got ${JSON.stringify(result.problems, null, 1)}`);
  return result.config;
}
const linux = (raw: unknown, env: Record<string, string | undefined> = {}): KvvmConfig => ok(parseSettings(raw, { platform: 'linux', env }));
const win = (raw: unknown): KvvmConfig => ok(parseSettings(raw, { platform: 'win32', env: {} }));
/** Settings documented for a 3.x handler are checked under the 3.x profile, as the agent would run them. */
const linux3 = (raw: unknown): KvvmConfig => ok(parseSettings(raw, { platform: 'linux', env: {}, profile: profileFor('3.0', 'linux', 'option') }));
const win3 = (raw: unknown): KvvmConfig => ok(parseSettings(raw, { platform: 'win32', env: {}, profile: profileFor('3.0', 'win32', 'option') }));
const settingsOf = (armResource: Record<string, unknown>): unknown => (armResource['properties'] as Record<string, unknown>)['settings'];
const warned = (c: KvvmConfig, path: string, re: RegExp): boolean => c.warnings.some((w) => w.path === path && re.test(w.message));

describe('documented examples normalize (placeholders filled in)', () => {
  it('Windows 3.0 PowerShell/CLI settings.json', () => {
    const c = win3(fixture('win-3.0-powershell.json'));
    assert.equal(c.generation, '3.0'); // keyExportable and linkOnRenewal are 3.0-only keys
    assert.equal(c.observedCertificates.length, 2);
    assert.deepEqual(
      c.observedCertificates.map((x) => [x.secretName, windowsTarget(x).storeLocation, windowsTarget(x).keyExportable]),
      [
        ['certificate1', 'LocalMachine', false],
        ['certificate2', 'LocalMachine', true],
      ],
    );
    assert.deepEqual(windowsTarget(c.observedCertificates[1]!).accounts, ['Network Service', 'Local Service']);
    assert.deepEqual(c.authentication, { msiEndpoint: 'http://169.254.169.254/metadata/identity/oauth2/token', msiClientId: GUID1 });
    assert.deepEqual(c.warnings, []);
  });
  it('Windows 4.0 CLI settings.json (Azure China) is detected as 4.0', () => {
    const c = win(fixture('win-4.0-cli.json'));
    assert.equal(c.generation, '4.0');
    assert.equal(c.observedCertificates[0]?.vaultHost, 'examplekv.vault.azure.cn');
    assert.equal(c.initialSync, 'bounded');
    assert.equal(c.linkOnRenewal, true);
  });
  it('Windows 3.0 ARM resource, with keyExportable as the string "false" and a CurrentUser store', () => {
    const c = win3(settingsOf(fixture('arm-win-3.0.json')));
    assert.equal(c.generation, '3.0');
    assert.equal(c.initialSync, 'forever');
    assert.equal(windowsTarget(c.observedCertificates[1]!).storeLocation, 'CurrentUser');
    assert.equal(windowsTarget(c.observedCertificates[1]!).keyExportable, false);
  });
  it('Windows 1.0 ARM resource: global store settings apply to every URL', () => {
    const c = win(settingsOf(fixture('arm-win-1.0.json')));
    assert.equal(c.generation, '1.0');
    assert.deepEqual(
      c.observedCertificates.map((x) => `${windowsTarget(x).storeLocation}\\${windowsTarget(x).storeName}`),
      ['LocalMachine\\MY', 'LocalMachine\\MY'],
    );
  });
  it('Windows 4.0 ARM resource with a TrustedPeople store', () => {
    const c = win(settingsOf(fixture('arm-win-4.0.json')));
    assert.equal(c.generation, '4.0');
    assert.deepEqual(
      c.observedCertificates.map((x) => windowsTarget(x).storeName),
      ['MY', 'MY', 'TrustedPeople'],
    );
  });
  it('Cloud Services (PaaS) settings with clientId and clientCertificateSubjectName', () => {
    const c = win3(fixture('paas-1.0.json'));
    assert.equal(c.generation, '1.0');
    assert.equal(c.initialSync, 'none');
    assert.equal(c.linkOnRenewal, false);
    assert.equal(windowsTarget(c.observedCertificates[0]!).storeName, 'My');
    assert.deepEqual(c.authentication, { clientId: '8f3a1c52-0b7e-4d7a-9c11-2f6b3e4d5a60', clientCertificateSubjectName: 'bootstrap.contoso.com' });
  });
  it('the minimal settings from the announcement blog', () => {
    const c = win(fixture('blog-minimal.json'));
    assert.equal(c.generation, '1.0');
    assert.equal(c.pollingIntervalS, 3600);
  });
  it('Linux 3.0 settings with acls, customSymbolicLinkName and loggingSettings', () => {
    const c = linux(fixture('linux-3.0.json'));
    assert.equal(c.generation, '3.0');
    assert.deepEqual(
      c.observedCertificates.map((x) => linuxTarget(x).linkName),
      ['myvault.mycertificate1', 'mycert2'],
    );
    assert.deepEqual(linuxTarget(c.observedCertificates[0]!).acls, [{ user: 'app1', group: 'appgroup1' }, { user: 'service1' }]);
    assert.deepEqual(linuxTarget(c.observedCertificates[1]!).acls, [{ user: 'app2', group: 'appgroup2' }, { group: 'appgroup3' }]);
    assert.deepEqual(c.logging, {
      logger: 'fluentd',
      format: 'forward',
      endpoint: 'unix:///var/run/mdsd/default_fluent.socket',
      target: { kind: 'unix', path: '/var/run/mdsd/default_fluent.socket' },
      serviceName: 'akvvm_service',
    });
    assert.ok(!c.warnings.some((w) => w.path.startsWith('/loggingSettings')));
  });
  it('loggingSettings: the documented tcp endpoint, defaults for the rest, ignored with a warning on Windows', () => {
    const settings = { ...sms([{ url: URL1 }]), loggingSettings: { logger: 'fluentd', endpoint: 'tcp://localhost:24224' } };
    assert.deepEqual(linux(settings).logging, {
      logger: 'fluentd',
      format: 'forward',
      endpoint: 'tcp://localhost:24224',
      target: { kind: 'tcp', host: 'localhost', port: 24224 },
      serviceName: 'akvvm_service',
    });
    const w = win(settings);
    assert.equal(w.logging, undefined);
    assert.ok(warned(w, '/loggingSettings', /ignored on Windows/));
  });
  it('the Windows 1.0 PowerShell -SettingString example (a JSON string) is decoded with a warning', () => {
    // Built exactly as the documented PowerShell concatenation does, placeholders filled in.
    const s =
      '{"secretsManagementSettings": \n{ "pollingIntervalInS": "' +
      '3600' +
      '", "certificateStoreName": "' +
      'MY' +
      '", "certificateStoreLocation": "' +
      'LocalMachine' +
      '", "observedCertificates": ["' +
      URL1 +
      '","' +
      URL2 +
      '"] }, \n"authenticationSettings":\n{ "msiEndpoint": "' +
      'http://169.254.169.254/metadata/identity/oauth2/token' +
      '", "msiClientId" :"' +
      GUID1 +
      '"}}';
    const c = win(s);
    assert.equal(c.observedCertificates.length, 2);
    assert.ok(warned(c, '', /hashtable/));
  });
  it('the Windows 1.0 CLI example (escaped quotes, " <cert> " with spaces) is accepted with warnings', () => {
    const s =
      '{\\"secretsManagementSettings\\": { \\"pollingIntervalInS\\": \\"3600\\", \\"certificateStoreName\\": \\"MY\\",    \\"certificateStoreLocation\\": \\"LocalMachine\\", ' +
      `\\"observedCertificates\\": [\\" ${URL1} \\", \\" ${URL2} \\"] }, \\"authenticationSettings\\": { \\"msiEndpoint\\": \\"http://169.254.169.254/metadata/identity/oauth2/token\\", \\"msiClientId\\": \\"${GUID1}\\"}}`;
    const c = win(s);
    assert.deepEqual(
      c.observedCertificates.map((x) => x.secretName),
      ['cert1', 'cert2'],
    );
    assert.ok(warned(c, '', /backslash-escaped quotes/));
    assert.ok(warned(c, '/secretsManagementSettings/observedCertificates/0', /whitespace/));
  });
});

describe('requireInitialSync maps to the initial-sync mode of the profile', () => {
  const withSync = (v: unknown): unknown => sms([URL1], v === undefined ? {} : { requireInitialSync: v }, { authenticationSettings: { msiClientId: GUID1 } });
  const rows: Array<[string, (raw: unknown) => KvvmConfig, unknown, string]> = [
    ['3.x Windows, absent → none (success once polling starts)', win3, undefined, 'none'],
    ['3.x Windows, true → forever', win3, true, 'forever'],
    ['3.x Windows, "false" → none', win3, 'false', 'none'],
    ['3.x Linux, absent → none', linux3, undefined, 'none'],
    ['3.x Linux, true → bounded (25 attempts, then error)', linux3, true, 'bounded'],
    ['3.x Linux, false → none', linux3, false, 'none'],
    ['4.x, absent → bounded', linux, undefined, 'bounded'],
    ['4.x, true → bounded, with a warning that 4.0 removed it', win, true, 'bounded'],
  ];
  for (const [name, parse, value, mode] of rows) it(name, () => assert.equal(parse(withSync(value)).initialSync, mode));
  it('4.x: true is reported as removed in 4.0', () => assert.ok(warned(win(withSync(true)), '/secretsManagementSettings/requireInitialSync', /removed in 4\.0/)));
  it('true with the system-assigned identity warns about the documented deadlock', () => {
    const c = linux(sms([URL1], { requireInitialSync: 'True' }));
    assert.ok(warned(c, '/secretsManagementSettings/requireInitialSync', /deadlock/));
  });
});

describe('polling interval', () => {
  it('defaults to 3600 s', () => assert.equal(linux(sms([URL1])).pollingIntervalS, 3600));
  it('accepts a number or a string', () => {
    assert.equal(linux(sms([URL1], { pollingIntervalInS: 600 })).pollingIntervalS, 600);
    assert.equal(linux(sms([URL1], { pollingIntervalInS: ' 900 ' })).pollingIntervalS, 900);
  });
  it('below 300 s is raised to 300 with a warning naming both values', () => {
    const c = linux(sms([URL1], { pollingIntervalInS: '60' }));
    assert.equal(c.pollingIntervalS, 300);
    assert.ok(warned(c, '/secretsManagementSettings/pollingIntervalInS', /60.*300/));
  });
  it('above 3600 s is lowered to 3600 with a warning naming both values', () => {
    const c = linux(sms([URL1], { pollingIntervalInS: 86400 }));
    assert.equal(c.pollingIntervalS, 3600);
    assert.ok(warned(c, '/secretsManagementSettings/pollingIntervalInS', /86400.*3600/));
  });
});

describe('defaults per platform', () => {
  it('Linux: default store directory, link <vault>.<secret>, no acls, no Windows-only fields', () => {
    const c = linux(sms([URL1]));
    assert.deepEqual(c.observedCertificates[0], {
      sourceUrl: URL1,
      vaultUrl: 'https://myvault.vault.azure.net',
      vaultHost: 'myvault.vault.azure.net',
      vaultName: 'myvault',
      secretName: 'cert1',
      target: { platform: 'linux', directory: DEFAULT_LINUX_STORE, linkName: 'myvault.cert1', acls: [] },
    });
    assert.equal(c.linkOnRenewal, true);
    assert.deepEqual(c.authentication, {});
  });
  it('Windows: LocalMachine\\MY, not exportable, no accounts', () => {
    const c = win(cert({}));
    const o = windowsTarget(c.observedCertificates[0]!);
    assert.deepEqual([o.storeLocation, o.storeName, o.keyExportable, o.accounts], ['LocalMachine', 'MY', false, []]);
  });
  it('Linux: a Windows store location falls back to the default directory with a warning', () => {
    const c = linux3(fixture('win-3.0-powershell.json'));
    assert.equal(linuxTarget(c.observedCertificates[0]!).directory, DEFAULT_LINUX_STORE);
    assert.ok(warned(c, '/secretsManagementSettings/observedCertificates/0/certificateStoreLocation', /Windows store location/));
    assert.ok(warned(c, '/secretsManagementSettings/observedCertificates/0/accounts', /ignored on Linux/));
  });
  it('Linux: a custom store directory is normalized (trailing slash removed)', () => {
    assert.equal(linuxTarget(linux(cert({ certificateStoreLocation: '/etc/ssl/kv/' })).observedCertificates[0]!).directory, '/etc/ssl/kv');
  });
  it('Linux: aclEnabled false drops the acls with a warning', () => {
    const c = linux(cert({ acls: [{ user: 'app' }] }, { aclEnabled: false }));
    assert.deepEqual(linuxTarget(c.observedCertificates[0]!).acls, []);
    assert.ok(c.warnings.some((w) => /aclEnabled/.test(w.message)));
  });
});

describe('generation detection', () => {
  it('string URLs → 1.0; objects without 3.0-only keys → 4.0; with one → 3.0', () => {
    assert.equal(linux(sms([URL1])).generation, '1.0');
    assert.equal(linux(cert({})).generation, '4.0');
    assert.equal(linux3(cert({ keyExportable: false })).generation, '3.0');
    assert.equal(linux3(cert({}, { linkOnRenewal: false })).generation, '3.0');
  });
});

describe('unknown keys: near misses are errors, anything else is ignored with a warning', () => {
  it('an unrelated key at any level is ignored with a warning naming it, and the rest is used', () => {
    const c = linux({ ...sms([{ url: URL1, futureOption: 1 }], { newerSetting: true }), protectedSettingsCertThumbprint: 'F6AB' });
    assert.equal(c.observedCertificates.length, 1);
    assert.ok(warned(c, '/protectedSettingsCertThumbprint', /ignored/));
    assert.ok(warned(c, '/secretsManagementSettings/newerSetting', /ignored/));
    assert.ok(warned(c, '/secretsManagementSettings/observedCertificates/0/futureOption', /ignored/));
    assert.equal(c.generation, '4.0');
  });
  it('a near miss next to an ignored key is still an error with the suggestion', () => {
    const r = parseSettings(sms([URL1], { pollingIntervalInSec: '3600', somethingElse: 1 }), { platform: 'linux', env: {} });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(
      r.problems.map((p) => [p.path, p.reason]),
      [['/secretsManagementSettings/pollingIntervalInSec', 'unknown-key']],
    );
    assert.match(r.problems[0]?.message ?? '', /did you mean "pollingIntervalInS"/);
  });
});

describe('URLs and identities that are tolerated', () => {
  it('a /certificates/ URL is read through the /secrets/ URL of the same name and version, with a warning', () => {
    const c = linux3(
      sms([{ url: 'https://myvault.vault.azure.net/certificates/web/0123456789abcdef0123456789abcdef' }, { url: 'https://myvault.vault.azure.net/certificates/api' }]),
    );
    assert.deepEqual(
      c.observedCertificates.map((o) => [o.secretName, o.pinnedVersion]),
      [
        ['web', '0123456789abcdef0123456789abcdef'],
        ['api', undefined],
      ],
    );
    assert.ok(warned(c, '/secretsManagementSettings/observedCertificates/1/url', /https:\/\/myvault\.vault\.azure\.net\/secrets\/api/));
  });
  it('a version-pinned URL is accepted as a pin, with a warning that renewals are not followed', () => {
    const c = linux3(sms(['https://myvault.vault.azure.net/secrets/cert1/0123456789ABCDEF0123456789abcdef']));
    assert.equal(c.observedCertificates[0]?.pinnedVersion, '0123456789abcdef0123456789abcdef');
    assert.ok(warned(c, '/secretsManagementSettings/observedCertificates/0', /pinned/));
  });
  it('a trailing slash and an upper-case host are fine', () => {
    const o = linux(sms(['https://MyVault.Vault.Azure.NET/secrets/cert1/'])).observedCertificates[0];
    assert.deepEqual([o?.vaultUrl, o?.secretName], ['https://myvault.vault.azure.net', 'cert1']);
  });
  it('an exact duplicate entry is dropped with a warning', () => {
    const c = linux(sms([URL1, URL1]));
    assert.equal(c.observedCertificates.length, 1);
    assert.ok(warned(c, '/secretsManagementSettings/observedCertificates/1', /repeats entry 0/));
  });
  it('the same certificate into two Windows stores is two entries', () => {
    assert.equal(win(sms([{ url: URL1 }, { url: URL1, certificateStoreName: 'TrustedPeople' }])).observedCertificates.length, 2);
  });
  it('a private-cloud vault host is allowed through KVVM_EXTRA_VAULT_SUFFIXES', () => {
    const c = linux(sms(['https://kv1.vault.local.azurestack.external/secrets/web']), { KVVM_EXTRA_VAULT_SUFFIXES: '.vault.local.azurestack.external' });
    assert.equal(c.observedCertificates[0]?.vaultName, 'kv1');
  });
  it('msiClientId without msiEndpoint uses the default endpoint, with a warning', () => {
    const c = linux(sms([URL1], {}, { authenticationSettings: { msiClientId: GUID1.toUpperCase() } }));
    assert.deepEqual(c.authentication, { msiClientId: GUID1 });
    assert.ok(warned(c, '/authenticationSettings/msiEndpoint', /169\.254\.169\.254/));
  });
  it('an empty msiClientId (template parameter default "") counts as not set', () => {
    const c = linux(sms([URL1], {}, { authenticationSettings: { msiClientId: '', msiEndpoint: '' } }));
    assert.deepEqual(c.authentication, {});
    assert.ok(warned(c, '/authenticationSettings/msiClientId', /empty/));
  });
  it('the Arc msiEndpoint is accepted', () => {
    assert.equal(
      linux(sms([URL1], {}, { authenticationSettings: { msiEndpoint: 'http://localhost:40342/metadata/identity' } })).authentication.msiEndpoint,
      'http://localhost:40342/metadata/identity',
    );
  });
  it('clientCertificateSubjectName with CN= is stripped with a warning', () => {
    const c = win(sms([URL1], {}, { authenticationSettings: { clientId: GUID1, clientCertificateSubjectName: 'CN=boot.contoso.com' } }));
    assert.equal(c.authentication.clientCertificateSubjectName, 'boot.contoso.com');
  });
  it('a "$schema" key for editors is accepted and ignored', () => {
    assert.equal(linux({ $schema: '../schemas/settings.schema.json', ...sms([URL1]) }).observedCertificates.length, 1);
  });
});

describe('double-encoded settings (PowerShell)', () => {
  it('settings encoded twice are decoded, with a warning explaining the hashtable fix', () => {
    const c = linux(JSON.stringify(JSON.stringify(sms([URL1]))));
    assert.equal(c.observedCertificates[0]?.secretName, 'cert1');
    assert.ok(warned(c, '', /-Settings/));
  });
  it('a secretsManagementSettings value that is a JSON string is decoded too', () => {
    const c = linux({ secretsManagementSettings: JSON.stringify({ observedCertificates: [URL1] }) });
    assert.ok(warned(c, '/secretsManagementSettings', /JSON-encoded string/));
  });
});

describe('formatProblems', () => {
  const many: SettingsProblem[] = Array.from({ length: 60 }, (_, i) => ({
    path: `/secretsManagementSettings/observedCertificates/${i}`,
    reason: 'url-not-https',
    message: `The URL number ${i} uses http.`,
    fix: 'Use https.',
  }));
  it('fits a status message (under 1024 characters) and says how many were left out', () => {
    const text = formatProblems(many);
    assert.ok(text.length < 1024, `${text.length} characters`);
    assert.match(text, /^60 settings problems:/);
    assert.match(text, /\(and \d+ more; run "kvvm validate"/);
    assert.match(text, /\/secretsManagementSettings\/observedCertificates\/0: The URL number 0 uses http\. Fix: Use https\./);
  });
  it('always shows the first problem even when it alone is too long', () => {
    const long: SettingsProblem[] = [{ path: '/x', reason: 'invalid-value', message: 'm'.repeat(3000), fix: 'f' }];
    const text = formatProblems(long);
    assert.ok(text.length <= 1000);
    assert.match(text, /\/x: mmm/);
  });
  it('lists every problem when they fit', () => {
    const r = parseSettings(sms(['http://a.vault.azure.net/secrets/x'], { requireInitialSync: 'yes' }), { platform: 'linux', env: {} });
    assert.equal(r.ok, false);
    if (r.ok) return;
    const lines = formatProblems(r.problems).split('\n');
    assert.equal(lines.length, 3);
    assert.ok(lines.slice(1).every((l) => / Fix: /.test(l)));
  });
});

describe('formatWarnings', () => {
  it('keeps warnings within the status budget and counts the rest', () => {
    const warnings = Array.from({ length: 40 }, (_, i) => ({ path: `/p/${i}`, message: `warning number ${i} `.repeat(3) }));
    const text = formatWarnings(warnings);
    assert.ok(text.length <= 1000, `${text.length}`);
    assert.match(text, /^\/p\/0: warning number 0/);
    assert.match(text, /\(and \d+ more warnings\)$/);
  });
});
