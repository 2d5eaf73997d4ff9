/**
 * The catalogue of bad settings: every entry must be rejected with a stable reason at the right JSON path, and
 * the message must name the offending key or value and come with a fix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSettings } from '../handler/settings/parse.js';
import { auth, cert, GUID1, sms, URL1, URL2 } from './fixtures/settings/helpers.js';

interface BadCase {
  name: string;
  settings: unknown;
  platform?: 'linux' | 'win32';
  reason: string;
  path: string;
  /** Text the message must contain: the offending key or value. */
  mention: string;
}

const OC = '/secretsManagementSettings/observedCertificates';
const AUTH = '/authenticationSettings';

// The VMSS PowerShell 1.0 example from the Windows docs, placeholders filled: it has one "}" too many.
const DOC_VMSS_POWERSHELL_STRING = '{"secretsManagementSettings": \n{ "pollingIntervalInS": "' + '3600' +
  '", "certificateStoreName": "' + 'MY' + '", "certificateStoreLocation": "' + 'LocalMachine' +
  '", "observedCertificates": ["' + URL1 + '","' + URL2 + '"] } }, \n"authenticationSettings":\n{ "msiEndpoint": "' +
  'http://169.254.169.254/metadata/identity/oauth2/token' + '", "msiClientId" :"' + GUID1 + '"}}';

