/**
 * The Key Vault certificates REST subset a developer uses to get certificates in (what @azure/keyvault-certificates
 * sends): import (PFX or PEM), create a self-signed certificate from a policy (with the pending operation the SDK
 * polls), get, get the policy, list certificates and versions. Shapes follow the Key Vault REST reference and the
 * recorded CertificateBundle in vectors/keyvault/certificate-pem-2020.json.
 *
 * As in Key Vault, every certificate version IS a version of the secret of the same name (managed, contentType
 * from the policy's secret_props, PFX re-encoded password-less): the bundle is computed from that secret, so
 * a certificate imported here is what kvvm's handler reads from /secrets/<name>, and a restart with --state keeps it.
 */
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { CONTENT_TYPE_PEM, CONTENT_TYPE_PKCS12, parseCertificateSecret } from '../certs/parse.js';
import { readPkcs12 } from '../certs/pkcs12.js';
import type { CertificateMaterial } from '../certs/material.js';
import { issueCertificate, toPemSecret, toPkcs12Base64 } from './certFactory.js';
import { attributes, error, page, type Reply } from './replies.js';
import type { SecretState, StoredVersion } from './state.js';

const KEY_SIZES = new Set([2048, 3072, 4096]);
const MAX_VALIDITY_MONTHS = 120;

export interface CertificateContext {
  vaultUrl: string;
  state: SecretState;
  now: () => number;
  /** Creation operations by lower-case name: the SDK polls GET .../pending until it is not "inProgress". */
  operations: Map<string, CertificateOperation>;
}

interface CertificateOperation {
  name: string;
  requestId: string;
  polls: number;
  error?: { code: string; message: string };
}

/** A policy as sent by the SDK (only the fields the dev vault acts on). */
interface PolicyBody {
  key_props?: { kty?: unknown; key_size?: unknown; exportable?: unknown };
  secret_props?: { contentType?: unknown };
  x509_props?: { subject?: unknown; sans?: { dns_names?: unknown }; validity_months?: unknown };
  issuer?: { name?: unknown };
}

interface CertificateRequestBody {
  value?: unknown;
  pwd?: unknown;
  policy?: PolicyBody;
  attributes?: { enabled?: unknown };
  tags?: unknown;
}

function bad(message: string): Reply {
  return error(400, 'BadParameter', message);
}

