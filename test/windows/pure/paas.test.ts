import assert from 'node:assert/strict';
import { createHash, createPrivateKey, sign as rsaSign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createCa, issueCertificate, type IssuedCertificate } from '../../../handler/devvault/certFactory.js';
import { KvvmError } from '../../../handler/errors.js';
import {
  capiAesProviderArgs,
  capiKeySpecsToTry,
  capiSignArgs,
  capiSignatureToBigEndian,
  chooseBootstrapCertificate,
  ncryptSignArgs,
  SIGN_ACQUIRE_FLAGS,
  subjectFindArgs,
} from '../../../handler/platform/win32/bootstrapKey.js';
import { assertionAudience, clientAssertion, unsignedClientAssertion } from '../../../handler/vault/paasAssertion.js';
import { PaasCredential, type AssertionSigner } from '../../../handler/vault/paasCredential.js';
import { transportFor } from '../../../handler/vault/transport.js';

/**
 * The PaaS variant (clientId + clientCertificateSubjectName): the client assertion checked claim by claim and its
 * signature verified with node:crypto, the exact crypt32/ncrypt arguments for LocalMachine\My (Wine cannot acquire
 * LocalMachine keys), and a full token request through @azure/identity against a loopback token endpoint.
 */
const CLIENT_ID = '3c1a6a5e-2b7f-4f0e-9d1c-5a8b7e6f4d21';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

function decodeJwt(jwt: string): { header: Record<string, unknown>; claims: Record<string, unknown>; signingInput: string; signature: Buffer } {
  const [h, c, s] = jwt.split('.');
  assert.ok(h && c && s !== undefined && jwt.split('.').length === 3, jwt);
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown>,
    signingInput: `${h}.${c}`,
    signature: Buffer.from(s, 'base64url'),
  };
}

