/**
 * Who a managed-identity token belongs to, read from its claims (the token itself is never printed, logged or
 * returned), and the exact fixes that name that principal.
 */

export interface TokenIdentity {
  /** Object (principal) id: what a role assignment needs. */
  objectId?: string;
  /** Application (client) id of the identity. */
  clientId?: string;
  tenantId?: string;
  /** xms_mirid: the ARM id of the managed identity (user-assigned) or of the VM (system-assigned). */
  resourceId?: string;
}

/** Claims of a JWT access token, unverified (we only want to name the principal). Undefined for opaque tokens. */
export function decodeTokenIdentity(token: string): TokenIdentity | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (claims === null || typeof claims !== 'object') return undefined;
  const str = (k: string): string | undefined => (typeof claims[k] === 'string' ? claims[k] : undefined);
  const out: TokenIdentity = {};
  const oid = str('oid');
  const appid = str('appid') ?? str('azp');
  const tid = str('tid');
  const mirid = str('xms_mirid');
  if (oid) out.objectId = oid;
  if (appid) out.clientId = appid;
  if (tid) out.tenantId = tid;
  if (mirid) out.resourceId = mirid;
  return out;
}

export interface PrincipalLabel {
  /** "the VM's system-assigned identity" / "the user-assigned identity with client id …" */
  label: string;
  objectId: string | undefined;
  /** The user-assigned identity's client id (msiClientId), to look the object id up when the token was opaque. */
  clientId?: string | undefined;
}

/** The object id itself, or a shell expression that looks it up. */
function objectIdOrLookup(who: PrincipalLabel): string {
  if (who.objectId) return who.objectId;
  if (who.clientId) return `$(az ad sp show --id ${who.clientId} --query id -o tsv)`;
  return '$(az vm show -g <resource group> -n <vm> --query identity.principalId -o tsv)';
}

/** The role-assignment fix for a 403 ForbiddenByRbac, naming the object id when the token told us. */
export function rbacFix(vaultName: string, who: PrincipalLabel): string {
  const assignee = `--assignee-object-id ${objectIdOrLookup(who)} --assignee-principal-type ServicePrincipal`;
  return (
    `Assign the role "Key Vault Secrets User" to ${who.label}${who.objectId ? ` (object id ${who.objectId})` : ''} on the vault's scope: ` +
    `az role assignment create --role "Key Vault Secrets User" ${assignee} --scope $(az keyvault show --name ${vaultName} --query id -o tsv). ` +
    'Role assignments can take a few minutes to apply.'
  );
}

export function accessPolicyFix(vaultName: string, who: PrincipalLabel): string {
  const id = objectIdOrLookup(who);
  return (
    `The vault uses access policies: az keyvault set-policy --name ${vaultName} --object-id ${id} --secret-permissions get list ` +
    `(or switch the vault to Azure RBAC and assign "Key Vault Secrets User").`
  );
}

export function firewallFix(vaultName: string): string {
  return (
    `Allow this VM's network through the vault firewall: az keyvault network-rule add --name ${vaultName} --subnet <VM subnet id> ` +
    `(the subnet needs the Microsoft.KeyVault service endpoint), or --ip-address <VM public IP>, or use a private endpoint.`
  );
}

export function secretNotFoundFix(vaultName: string, secretName: string): string {
  return (
    `The vault has no secret "${secretName}". List what exists: az keyvault secret list --vault-name ${vaultName} --query "[].name" -o tsv; ` +
    "the observed URL must be the certificate's secret identifier https://<vault>.vault.azure.net/secrets/<certificate name> (names are case-insensitive, no version needed)."
  );
}