function notFound(name: string): Reply {
  return error(
    404,
    'CertificateNotFound',
    `A certificate with (name/id) ${name} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

function contentTypeOf(policy: PolicyBody | undefined, fallback: string): string | Reply {
  const ct = policy?.secret_props?.contentType;
  if (ct === undefined || ct === null) return fallback;
  if (ct !== CONTENT_TYPE_PKCS12 && ct !== CONTENT_TYPE_PEM)
    return bad(`Property policy.secret_props.contentType must be ${CONTENT_TYPE_PKCS12} or ${CONTENT_TYPE_PEM}, got ${JSON.stringify(ct)}.`);
  return ct;
}

function tagsOf(body: CertificateRequestBody): Record<string, string> | undefined {
  if (!body.tags || typeof body.tags !== 'object') return undefined;
  return Object.fromEntries(Object.entries(body.tags as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** The secret value Key Vault would store for this material and content type (keys only when exportable). */
function secretValue(keyPem: string | undefined, certPems: string[], contentType: string): string {
  return contentType === CONTENT_TYPE_PEM ? toPemSecret(keyPem, certPems) : toPkcs12Base64(keyPem, certPems);
}

function pemsOf(material: CertificateMaterial): { keyPem: string; certPems: string[] } {
  return {
    keyPem: material.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPems: [material.leaf, ...material.chain].map((c) => c.toString()),
  };
}

/** Reads an imported value: PEM text (key + certificates), or base64 PFX, password-protected or not. */
function readImport(value: string, pwd: string | undefined): CertificateMaterial {
  if (value.includes('-----BEGIN ')) return parseCertificateSecret(value, CONTENT_TYPE_PEM);
  const der = Buffer.from(value, 'base64');
  if (pwd === undefined || pwd === '') return parseCertificateSecret(value, CONTENT_TYPE_PKCS12);
  // Re-encode password-less (what Key Vault stores), then read it the way the handler will.
  const contents = readPkcs12(der, pwd);
  const key = contents.keys[0];
  if (!key) throw new Error('the PFX holds no private key');
  const certs = contents.certs.map((c) => c.toString());
  return parseCertificateSecret(toPkcs12Base64(key.export({ type: 'pkcs8', format: 'pem' }).toString(), certs), CONTENT_TYPE_PKCS12);
}

function store(ctx: CertificateContext, name: string, value: string, contentType: string, body: CertificateRequestBody): StoredVersion {
  return ctx.state.set(name, value, {
    contentType,
    certificateBacked: true,
    tags: tagsOf(body),
    enabled: typeof body.attributes?.enabled === 'boolean' ? body.attributes.enabled : undefined,
  });
}

function importCertificate(ctx: CertificateContext, name: string, body: CertificateRequestBody): Reply {
  if (typeof body.value !== 'string' || body.value.trim() === '') return bad('Property value is required: the base64 PFX or the PEM text of the certificate.');
  if (body.pwd !== undefined && typeof body.pwd !== 'string') return bad('Property pwd must be a string.');
  const isPem = body.value.includes('-----BEGIN ');
  const contentType = contentTypeOf(body.policy, isPem ? CONTENT_TYPE_PEM : CONTENT_TYPE_PKCS12);
  if (typeof contentType !== 'string') return contentType;
  let material: CertificateMaterial;
  try {
    material = readImport(body.value, body.pwd);
  } catch (err) {
    return bad(`The specified ${isPem ? 'PEM' : 'PFX'} content could not be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  const { keyPem, certPems } = pemsOf(material);
  const v = store(ctx, name, secretValue(keyPem, certPems, contentType), contentType, body);
  return { status: 200, body: certificateBundle(ctx, ctx.state.displayName(name), v) };
}

function addMonths(from: Date, months: number): Date {
  const d = new Date(from);
  d.setUTCMonth(d.getUTCMonth() + months);
  return d;
}

/** Self-signed certificates only, RSA only (the dev vault's factory): anything else is refused, naming the field. */
function createCertificate(ctx: CertificateContext, name: string, body: CertificateRequestBody): Reply {
  const policy = body.policy;
  if (!policy || typeof policy !== 'object') return bad('Property policy is required.');
  const issuer = policy.issuer?.name ?? 'Self';
  if (issuer !== 'Self') return bad(`policy.issuer.name ${JSON.stringify(issuer)}: the dev vault issues self-signed certificates only (issuer "Self").`);
  const kty = policy.key_props?.kty ?? 'RSA';
  if (kty !== 'RSA' && kty !== 'RSA-HSM') return bad(`policy.key_props.kty ${JSON.stringify(kty)}: the dev vault creates RSA keys only (import an EC certificate instead).`);
  const keySize = policy.key_props?.key_size ?? 2048;
  if (typeof keySize !== 'number' || !KEY_SIZES.has(keySize)) return bad(`policy.key_props.key_size must be 2048, 3072 or 4096, got ${JSON.stringify(keySize)}.`);
  const subject = policy.x509_props?.subject;
  const cn = typeof subject === 'string' ? /(?:^|[,;]\s*)cn=([^,;]+)/i.exec(subject)?.[1]?.trim() : undefined;
  if (!cn) return bad(`policy.x509_props.subject must name a CN (e.g. "CN=example.com"), got ${JSON.stringify(subject)}.`);
  const dnsRaw = policy.x509_props?.sans?.dns_names ?? [];
  if (!Array.isArray(dnsRaw) || dnsRaw.length > 100 || !dnsRaw.every((d) => typeof d === 'string' && d.length > 0 && d.length <= 253)) {
    return bad('policy.x509_props.sans.dns_names must be a list of at most 100 DNS names.');
  }
  const months = policy.x509_props?.validity_months ?? 12;
  if (typeof months !== 'number' || !Number.isInteger(months) || months < 1 || months > MAX_VALIDITY_MONTHS) {
    return bad(`policy.x509_props.validity_months must be a whole number from 1 to ${MAX_VALIDITY_MONTHS}, got ${JSON.stringify(months)}.`);
  }
  const contentType = contentTypeOf(policy, CONTENT_TYPE_PKCS12);
  if (typeof contentType !== 'string') return contentType;
  const notBefore = new Date(ctx.now() - 60_000);
  const days = Math.round((addMonths(notBefore, months).getTime() - notBefore.getTime()) / 86_400_000);
  const issued = issueCertificate({ subjectCn: cn, dnsNames: dnsRaw as string[], keyBits: keySize, days, notBefore });
  const exportable = policy.key_props?.exportable !== false;
  store(ctx, name, secretValue(exportable ? issued.keyPem : undefined, [issued.certPem], contentType), contentType, body);
  const op: CertificateOperation = { name: ctx.state.displayName(name), requestId: randomUUID().replace(/-/g, ''), polls: 0 };
  ctx.operations.set(name.toLowerCase(), op);
  return { status: 202, body: operationBody(ctx, op, 'inProgress'), headers: { Location: `${ctx.vaultUrl}/certificates/${op.name}/pending`, 'Retry-After': '1' } };
}

function operationBody(ctx: CertificateContext, op: CertificateOperation, status: 'inProgress' | 'completed'): Record<string, unknown> {
  return {
    id: `${ctx.vaultUrl}/certificates/${op.name}/pending`,
    issuer: { name: 'Self' },
    cancellation_requested: false,
    status,
    status_details: status === 'completed' ? undefined : 'Pending certificate created. Certificate request is in progress.',
    target: `${ctx.vaultUrl}/certificates/${op.name}`,
    request_id: op.requestId,
  };
}

/** The operation answers "inProgress" to the first poll and "completed" after, so the SDK's poller really polls. */
function getOperation(ctx: CertificateContext, name: string): Reply {
  const op = ctx.operations.get(name.toLowerCase());
  if (!op) return error(404, 'PendingCertificateNotFound', `Pending certificate not found: ${name}`);
  op.polls += 1;
  return { status: 200, body: operationBody(ctx, op, op.polls > 1 ? 'completed' : 'inProgress') };
}

function x5t(leaf: X509Certificate): string {
  return createHash('sha1').update(leaf.raw).digest('base64url');
}

/** The leaf of a certificate version, and whether its secret carries the key (policy exportable). */
function leafOf(v: StoredVersion): { leaf: X509Certificate; exportable: boolean } | undefined {
  try {
    return { leaf: parseCertificateSecret(v.value, v.contentType).leaf, exportable: true };
  } catch {
    // A non-exportable certificate's secret has no key: its first certificate is the leaf.
    try {
      const pem = v.contentType === CONTENT_TYPE_PEM ? v.value : undefined;
      const first = pem === undefined ? readPkcs12(Buffer.from(v.value, 'base64')).certs[0] : new X509Certificate(pem);
      return first ? { leaf: first, exportable: false } : undefined;
    } catch {
      return undefined;
    }
  }
}

function policyOf(ctx: CertificateContext, name: string, v: StoredVersion, { leaf, exportable }: { leaf: X509Certificate; exportable: boolean }): Record<string, unknown> {
  const key = leaf.publicKey;
  const bits = key.asymmetricKeyDetails?.modulusLength;
  const months = Math.max(1, Math.round((Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / (30.44 * 86_400_000)));
  const dnsNames = (leaf.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  return {
    id: `${ctx.vaultUrl}/certificates/${name}/policy`,
    key_props: { exportable, kty: key.asymmetricKeyType === 'ec' ? 'EC' : 'RSA', ...(bits ? { key_size: bits } : {}), reuse_key: false },
    secret_props: { contentType: v.contentType },
    x509_props: { subject: leaf.subject.split('\n').join(', '), sans: dnsNames.length > 0 ? { dns_names: dnsNames } : {}, validity_months: months },
    lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'AutoRenew' } }],
    issuer: { name: leaf.subject === leaf.issuer ? 'Self' : 'Unknown' },
    attributes: { enabled: true, created: v.created, updated: v.updated },
  };
}