const CASES: BadCase[] = [
  // --- not settings at all
  { name: 'an array instead of an object', settings: [URL1], reason: 'settings-not-object', path: '', mention: 'array' },
  { name: 'a number instead of an object', settings: 42, reason: 'settings-not-object', path: '', mention: '42' },
  { name: 'a boolean instead of an object', settings: true, reason: 'settings-not-object', path: '', mention: 'boolean' },
  { name: 'null settings (empty settings file)', settings: null, reason: 'settings-empty', path: '', mention: 'no settings' },
  { name: 'an empty object', settings: {}, reason: 'settings-empty', path: '', mention: 'no settings' },
  { name: 'a string that is not JSON', settings: '{secretsManagementSettings: [', reason: 'settings-not-json', path: '', mention: 'not valid JSON' },
  { name: 'a JSON string holding an array', settings: JSON.stringify([URL1]), reason: 'settings-not-object', path: '', mention: 'array' },
  { name: 'the documented VMSS PowerShell string (unbalanced braces)', settings: DOC_VMSS_POWERSHELL_STRING, reason: 'settings-not-json', path: '', mention: 'not valid JSON' },
  // --- structure
  { name: 'secretsManagementSettings missing', settings: { authenticationSettings: { msiClientId: GUID1 } }, reason: 'missing-key', path: '/secretsManagementSettings', mention: 'secretsManagementSettings' },
  { name: 'secretsManagementSettings is a plain string', settings: { secretsManagementSettings: 'abc' }, reason: 'wrong-type', path: '/secretsManagementSettings', mention: '"abc"' },
  { name: 'observedCertificates missing', settings: { secretsManagementSettings: { pollingIntervalInS: '3600' } }, reason: 'missing-key', path: OC, mention: 'observedCertificates' },
  { name: 'observedCertificates is a single URL string', settings: sms(URL1), reason: 'wrong-type', path: OC, mention: URL1 },
  { name: 'observedCertificates is an object', settings: sms({ url: URL1 }), reason: 'wrong-type', path: OC, mention: 'observedCertificates' },
  { name: 'observedCertificates is empty', settings: sms([]), reason: 'nothing-to-observe', path: OC, mention: 'observedCertificates' },
  { name: 'observedCertificates mixes strings and objects', settings: sms([URL1, { url: URL2 }]), reason: 'mixed-observed-certificates', path: `${OC}/1`, mention: 'mixes' },
  { name: 'an observed entry is a number', settings: sms([42]), reason: 'wrong-type', path: `${OC}/0`, mention: '42' },
  { name: 'url is not a string', settings: sms([{ url: 123 }]), reason: 'wrong-type', path: `${OC}/0/url`, mention: 'url' },
  { name: 'url missing from a certificate object', settings: sms([{ certificateStoreName: 'MY' }]), reason: 'missing-key', path: `${OC}/0/url`, mention: 'url' },
  // --- URLs
  { name: 'http URL', settings: sms(['http://myvault.vault.azure.net/secrets/cert1']), reason: 'url-not-https', path: `${OC}/0`, mention: 'http' },
  { name: '/certificates/ URL (no private key)', settings: sms([{ url: 'https://myvault.vault.azure.net/certificates/cert1' }]), reason: 'url-certificates-path', path: `${OC}/0/url`, mention: '/certificates/' },
  { name: '/keys/ URL', settings: sms(['https://myvault.vault.azure.net/keys/k1']), reason: 'url-keys-path', path: `${OC}/0`, mention: '/keys/' },
  { name: 'URL without scheme', settings: sms(['myvault.vault.azure.net/secrets/cert1']), reason: 'url-no-scheme', path: `${OC}/0`, mention: 'hostname' },
  { name: 'URL with an empty host', settings: sms(['https:///secrets/cert1']), reason: 'url-no-host', path: `${OC}/0`, mention: 'hostname' },
  { name: 'doc placeholder <examplekv>', settings: sms([{ url: 'https://<examplekv>.vault.azure.net/secrets/certificate1' }]), reason: 'url-placeholder', path: `${OC}/0/url`, mention: '<examplekv>' },
  { name: 'doc placeholder prose', settings: sms(['<A Key Vault URI to the secret portion of the certificate>']), reason: 'url-placeholder', path: `${OC}/0`, mention: 'placeholder' },
  { name: 'unevaluated ARM expression', settings: sms(["[parameters('certificateUrl')]"]), reason: 'url-placeholder', path: `${OC}/0`, mention: 'parameters' },
  { name: 'host outside the Key Vault clouds', settings: sms(['https://certs.example.com/secrets/cert1']), reason: 'vault-host-not-allowed', path: `${OC}/0`, mention: 'certs.example.com' },
  { name: 'bare vault suffix without a vault name', settings: sms(['https://vault.azure.net/secrets/cert1']), reason: 'vault-host-not-allowed', path: `${OC}/0`, mention: 'vault.azure.net' },
  { name: 'secret name with an underscore', settings: sms(['https://myvault.vault.azure.net/secrets/my_cert']), reason: 'url-bad-secret-name', path: `${OC}/0`, mention: 'my_cert' },
  { name: 'version that is not 32 hex digits', settings: sms(['https://myvault.vault.azure.net/secrets/cert1/v2']), reason: 'url-bad-version', path: `${OC}/0`, mention: 'v2' },
  { name: 'extra path segments', settings: sms(['https://myvault.vault.azure.net/secrets/cert1/0123456789abcdef0123456789abcdef/x']), reason: 'url-bad-path', path: `${OC}/0`, mention: 'cert1' },
  { name: '/secrets/ without a name', settings: sms(['https://myvault.vault.azure.net/secrets/']), reason: 'url-missing-secret-name', path: `${OC}/0`, mention: '/secrets/' },
  { name: 'URL with a query string', settings: sms(['https://myvault.vault.azure.net/secrets/cert1?api-version=7.4']), reason: 'url-has-query', path: `${OC}/0`, mention: 'api-version' },
  // --- polling interval
  { name: 'polling interval not numeric', settings: sms([URL1], { pollingIntervalInS: 'hourly' }), reason: 'invalid-number', path: '/secretsManagementSettings/pollingIntervalInS', mention: 'hourly' },
  { name: 'polling interval zero', settings: sms([URL1], { pollingIntervalInS: '0' }), reason: 'polling-interval-not-positive', path: '/secretsManagementSettings/pollingIntervalInS', mention: '"0"' },
  { name: 'polling interval negative', settings: sms([URL1], { pollingIntervalInS: -5 }), reason: 'polling-interval-not-positive', path: '/secretsManagementSettings/pollingIntervalInS', mention: '-5' },
  { name: 'polling interval huge', settings: sms([URL1], { pollingIntervalInS: '99999999999999999999' }), reason: 'polling-interval-too-large', path: '/secretsManagementSettings/pollingIntervalInS', mention: '99999999999999999999' },
  { name: 'polling interval fractional', settings: sms([URL1], { pollingIntervalInS: 3600.5 }), reason: 'wrong-type', path: '/secretsManagementSettings/pollingIntervalInS', mention: '3600.5' },
  { name: 'polling interval boolean', settings: sms([URL1], { pollingIntervalInS: true }), reason: 'wrong-type', path: '/secretsManagementSettings/pollingIntervalInS', mention: 'pollingIntervalInS' },
  // --- booleans
  { name: 'requireInitialSync "yes"', settings: sms([URL1], { requireInitialSync: 'yes' }), reason: 'invalid-boolean', path: '/secretsManagementSettings/requireInitialSync', mention: '"yes"' },
  { name: 'linkOnRenewal 1', settings: sms([URL1], { linkOnRenewal: 1 }), reason: 'invalid-boolean', path: '/secretsManagementSettings/linkOnRenewal', mention: 'linkOnRenewal' },
  { name: 'keyExportable "no"', settings: cert({ keyExportable: 'no' }), reason: 'invalid-boolean', path: `${OC}/0/keyExportable`, mention: '"no"' },
  // --- authentication
  { name: 'msiClientId not a GUID', settings: auth({ msiClientId: 'my-identity' }), reason: 'invalid-guid', path: `${AUTH}/msiClientId`, mention: 'my-identity' },
  { name: 'msiClientId is a resource id', settings: auth({ msiClientId: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1' }), reason: 'invalid-guid', path: `${AUTH}/msiClientId`, mention: 'resource id' },
  { name: 'msiClientId placeholder', settings: auth({ msiClientId: '<msiClientId>' }), reason: 'auth-placeholder', path: `${AUTH}/msiClientId`, mention: '<msiClientId>' },
  { name: 'msiClientId a number', settings: auth({ msiClientId: 12345 }), reason: 'wrong-type', path: `${AUTH}/msiClientId`, mention: '12345' },
  { name: 'msiEndpoint without scheme', settings: auth({ msiEndpoint: '169.254.169.254/metadata/identity/oauth2/token' }), reason: 'msi-endpoint-no-scheme', path: `${AUTH}/msiEndpoint`, mention: 'hostname' },
  { name: 'msiEndpoint with an empty host', settings: auth({ msiEndpoint: 'http:///metadata/identity' }), reason: 'msi-endpoint-no-host', path: `${AUTH}/msiEndpoint`, mention: 'hostname' },
  { name: 'msiEndpoint not http', settings: auth({ msiEndpoint: 'ftp://169.254.169.254/x' }), reason: 'msi-endpoint-not-http', path: `${AUTH}/msiEndpoint`, mention: 'ftp' },
  { name: 'PaaS clientId without subject name', settings: auth({ clientId: GUID1 }), reason: 'paas-auth-incomplete', path: `${AUTH}/clientCertificateSubjectName`, mention: 'clientCertificateSubjectName' },
  { name: 'managed identity and PaaS app together', settings: auth({ msiClientId: GUID1, clientId: GUID1, clientCertificateSubjectName: 'boot' }), reason: 'auth-conflict', path: `${AUTH}/clientId`, mention: 'msiClientId' },
  // --- stores
  { name: 'store name not a string', settings: cert({ certificateStoreName: 5 }), reason: 'wrong-type', path: `${OC}/0/certificateStoreName`, mention: '5' },
  { name: 'store name empty', settings: cert({ certificateStoreName: '' }), reason: 'empty-value', path: `${OC}/0/certificateStoreName`, mention: 'certificateStoreName' },
  { name: 'Windows store location in the wrong case', platform: 'win32', settings: cert({ certificateStoreLocation: 'localmachine' }), reason: 'store-location-case', path: `${OC}/0/certificateStoreLocation`, mention: 'case-sensitive' },
  { name: '1.0 global store location in the wrong case', platform: 'win32', settings: sms([URL1], { certificateStoreLocation: 'currentuser' }), reason: 'store-location-case', path: '/secretsManagementSettings/certificateStoreLocation', mention: 'currentuser' },
  { name: 'Linux directory as a Windows store location', platform: 'win32', settings: cert({ certificateStoreLocation: '/var/lib/certs' }), reason: 'invalid-store-location', path: `${OC}/0/certificateStoreLocation`, mention: '/var/lib/certs' },
  { name: 'relative Linux store directory', platform: 'linux', settings: cert({ certificateStoreLocation: 'certs/app' }), reason: 'store-location-not-absolute', path: `${OC}/0/certificateStoreLocation`, mention: 'certs/app' },
  { name: 'Linux store directory with ..', platform: 'linux', settings: cert({ certificateStoreLocation: '/var/lib/../../etc' }), reason: 'store-location-not-absolute', path: `${OC}/0/certificateStoreLocation`, mention: '..' },
  { name: 'Linux store directory is /', platform: 'linux', settings: cert({ certificateStoreLocation: '/' }), reason: 'store-location-root', path: `${OC}/0/certificateStoreLocation`, mention: '"/"' },
  // --- accounts, acls, links
  { name: 'accounts is a string', settings: cert({ accounts: 'Network Service' }), reason: 'wrong-type', path: `${OC}/0/accounts`, mention: 'Network Service' },
  { name: 'accounts holds a number', settings: cert({ accounts: [1] }), reason: 'wrong-type', path: `${OC}/0/accounts/0`, mention: 'accounts[0] is 1' },
  { name: 'acls is an object', platform: 'linux', settings: cert({ acls: { user: 'app' } }), reason: 'wrong-type', path: `${OC}/0/acls`, mention: 'acls' },
  { name: 'acl entry without user or group', platform: 'linux', settings: cert({ acls: [{}] }), reason: 'empty-value', path: `${OC}/0/acls/0`, mention: '/acls/0' },
  { name: 'acl entry with an unknown key', platform: 'linux', settings: cert({ acls: [{ owner: 'app' }] }), reason: 'unknown-key', path: `${OC}/0/acls/0/owner`, mention: 'owner' },
  { name: 'acl user with shell metacharacters', platform: 'linux', settings: cert({ acls: [{ user: 'app; rm -rf /' }] }), reason: 'invalid-acl-name', path: `${OC}/0/acls/0/user`, mention: 'app; rm -rf /' },
  { name: 'acl group starting with a dash', platform: 'linux', settings: cert({ acls: [{ group: '-R' }] }), reason: 'invalid-acl-name', path: `${OC}/0/acls/0/group`, mention: '-R' },
  { name: 'customSymbolicLinkName with a slash', platform: 'linux', settings: cert({ customSymbolicLinkName: 'etc/passwd' }), reason: 'invalid-link-name', path: `${OC}/0/customSymbolicLinkName`, mention: 'etc/passwd' },
  { name: 'customSymbolicLinkName ..', platform: 'linux', settings: cert({ customSymbolicLinkName: '..' }), reason: 'invalid-link-name', path: `${OC}/0/customSymbolicLinkName`, mention: '".."' },
  { name: 'two certificates sharing one symlink', platform: 'linux', settings: sms([{ url: URL1, customSymbolicLinkName: 'app.pem' }, { url: URL2, customSymbolicLinkName: 'app.pem' }]), reason: 'duplicate-link-name', path: `${OC}/1`, mention: 'app.pem' },
  { name: 'the same certificate into the same store with different accounts', platform: 'win32', settings: sms([{ url: URL1, accounts: ['Network Service'] }, { url: URL1, accounts: ['Local Service'] }]), reason: 'duplicate-certificate', path: `${OC}/1`, mention: 'LocalMachine' },
  // --- unknown keys
  { name: 'pollingIntervalInSeconds typo', settings: sms([URL1], { pollingIntervalInSeconds: '3600' }), reason: 'unknown-key', path: '/secretsManagementSettings/pollingIntervalInSeconds', mention: 'pollingIntervalInS"' },
  { name: 'observedCertificate typo', settings: { secretsManagementSettings: { observedCertificate: [URL1], observedCertificates: [URL1] } }, reason: 'unknown-key', path: '/secretsManagementSettings/observedCertificate', mention: '"observedCertificates"' },
  { name: 'key in the wrong case', settings: sms([URL1], { RequireInitialSync: true }), reason: 'unknown-key', path: '/secretsManagementSettings/RequireInitialSync', mention: 'case-sensitive' },
  { name: 'certStoreLocation from the Linux docs', settings: cert({ certStoreLocation: '/var/lib/x' }), reason: 'unknown-key', path: `${OC}/0/certStoreLocation`, mention: 'certificateStoreLocation' },
  { name: 'msiClientId inside secretsManagementSettings', settings: sms([URL1], { msiClientId: GUID1 }), reason: 'misplaced-key', path: '/secretsManagementSettings/msiClientId', mention: '/authenticationSettings' },
  { name: 'observedCertificates at the top level', settings: { observedCertificates: [URL1], secretsManagementSettings: { observedCertificates: [URL1] } }, reason: 'misplaced-key', path: '/observedCertificates', mention: '/secretsManagementSettings' },
  { name: 'an unrelated top-level key', settings: { ...sms([URL1]), protectedSettingsCertThumbprint: 'F6AB' }, reason: 'unknown-key', path: '/protectedSettingsCertThumbprint', mention: 'protectedSettingsCertThumbprint' },
  { name: 'a typo in authenticationSettings', settings: auth({ msiClientID: GUID1 }), reason: 'unknown-key', path: `${AUTH}/msiClientID`, mention: '"msiClientId"' },
];

describe('bad settings are rejected with a reason, a path, a message naming the culprit, and a fix', () => {
  it('the catalogue holds at least 40 distinct cases', () => {
    assert.ok(CASES.length >= 40, `only ${CASES.length} cases`);
    assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length, 'case names must be unique');
  });
  for (const c of CASES) {
    it(c.name, () => {
      const result = parseSettings(c.settings, { platform: c.platform ?? 'linux', env: {} });
      assert.equal(result.ok, false, `expected rejection, got ${JSON.stringify(result)}`);
      if (result.ok) return;
      const hit = result.problems.find((p) => p.reason === c.reason && p.path === c.path);
      assert.ok(hit, `no problem ${c.reason} at ${JSON.stringify(c.path)}; got ${JSON.stringify(result.problems, null, 1)}`);
      assert.ok(hit.message.length > 0 && hit.fix.length > 0, 'message and fix must be non-empty');
      assert.ok(hit.message.includes(c.mention), `message ${JSON.stringify(hit.message)} should mention ${JSON.stringify(c.mention)}`);
    });
  }
});

describe('problem details that operators rely on', () => {
  it('a host outside the allowed clouds lists the allowed suffixes and the override variable', () => {
    const r = parseSettings(sms(['https://certs.example.com/secrets/cert1']), { platform: 'linux', env: {} });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.problems[0]?.message ?? '', /\.vault\.azure\.net/);
    assert.match(r.problems[0]?.fix ?? '', /KVVM_EXTRA_VAULT_SUFFIXES/);
  });
  it('a /certificates/ URL is answered with the same URL under /secrets/', () => {
    const r = parseSettings(sms(['https://myvault.vault.azure.net/certificates/web/0123456789abcdef0123456789abcdef']), { platform: 'linux', env: {} });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.problems[0]?.fix ?? '', /https:\/\/myvault\.vault\.azure\.net\/secrets\/web\/0123456789abcdef0123456789abcdef/);
  });
  it('a wrong-case store location names the right spelling in the fix', () => {
    const r = parseSettings(cert({ certificateStoreLocation: 'LOCALMACHINE' }), { platform: 'win32', env: {} });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.problems[0]?.fix ?? '', /"LocalMachine"/);
  });
  it('schema and logical problems are reported together in one pass', () => {
    const r = parseSettings(sms(['http://a.vault.azure.net/secrets/x', 'https://b.vault.azure.net/certificates/y'], { pollingIntervalInS: 'soon', linkOnRenewal: 'maybe' }), { platform: 'linux', env: {} });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.problems.map((p) => p.reason).sort(), ['invalid-boolean', 'invalid-number', 'url-certificates-path', 'url-not-https']);
  });
});
