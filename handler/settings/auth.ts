/**
 * authenticationSettings → AuthenticationConfig. The runtime "Identity not found" failure is not ours to detect,
 * but everything that can be known from the settings alone (a client id that is not a GUID, an endpoint with no
 * host, a PaaS pair missing half) is reported here.
 */
import type { AuthenticationConfig, SettingsWarning } from './config.js';
import { problem, show, type SettingsProblem } from './problems.js';
import { looksLikePlaceholder, parseMsiEndpoint } from './url.js';
import { asObject, asString, GUID } from './values.js';

const BASE = '/authenticationSettings';
export const DEFAULT_MSI_ENDPOINT = 'http://169.254.169.254/metadata/identity/oauth2/token';

interface Sink {
  problems: SettingsProblem[];
  warnings: SettingsWarning[];
}

/** A present, non-blank string value; blank values (a template parameter defaulting to "") count as absent. */
function present(o: Record<string, unknown>, key: string, sink: Sink): string | undefined {
  const v = asString(o[key]);
  if (v === undefined) return undefined;
  if (v.trim() === '') {
    sink.warnings.push({ path: `${BASE}/${key}`, message: `${key} is an empty string and is treated as not set.` });
    return undefined;
  }
  return v;
}

function guid(key: string, value: string, sink: Sink, what: string): string | undefined {
  const path = `${BASE}/${key}`;
  const v = value.trim();
  if (looksLikePlaceholder(v)) {
    sink.problems.push(
      problem(
        path,
        'auth-placeholder',
        `${key} ${show(value)} is a template placeholder that was not replaced.`,
        `Set ${key} to the client id (a GUID) of ${what}, e.g. "c7373ae5-91c2-4165-8ab6-7381d6e75619".`,
      ),
    );
    return undefined;
  }
  if (!GUID.test(v)) {
    const hint = /^\{.*\}$/.test(v) ? ' (remove the braces)' : /^\/subscriptions\//i.test(v) ? ' (this is a resource id, not a client id)' : '';
    sink.problems.push(
      problem(
        path,
        'invalid-guid',
        `${key} ${show(value)} is not a GUID${hint}; expected the client id of ${what}, like "c7373ae5-91c2-4165-8ab6-7381d6e75619".`,
        key === 'msiClientId'
          ? "Use the identity's Client ID (az identity show --query clientId), e.g. \"[reference(<identity resource id>, '2018-11-30').clientId]\" in a template."
          : `Use the application (client) id of ${what}.`,
      ),
    );
    return undefined;
  }
  if (v !== value) sink.warnings.push({ path, message: `${key} had surrounding whitespace; kvvm uses "${v}".` });
  return v.toLowerCase();
}