function certificateBundle(ctx: CertificateContext, name: string, v: StoredVersion): Record<string, unknown> {
  const read = leafOf(v);
  const leaf = read?.leaf;
  const b: Record<string, unknown> = {
    id: `${ctx.vaultUrl}/certificates/${name}/${v.version}`,
    kid: `${ctx.vaultUrl}/keys/${name}/${v.version}`,
    sid: `${ctx.vaultUrl}/secrets/${name}/${v.version}`,
  };
  if (leaf) {
    b['x5t'] = x5t(leaf);
    b['cer'] = leaf.raw.toString('base64');
  }
  b['attributes'] = attributes(v);
  if (v.tags !== undefined) b['tags'] = v.tags;
  if (read) b['policy'] = policyOf(ctx, name, v, read);
  if (ctx.operations.has(name.toLowerCase())) b['pending'] = { id: `${ctx.vaultUrl}/certificates/${name}/pending` };
  return b;
}

function certificateItem(ctx: CertificateContext, id: string, v: StoredVersion): Record<string, unknown> {
  const leaf = leafOf(v)?.leaf;
  return { id, ...(leaf ? { x5t: x5t(leaf) } : {}), attributes: attributes(v), ...(v.tags ? { tags: v.tags } : {}) };
}

/** The certificate versions of a name: the versions of its secret that are certificate-backed. */
function certificateVersions(ctx: CertificateContext, name: string): StoredVersion[] | undefined {
  const versions = ctx.state.versions(name)?.filter((v) => v.managed);
  return versions && versions.length > 0 ? versions : undefined;
}

