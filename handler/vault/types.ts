/** What the sync engine needs from Key Vault; implemented by the SDK-backed client in ./secretsClient.ts. */
export interface SecretVersionInfo {
  version: string;
  enabled: boolean;
  /** Creation time; used to order versions (newest first). */
  createdOn: Date | undefined;
  updatedOn: Date | undefined;
  notBefore: Date | undefined;
  expiresOn: Date | undefined;
  contentType: string | undefined;
  managed: boolean;
}

export interface FetchedSecret extends SecretVersionInfo {
  name: string;
  /** The secret value: base64 PKCS#12 or PEM text. Never log it. */
  value: string;
  /** Key id (certificate-backed secrets usually have one; App Service certificates have none). */
  keyId: string | undefined;
}

export interface VaultReader {
  /** Latest version of a secret (GET /secrets/{name}). */
  getSecret(vaultUrl: string, name: string, version?: string): Promise<FetchedSecret>;
  /** All versions' properties, no values (GET /secrets/{name}/versions, paged). */
  listVersions(vaultUrl: string, name: string): Promise<SecretVersionInfo[]>;
}
