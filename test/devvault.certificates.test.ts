/**
 * The dev vault's certificates API (handler/devvault/certificates.ts) without HTTP: what each bad request gets
 * (400 naming the field, nothing stored), and that every certificate version is a same-name secret version with
 * the policy's content type, as Key Vault does. The real SDK clients over HTTPS: devvault.clients.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { operateCertificate, type CertificateContext } from '../handler/devvault/certificates.js';
import { createCa, issueCertificate, toPemSecret, toPkcs12Base64 } from '../handler/devvault/certFactory.js';
import { SecretState } from '../handler/devvault/state.js';

const VAULT = 'https://kvvm.localhost:1';

function context(): CertificateContext {
  return { vaultUrl: VAULT, state: new SecretState(undefined, Date.now), now: Date.now, operations: new Map() };
}

function call(ctx: CertificateContext, method: 'import' | 'create', name: string, body: unknown): { status: number; body: Record<string, unknown> } {
  const r = operateCertificate(
    ctx,
    method === 'import' ? 'importCertificate' : 'createCertificate',
    ['certificates', name, method],
    new URL(`${VAULT}/certificates/${name}/${method}?api-version=7.4`),
    body,
  );
  return { status: r.status, body: r.body as Record<string, unknown> };
}

const leaf = issueCertificate({ subjectCn: 'web.test', serverAuth: false, issuer: createCa('certificates test CA') });

describe('dev vault certificates API', () => {
  const BAD_IMPORTS: Array<[string, unknown, RegExp]> = [
    ['no value', {}, /value is required/],
    ['an empty value', { value: '  ' }, /value is required/],
    ['a value that is a number', { value: 42 }, /value is required/],
    ['a pwd that is not a string', { value: toPkcs12Base64(leaf.keyPem, [leaf.certPem]), pwd: 1 }, /pwd must be a string/],
    ['base64 that is not a PFX', { value: Buffer.from('hello').toString('base64') }, /PFX content could not be read/],
    ['a PEM without a key', { value: leaf.certPem }, /PEM content could not be read/],
    ['a wrong password', { value: toPkcs12Base64(leaf.keyPem, [leaf.certPem]), pwd: 'nope' }, /PFX content could not be read/],
    [
      'an unknown content type',
      { value: toPkcs12Base64(leaf.keyPem, [leaf.certPem]), policy: { secret_props: { contentType: 'text/plain' } } },
      /policy\.secret_props\.contentType/,
    ],
  ];
  for (const [what, body, message] of BAD_IMPORTS) {
    it(`import refuses ${what} with 400 naming it, and stores nothing`, () => {
      const ctx = context();
      const r = call(ctx, 'import', 'web', body);
      assert.equal(r.status, 400);
      assert.match(String((r.body['error'] as { message: string }).message), message);
      assert.equal(ctx.state.versions('web'), undefined);
    });
  }

  const POLICY = { issuer: { name: 'Self' }, key_props: { kty: 'RSA', key_size: 2048 }, x509_props: { subject: 'CN=a.test', validity_months: 12 } };
  const BAD_CREATES: Array<[string, unknown, RegExp]> = [
    ['no policy', {}, /policy is required/],
    ['another issuer', { policy: { ...POLICY, issuer: { name: 'DigiCert' } } }, /policy\.issuer\.name/],
    ['an EC key', { policy: { ...POLICY, key_props: { kty: 'EC' } } }, /policy\.key_props\.kty/],
    ['a 1024-bit key', { policy: { ...POLICY, key_props: { kty: 'RSA', key_size: 1024 } } }, /policy\.key_props\.key_size/],
    ['a huge key', { policy: { ...POLICY, key_props: { kty: 'RSA', key_size: 65536 } } }, /policy\.key_props\.key_size/],
    ['a subject without CN', { policy: { ...POLICY, x509_props: { subject: 'O=x' } } }, /policy\.x509_props\.subject/],
    ['0 months', { policy: { ...POLICY, x509_props: { subject: 'CN=a', validity_months: 0 } } }, /validity_months/],
    ['1000 months', { policy: { ...POLICY, x509_props: { subject: 'CN=a', validity_months: 1000 } } }, /validity_months/],
    ['101 DNS names', { policy: { ...POLICY, x509_props: { subject: 'CN=a', sans: { dns_names: Array.from({ length: 101 }, (_, i) => `h${i}.test`) } } } }, /dns_names/],
    ['a pem content type spelled wrong', { policy: { ...POLICY, secret_props: { contentType: 'application/pem' } } }, /contentType/],
  ];
  for (const [what, body, message] of BAD_CREATES) {
    it(`create refuses ${what} with 400 naming the field, and stores nothing`, () => {
      const ctx = context();
      const r = call(ctx, 'create', 'gen', body);
      assert.equal(r.status, 400);
      assert.match(String((r.body['error'] as { message: string }).message), message);
      assert.equal(ctx.state.versions('gen'), undefined);
    });
  }

  it('an imported PEM becomes a managed PEM secret of the same name and version, its bundle ids pointing at it', () => {
    const ctx = context();
    const r = call(ctx, 'import', 'Web', { value: toPemSecret(leaf.keyPem, [leaf.certPem]) });
    assert.equal(r.status, 200);
    const secret = ctx.state.get('web');
    assert.equal(secret?.contentType, 'application/x-pem-file');
    assert.equal(secret?.managed, true);
    assert.equal(r.body['sid'], `${VAULT}/secrets/Web/${secret?.version}`);
    assert.equal(r.body['id'], `${VAULT}/certificates/Web/${secret?.version}`);
    assert.equal(r.body['cer'], leaf.cert.raw.toString('base64'));
    assert.equal((r.body['policy'] as { secret_props: { contentType: string } }).secret_props.contentType, 'application/x-pem-file');
  });

  it('a PFX imported with a PEM policy is stored as PEM, key first (Key Vault converts to the policy content type)', () => {
    const ctx = context();
    const r = call(ctx, 'import', 'web', { value: toPkcs12Base64(leaf.keyPem, [leaf.certPem]), policy: { secret_props: { contentType: 'application/x-pem-file' } } });
    assert.equal(r.status, 200);
    assert.match(ctx.state.get('web')?.value ?? '', /^-----BEGIN PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/);
  });

  it('create answers 202 with a pending operation that is inProgress, then completed', () => {
    const ctx = context();
    const r = call(ctx, 'create', 'gen', { policy: POLICY });
    assert.equal(r.status, 202);
    assert.equal(r.body['status'], 'inProgress');
    const poll = (): unknown =>
      (operateCertificate(ctx, 'getCertificateOperation', ['certificates', 'gen', 'pending'], new URL(`${VAULT}/x`), undefined).body as Record<string, unknown>)['status'];
    assert.equal(poll(), 'inProgress');
    assert.equal(poll(), 'completed');
    assert.equal(ctx.state.get('gen')?.contentType, 'application/x-pkcs12');
  });
});