export const CERTIFICATE_ROUTES = new Set([
  'importCertificate',
  'createCertificate',
  'getCertificateOperation',
  'listCertificateVersions',
  'getCertificate',
  'getCertificatePolicy',
  'listCertificates',
]);

/** Route name of a /certificates request, or undefined when the path is not one. */
export function certificateRouteOf(method: string, segments: readonly string[]): string | undefined {
  if (segments[0] !== 'certificates') return undefined;
  if (segments.length === 1) return method === 'GET' ? 'listCertificates' : undefined;
  if (segments.length === 2) return method === 'GET' ? 'getCertificate' : undefined;
  if (segments.length === 3) {
    const s = segments[2];
    if (method === 'POST' && s === 'import') return 'importCertificate';
    if (method === 'POST' && s === 'create') return 'createCertificate';
    if (method === 'GET' && s === 'pending') return 'getCertificateOperation';
    if (method === 'GET' && s === 'versions') return 'listCertificateVersions';
    if (method === 'GET' && s === 'policy') return 'getCertificatePolicy';
    if (method === 'GET') return 'getCertificate';
  }
  return undefined;
}

export function operateCertificate(ctx: CertificateContext, route: string, segments: readonly string[], url: URL, body: unknown): Reply {
  const name = segments[1] ?? '';
  const request = (body ?? {}) as CertificateRequestBody;
  const display = ctx.state.displayName(name);
  switch (route) {
    case 'importCertificate':
      return importCertificate(ctx, name, request);
    case 'createCertificate':
      return createCertificate(ctx, name, request);
    case 'getCertificateOperation':
      return getOperation(ctx, name);
    case 'listCertificates': {
      const all = ctx.state.names().flatMap((n) => {
        const latest = certificateVersions(ctx, n)?.at(-1);
        return latest ? [{ n, latest }] : [];
      });
      return page(ctx, url, '/certificates', all, ({ n, latest }) => certificateItem(ctx, `${ctx.vaultUrl}/certificates/${n}`, latest));
    }
    case 'listCertificateVersions': {
      const versions = certificateVersions(ctx, name);
      if (!versions) return notFound(name);
      return page(ctx, url, `/certificates/${display}/versions`, versions, (v) => certificateItem(ctx, `${ctx.vaultUrl}/certificates/${display}/${v.version}`, v));
    }
    case 'getCertificatePolicy': {
      const latest = certificateVersions(ctx, name)?.at(-1);
      const read = latest && leafOf(latest);
      if (!latest || !read) return notFound(name);
      return { status: 200, body: policyOf(ctx, display, latest, read) };
    }
    case 'getCertificate': {
      const version = segments[2];
      const versions = certificateVersions(ctx, name);
      const v = version === undefined ? versions?.at(-1) : versions?.find((x) => x.version === version.toLowerCase());
      if (!v) return notFound(name);
      return { status: 200, body: certificateBundle(ctx, display, v) };
    }
    default:
      return error(405, 'MethodNotAllowed', 'The requested operation is not supported.');
  }
}
