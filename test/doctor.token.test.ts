/**
 * Naming the principal behind a managed-identity token (claims read, token never kept) and the fixes built
 * from it; NO_PROXY matching as curl and the Azure SDK do it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { noProxyMatches, redactProxy } from '../handler/doctor/probes.js';
import { decodeTokenIdentity, rbacFix } from '../handler/doctor/token.js';

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const OID = '9a8b7c6d-1234-4f00-8e11-aabbccddeeff';

describe('token identity', () => {
  it('reads oid, appid, tid and xms_mirid from a JWT access token', () => {
    const jwt = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ oid: OID, appid: 'c7373ae5-91c2-4165-8ab6-7381d6e75619', tid: '72f988bf-86f1-41af-91ab-2d7cd011db47', xms_mirid: '/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/web-id' })}.c2ln`;
    assert.deepEqual(decodeTokenIdentity(jwt), {
      objectId: OID,
      clientId: 'c7373ae5-91c2-4165-8ab6-7381d6e75619',
      tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      resourceId: '/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/web-id',
    });
  });
  it('an opaque token or a broken payload names nobody', () => {
    assert.equal(decodeTokenIdentity('kvvmdev.abcdef'), undefined);
    assert.equal(decodeTokenIdentity('a.!!!.c'), undefined);
  });
  it('the RBAC fix assigns the role to the object id when known, else asks for it', () => {
    const known = rbacFix('myvault', { label: "the VM's system-assigned identity", objectId: OID });
    assert.match(known, new RegExp(`--assignee-object-id ${OID} --assignee-principal-type ServicePrincipal`));
    assert.match(known, /--scope \$\(az keyvault show --name myvault --query id -o tsv\)/);
    const system = rbacFix('myvault', { label: "the VM's system-assigned identity", objectId: undefined });
    assert.match(system, /--assignee-object-id \$\(az vm show -g <resource group> -n <vm> --query identity\.principalId -o tsv\)/);
    const user = rbacFix('myvault', { label: 'the user-assigned identity with client id c7373ae5', objectId: undefined, clientId: 'c7373ae5' });
    assert.match(user, /--assignee-object-id \$\(az ad sp show --id c7373ae5 --query id -o tsv\)/);
  });
});

describe('proxy variables', () => {
  it('NO_PROXY matches exact hosts, dot-suffixes, bare suffixes, host:port and *', () => {
    assert.equal(noProxyMatches('myvault.vault.azure.net', 443, '.vault.azure.net'), true);
    assert.equal(noProxyMatches('myvault.vault.azure.net', 443, 'vault.azure.net'), true);
    assert.equal(noProxyMatches('myvault.vault.azure.net', 443, 'myvault.vault.azure.net:8443'), false);
    assert.equal(noProxyMatches('169.254.169.254', 80, 'localhost, 169.254.169.254'), true);
    assert.equal(noProxyMatches('evilvault.azure.net', 443, 'vault.azure.net'), false);
    assert.equal(noProxyMatches('anything', 1, '*'), true);
    assert.equal(noProxyMatches('anything', 1, undefined), false);
  });
  it('proxy credentials are never shown', () => {
    assert.equal(redactProxy('http://alice:s3cret@proxy.corp:3128'), 'http://***@proxy.corp:3128');
  });
});