describe('PaaS client assertion (JWT RS256)', () => {
  const cert: IssuedCertificate = issueCertificate({ subjectCn: 'kvvm-bootstrap.cloudapp.net', serverAuth: false });
  const key: KeyObject = createPrivateKey(cert.keyPem);
  const der = cert.cert.raw;
  const nowMs = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
  const input = {
    clientId: CLIENT_ID,
    tenantId: TENANT,
    authorityHost: 'https://login.microsoftonline.com/',
    certificateDer: der,
    nowMs,
    jti: '0b7f7c52-52b2-4d0b-a9a4-1b8d0d3f3c11',
  };

  it('has the header and the claims Entra ID checks, field by field', () => {
    const jwt = clientAssertion(input, (data) => rsaSign('sha256', data, key));
    const { header, claims } = decodeJwt(jwt);
    assert.deepEqual(header, { alg: 'RS256', typ: 'JWT', x5t: createHash('sha1').update(der).digest('base64url') });
    assert.equal(header['x5t'], Buffer.from(cert.cert.fingerprint.replace(/:/g, ''), 'hex').toString('base64url'));
    assert.deepEqual(claims, {
      aud: `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`,
      iss: CLIENT_ID,
      sub: CLIENT_ID,
      jti: input.jti,
      nbf: Math.floor(nowMs / 1000),
      exp: Math.floor(nowMs / 1000) + 600,
    });
    assert.doesNotMatch(jwt, /[+/=]/, 'base64url without padding');
  });

  it("is signed over base64url(header).base64url(claims); the signature verifies with the certificate's public key", () => {
    let signed: Buffer | undefined;
    const jwt = clientAssertion(input, (data) => ((signed = data), rsaSign('sha256', data, key)));
    const parts = decodeJwt(jwt);
    assert.equal(signed?.toString('ascii'), parts.signingInput);
    assert.equal(verify('sha256', Buffer.from(parts.signingInput), new X509Certificate(der).publicKey, parts.signature), true);
    const other = issueCertificate({ subjectCn: 'other', serverAuth: false });
    assert.equal(verify('sha256', Buffer.from(parts.signingInput), other.cert.publicKey, parts.signature), false);
  });

  it('the audience follows the authority host (sovereign clouds, AZURE_AUTHORITY_HOST)', () => {
    assert.equal(assertionAudience('https://login.chinacloudapi.cn', 'contoso.onmicrosoft.com'), 'https://login.chinacloudapi.cn/contoso.onmicrosoft.com/oauth2/v2.0/token');
    const cred = new PaasCredential({
      clientId: CLIENT_ID,
      env: { AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us/' },
      signer: () => ({ der, sign: (d) => rsaSign('sha256', d, key) }),
      now: () => nowMs,
    });
    const { claims, header } = decodeJwt(cred.assertionFor(TENANT));
    assert.equal(claims['aud'], `https://login.microsoftonline.us/${TENANT}/oauth2/v2.0/token`);
    assert.equal(header['x5t'], unsignedClientAssertion(input).header.x5t);
    assert.notEqual(decodeJwt(cred.assertionFor(TENANT)).claims['jti'], claims['jti'], 'a fresh jti for every assertion');
  });

  it('a CAPI signature (little-endian) is reversed into the JWS byte order', () => {
    const data = Buffer.from('header.claims');
    const bigEndian = rsaSign('sha256', data, key);
    const capi = Buffer.from(bigEndian).reverse();
    assert.deepEqual(capiSignatureToBigEndian(capi), bigEndian);
    assert.equal(verify('sha256', data, cert.cert.publicKey, capiSignatureToBigEndian(capi)), true);
    assert.equal(verify('sha256', data, cert.cert.publicKey, capi), false);
  });

  it('asking for a token without the tenant the vault challenge names is refused with a reason', async () => {
    const cred = new PaasCredential({
      clientId: CLIENT_ID,
      env: {},
      signer: () => {
        throw new Error('not reached');
      },
    });
    await assert.rejects(cred.getToken('https://vault.azure.net/.default'), (e: unknown) => e instanceof KvvmError && e.reason === 'paas-no-tenant');
  });
});

describe('PaaS bootstrap certificate: crypt32 / ncrypt arguments (LocalMachine\\My; Wine cannot acquire LocalMachine keys)', () => {
  it('looks the subject up read-only in the existing LocalMachine\\My with CERT_FIND_SUBJECT_STR_W', () => {
    assert.deepEqual(subjectFindArgs('kvvm-bootstrap.cloudapp.net'), {
      storeName: 'My',
      openFlags: 0x20000 | 0x4000 | 0x8000, // CERT_SYSTEM_STORE_LOCAL_MACHINE | OPEN_EXISTING | READONLY
      encoding: 0x1 | 0x10000, // X509_ASN_ENCODING | PKCS_7_ASN_ENCODING
      findFlags: 0,
      findType: 0x80007, // CERT_COMPARE_NAME_STR_W << 16 | CERT_INFO_SUBJECT_FLAG
      subject: 'kvvm-bootstrap.cloudapp.net',
    });
  });
  it('acquires the key silently, as an NCRYPT handle whenever Windows can give one', () => {
    assert.equal(SIGN_ACQUIRE_FLAGS, 0x40 | 0x20000); // CRYPT_ACQUIRE_SILENT_FLAG | CRYPT_ACQUIRE_PREFER_NCRYPT_KEY_FLAG
  });
  it('NCryptSignHash: PKCS#1 v1.5 padding naming SHA256, the SHA-256 digest of the signing input, silent', () => {
    const args = ncryptSignArgs(Buffer.from('a.b'));
    assert.deepEqual(args.padding, { pszAlgId: 'SHA256' });
    assert.deepEqual(args.hash, createHash('sha256').update('a.b').digest());
    assert.equal(args.flags, 0x2 | 0x40); // BCRYPT_PAD_PKCS1 | NCRYPT_SILENT_FLAG
  });
  it('CAPI: CALG_SHA_256 with HP_HASHVAL; a provider without SHA-256 is replaced by the RSA+AES provider on the same container', () => {
    const args = capiSignArgs(Buffer.from('a.b'));
    assert.equal(args.alg, 0x800c);
    assert.equal(args.param, 0x2);
    assert.deepEqual(args.hash, createHash('sha256').update('a.b').digest());
    assert.deepEqual(capiAesProviderArgs('te-1234', 0x20), {
      container: 'te-1234',
      provider: 'Microsoft Enhanced RSA and AES Cryptographic Provider',
      provType: 24,
      flags: 0x20 | 0x40,
    });
    assert.deepEqual(capiAesProviderArgs('te-1234', 0x1), { container: 'te-1234', provider: 'Microsoft Enhanced RSA and AES Cryptographic Provider', provType: 24, flags: 0x40 });
  });
  it('CryptSignHash tries the key spec Windows named, then the other slot (Wine answers 3, neither)', () => {
    assert.deepEqual(capiKeySpecsToTry(1), [1, 2]); // AT_KEYEXCHANGE first
    assert.deepEqual(capiKeySpecsToTry(2), [2, 1]);
    assert.deepEqual(capiKeySpecsToTry(3), [1, 2]);
  });
  it('of several matches, the newest one valid now with a private key is used', () => {
    const d = (s: string): Date => new Date(s);
    const now = d('2025-06-01T00:00:00Z');
    const c = (thumbprint: string, from: string, to: string, hasPrivateKey = true) => ({ thumbprint, subject: 'CN=x', notBefore: d(from), notAfter: d(to), hasPrivateKey });
    const old = c('OLD', '2024-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
    const newer = c('NEW', '2025-05-01T00:00:00Z', '2026-05-01T00:00:00Z');
    const future = c('FUTURE', '2025-07-01T00:00:00Z', '2027-01-01T00:00:00Z');
    const expired = c('EXPIRED', '2025-05-15T00:00:00Z', '2025-05-31T00:00:00Z');
    const keyless = c('KEYLESS', '2025-05-20T00:00:00Z', '2027-01-01T00:00:00Z', false);
    assert.equal(chooseBootstrapCertificate([old, newer, future, expired, keyless], now)?.thumbprint, 'NEW');
    assert.equal(chooseBootstrapCertificate([old, future, expired, keyless], now)?.thumbprint, 'OLD');
    assert.equal(chooseBootstrapCertificate([future, expired, keyless], now), undefined);
  });
});

describe('PaaS credential: a token request through @azure/identity against a loopback token endpoint', () => {
  const ca = createCa('kvvm paas test ca');
  const tls = issueCertificate({ issuer: ca, subjectCn: 'localhost', dnsNames: ['localhost'] });
  const app = issueCertificate({ subjectCn: 'kvvm-bootstrap.cloudapp.net', serverAuth: false });
  const appKey = createPrivateKey(app.keyPem);
  let server: Server;
  let host = '';
  const assertions: Array<{ claims: Record<string, unknown>; verified: boolean; form: URLSearchParams }> = [];

  before(async () => {
    server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
      let body = '';
      req
        .setEncoding('utf8')
        .on('data', (c: string) => (body += c))
        .on('end', () => {
          const url = new URL(req.url ?? '/', host);
          const [, tenant, ...rest] = url.pathname.split('/');
          const json = (status: number, value: unknown): void => {
            res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(value));
          };
          if (rest.join('/') === 'v2.0/.well-known/openid-configuration') {
            json(200, {
              token_endpoint: `${host}/${tenant}/oauth2/v2.0/token`,
              authorization_endpoint: `${host}/${tenant}/oauth2/v2.0/authorize`,
              end_session_endpoint: `${host}/${tenant}/oauth2/v2.0/logout`,
              issuer: `${host}/${tenant}/v2.0`,
              jwks_uri: `${host}/${tenant}/discovery/v2.0/keys`,
            });
            return;
          }
          if (req.method === 'POST' && rest.join('/') === 'oauth2/v2.0/token') {
            const form = new URLSearchParams(body);
            const jwt = decodeJwt(form.get('client_assertion') ?? '..');
            const verified = verify('sha256', Buffer.from(jwt.signingInput), app.cert.publicKey, jwt.signature);
            assertions.push({ claims: jwt.claims, verified, form });
            if (!verified || jwt.claims['aud'] !== `${host}/${tenant}/oauth2/v2.0/token`) {
              json(401, { error: 'invalid_client', error_description: 'AADSTS700027: Client assertion contains an invalid signature.' });
              return;
            }
            json(200, { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, access_token: `token-for-${tenant}` });
            return;
          }
          json(404, { error: 'not_found' });
        });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    host = `https://localhost:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const credential = (signer: () => AssertionSigner): PaasCredential =>
    new PaasCredential({
      clientId: CLIENT_ID,
      env: {},
      authorityHost: host,
      disableInstanceDiscovery: true,
      signer,
      transport: transportFor('localhost', [ca.certPem]),
    });

  it('gets a token for the tenant the vault named, with an assertion the endpoint verifies', async () => {
    const token = await credential(() => ({ der: app.cert.raw, sign: (d) => rsaSign('sha256', d, appKey) })).getToken('https://vault.azure.net/.default', { tenantId: TENANT });
    assert.equal(token?.token, `token-for-${TENANT}`);
    const last = assertions.at(-1);
    assert.equal(last?.verified, true);
    assert.equal(last?.claims['iss'], CLIENT_ID);
    assert.equal(last?.form.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    assert.equal(last?.form.get('client_id'), CLIENT_ID);
    assert.equal(last?.form.get('grant_type'), 'client_credentials');
  });

  it('a certificate the application does not know is refused as paas-authentication', async () => {
    const stranger = issueCertificate({ subjectCn: 'stranger', serverAuth: false });
    const key = createPrivateKey(stranger.keyPem);
    await assert.rejects(
      credential(() => ({ der: app.cert.raw, sign: (d) => rsaSign('sha256', d, key) })).getToken('https://vault.azure.net/.default', { tenantId: 'contoso.onmicrosoft.com' }),
      (e: unknown) => e instanceof KvvmError && e.reason === 'paas-authentication' && /contoso\.onmicrosoft\.com/.test(e.message),
    );
  });
});
