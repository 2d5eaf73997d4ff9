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

/** One entry of the vault's secret listing (GET /secrets): the current version's attributes; no value, no version id. */
export type SecretListEntry = Omit<SecretVersionInfo, 'version'> & { name: string };

export interface SecretListing {
  /** Pages fetched by the attempt that ended the listing. */
  pages: number;
  /** True when the vault said there are no more pages; false when `onPage` or the page budget stopped it early. */
  complete: boolean;
}

export interface VaultReader {
  /** Latest version of a secret (GET /secrets/{name}). */
  getSecret(vaultUrl: string, name: string, version?: string): Promise<FetchedSecret>;
  /** All versions' properties, no values (GET /secrets/{name}/versions, paged). */
  listVersions(vaultUrl: string, name: string): Promise<SecretVersionInfo[]>;
  /**
   * The vault's secret listing (GET /secrets, paged, no values), page by page: `onPage` returns false when it needs
   * no more pages; at most `maxPages` pages are fetched. A retried listing starts again from its first page, so
   * `onPage` may see an entry twice. Optional: a reader without it is asked per certificate.
   */
  listSecrets?(vaultUrl: string, onPage: (entries: SecretListEntry[]) => boolean, maxPages: number): Promise<SecretListing>;
}