export function normalizeAuthentication(raw: unknown, requireInitialSync: boolean | undefined, platform: 'linux' | 'win32', sink: Sink): AuthenticationConfig {
  const auth: AuthenticationConfig = {};
  const o = asObject(raw) ?? {};
  const clientIdRaw = present(o, 'msiClientId', sink);
  const endpointRaw = present(o, 'msiEndpoint', sink);
  const paasIdRaw = present(o, 'clientId', sink);
  const subjectRaw = present(o, 'clientCertificateSubjectName', sink);

  if (clientIdRaw !== undefined) {
    const id = guid('msiClientId', clientIdRaw, sink, 'the user-assigned managed identity');
    if (id !== undefined) auth.msiClientId = id;
  }
  if (endpointRaw !== undefined) {
    const e = parseMsiEndpoint(endpointRaw);
    if (e.ok) {
      auth.msiEndpoint = e.url;
      for (const w of e.warnings) sink.warnings.push({ path: `${BASE}/msiEndpoint`, message: w });
    } else {
      sink.problems.push(problem(`${BASE}/msiEndpoint`, e.reason, e.message, e.fix));
    }
  } else if (clientIdRaw !== undefined) {
    // The docs call msiEndpoint "required when msiClientId is used", but every Azure VM has the same IMDS
    // endpoint; refusing would only break templates that work with the Microsoft extension.
    sink.warnings.push({ path: `${BASE}/msiEndpoint`, message: `msiClientId is set without msiEndpoint; kvvm uses the default endpoint ${DEFAULT_MSI_ENDPOINT}.` });
  }
  if (paasIdRaw !== undefined) {
    const id = guid('clientId', paasIdRaw, sink, 'the Entra application');
    if (id !== undefined) auth.clientId = id;
  }
  if (subjectRaw !== undefined) {
    let subject = subjectRaw.trim();
    if (/^CN=/i.test(subject)) {
      subject = subject.slice(3).trim();
      sink.warnings.push({ path: `${BASE}/clientCertificateSubjectName`, message: `clientCertificateSubjectName should not include "CN="; kvvm uses "${subject}".` });
    }
    if (looksLikePlaceholder(subject)) {
      sink.problems.push(
        problem(
          `${BASE}/clientCertificateSubjectName`,
          'auth-placeholder',
          `clientCertificateSubjectName ${show(subjectRaw)} is a template placeholder that was not replaced.`,
          'Set it to the subject name of the bootstrap certificate, without "CN=".',
        ),
      );
    } else {
      auth.clientCertificateSubjectName = subject;
    }
  }
  if (platform === 'linux' && (paasIdRaw !== undefined || subjectRaw !== undefined)) {
    // KeyVaultForLinux has no certificate-based (Cloud Services) sign-in; accepting the keys would fall back to
    // the managed identity silently, or fail later with an authorization error that names the wrong identity.
    const keys = [paasIdRaw !== undefined ? 'clientId' : '', subjectRaw !== undefined ? 'clientCertificateSubjectName' : ''].filter((k) => k !== '');
    sink.problems.push(
      problem(
        `${BASE}/${keys[0] ?? 'clientId'}`,
        'paas-auth-on-linux',
        `authenticationSettings ${keys.join(' and ')} ${keys.length > 1 ? 'are' : 'is'} the Cloud Services (KeyVaultForPaaS) sign-in with a bootstrap certificate, which exists only on Windows.`,
        'On Linux remove clientId and clientCertificateSubjectName and use a managed identity: msiClientId for a user-assigned identity, or nothing for the system-assigned one.',
      ),
    );
    return auth;
  }
  if (clientIdRaw !== undefined && (paasIdRaw !== undefined || subjectRaw !== undefined)) {
    sink.problems.push(
      problem(
        `${BASE}/clientId`,
        'auth-conflict',
        'authenticationSettings sets both a managed identity (msiClientId) and an application (clientId/clientCertificateSubjectName); kvvm cannot tell which one to use.',
        'Keep msiClientId (VMs and scale sets) or clientId + clientCertificateSubjectName (Cloud Services), not both.',
      ),
    );
  } else if ((paasIdRaw === undefined) !== (subjectRaw === undefined)) {
    const missing = paasIdRaw === undefined ? 'clientId' : 'clientCertificateSubjectName';
    sink.problems.push(
      problem(
        `${BASE}/${missing}`,
        'paas-auth-incomplete',
        `authenticationSettings has ${missing === 'clientId' ? 'clientCertificateSubjectName' : 'clientId'} but no ${missing}; certificate-based (Cloud Services) authentication needs both.`,
        `Add "${missing}", or remove the other key to use the managed identity.`,
      ),
    );
  }
  if (requireInitialSync === true && clientIdRaw === undefined && paasIdRaw === undefined) {
    sink.warnings.push({
      path: '/secretsManagementSettings/requireInitialSync',
      message:
        'requireInitialSync is true with the system-assigned identity: if the same deployment grants that identity access to the vault, it deadlocks (access is granted only after every extension has started). Prefer a user-assigned identity with vault access granted before deployment.',
    });
  }
  return auth;
}
