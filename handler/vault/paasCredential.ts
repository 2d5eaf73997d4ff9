/**
 * The PaaS variant's credential (Cloud Services (extended support): authenticationSettings.clientId +
 * clientCertificateSubjectName): the Entra application `clientId` authenticates with a client assertion signed by
 * the bootstrap certificate's key (paasAssertion.ts builds it; the key stays in the Windows store).
 *
 * The tenant: the settings carry none. Key Vault names it in its 401 challenge
 * (`authorization="https://login.windows.net/<tenant>"`), and @azure/keyvault-common's challenge policy passes it
 * to getToken as `options.tenantId` (keyVaultAuthenticationPolicy: getAccessToken([scope], {tenantId:
 * parsedChallenge.tenantId})) — the SDK always sends the first request unauthenticated. So this credential makes
 * one @azure/identity ClientAssertionCredential per tenant the vault names (each with the assertion audience of
 * that tenant); it is never asked without a tenant by SecretClient, and refuses clearly if it is.
 */
import { randomUUID } from 'node:crypto';
import { ClientAssertionCredential, type AccessToken, type GetTokenOptions, type TokenCredential } from '@azure/identity';
import { KvvmError } from '../errors.js';
import { clientAssertion, DEFAULT_AUTHORITY_HOST } from './paasAssertion.js';
import type { TransportOptions } from './transport.js';

/** What signs: on Windows findBootstrapCertificate (platform/win32/bootstrapKey.ts); tests pass a node:crypto key. */
export interface AssertionSigner {
  /** DER of the certificate registered with the application (its SHA-1 is the assertion's x5t). */
  der: Buffer;
  sign(data: Buffer): Buffer;
}

export interface PaasCredentialOptions {
  clientId: string;
  /** Looks the bootstrap certificate up (again) for each assertion: a renewed certificate is picked up. */
  signer: () => AssertionSigner;
  env: Readonly<Record<string, string | undefined>>;
  /** Default: AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com. */
  authorityHost?: string;
  now?: () => number;
  /** Tests against a loopback token endpoint (no instance discovery there). */
  disableInstanceDiscovery?: boolean;
  /** Transport for the token endpoint (./transport.ts: extra CAs, loopback resolution); default: the SDK's. */
  transport?: TransportOptions;
}

/** @azure/identity's names for "the token endpoint said no" (invalid_client comes back as AuthenticationRequiredError). */
const ENTRA_REFUSALS = new Set(['AuthenticationError', 'AuthenticationRequiredError', 'CredentialUnavailableError']);

function paasAuthorityHost(options: Pick<PaasCredentialOptions, 'authorityHost' | 'env'>): string {
  return (options.authorityHost ?? options.env['AZURE_AUTHORITY_HOST'] ?? DEFAULT_AUTHORITY_HOST).replace(/\/+$/, '');
}

export class PaasCredential implements TokenCredential {
  private readonly byTenant = new Map<string, ClientAssertionCredential>();
  private readonly authorityHost: string;

  constructor(private readonly options: PaasCredentialOptions) {
    this.authorityHost = paasAuthorityHost(options);
  }

  /** The assertion for one tenant (exported for the tests: a real signature over real claims). */
  assertionFor(tenantId: string): string {
    const signer = this.options.signer();
    return clientAssertion(
      {
        clientId: this.options.clientId,
        tenantId,
        authorityHost: this.authorityHost,
        certificateDer: signer.der,
        nowMs: (this.options.now ?? Date.now)(),
        jti: randomUUID(),
      },
      (input) => signer.sign(input),
    );
  }

  async getToken(scopes: string | string[], options: GetTokenOptions = {}): Promise<AccessToken | null> {
    const tenantId = options.tenantId;
    if (!tenantId) {
      throw new KvvmError(
        'paas-no-tenant',
        `The application ${this.options.clientId} needs the Microsoft Entra tenant, which the vault names in its authentication challenge; none was given.`,
        {
          fix: 'This is a kvvm bug (a token was requested outside a Key Vault request); report it.',
        },
      );
    }
    let credential = this.byTenant.get(tenantId);
    if (!credential) {
      credential = new ClientAssertionCredential(tenantId, this.options.clientId, async () => this.assertionFor(tenantId), {
        authorityHost: this.authorityHost,
        ...(this.options.disableInstanceDiscovery ? { disableInstanceDiscovery: true } : {}),
        ...this.options.transport,
      });
      this.byTenant.set(tenantId, credential);
    }
    try {
      return await credential.getToken(scopes, options);
    } catch (err) {
      if (err instanceof KvvmError || !ENTRA_REFUSALS.has((err as { name?: string }).name ?? '')) throw err;
      throw new KvvmError(
        'paas-authentication',
        `Microsoft Entra ID refused the application ${this.options.clientId} in tenant ${tenantId}: ${(err as Error).message.split('\n')[0] ?? ''}`,
        {
          fix: 'Upload the bootstrap certificate (.cer) to the app registration\'s "Certificates & secrets", check authenticationSettings.clientId, and grant the application get/list on secrets in the vault.',
          cause: err,
        },
      );
    }
  }
}
