/**
 * Run by test/devvault.clients.test.ts INSIDE a mount namespace whose /etc/hosts carries the hosts line
 * `kvvm dev-vault` printed: ordinary clients, configured as a user would (NODE_EXTRA_CA_CERTS for the printed CA,
 * AZURE_POD_IDENTITY_AUTHORITY_HOST for the token endpoint), no custom resolver, no check disabled.
 *   node devVaultClients.js <vaultUrl> <pfxFile> <pfxPassword>
 * Prints one JSON line with what each client saw.
 */
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { ManagedIdentityCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { CertificateClient } from '@azure/keyvault-certificates';

const [vaultUrl, pfxFile, password] = process.argv.slice(2) as [string, string, string];

function httpsStatus(url: string): Promise<{ status: number; challenge: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, challenge: String(res.headers['www-authenticate'] ?? '') }));
    }).on('error', reject);
  });
}

const probe = `${vaultUrl}/secrets?api-version=7.4`;
const https = await httpsStatus(probe);
const fetched = await fetch(probe);
const credential = new ManagedIdentityCredential();
const certificates = new CertificateClient(vaultUrl, credential);
const secrets = new SecretClient(vaultUrl, credential);

const imported = await certificates.importCertificate('imported', readFileSync(pfxFile), { password });
const poller = await certificates.beginCreateCertificate(
  'created',
  { issuerName: 'Self', subject: 'CN=created.test', contentType: 'application/x-pem-file', validityInMonths: 3 },
  { intervalInMs: 50 },
);
// begin* creates and reads the pending operation once: "inProgress", so the poller is not done yet and polls.
const doneAfterBegin = poller.isDone();
const created = await poller.pollUntilDone();
const got = await certificates.getCertificate('imported');
const versions: string[] = [];
for await (const p of certificates.listPropertiesOfCertificateVersions('imported')) versions.push(p.version ?? '');
const importedSecret = await secrets.getSecret('imported');
const createdSecret = await secrets.getSecret('created');

process.stdout.write(
  `${JSON.stringify({
    https,
    fetch: { status: fetched.status, challenge: fetched.headers.get('www-authenticate') ?? '' },
    imported: {
      name: imported.name,
      version: imported.properties.version,
      x5t: Buffer.from(imported.properties.x509Thumbprint ?? []).toString('hex'),
      secretId: imported.secretId,
      policyContentType: imported.policy?.contentType,
    },
    created: {
      name: created.name,
      subject: created.policy?.subject,
      contentType: created.policy?.contentType,
      doneAfterBegin,
      doneAtEnd: poller.isDone(),
      version: created.properties.version,
    },
    got: { version: got.properties.version, cerBytes: got.cer?.length ?? 0 },
    versions,
    importedSecret: { contentType: importedSecret.properties.contentType, managed: importedSecret.properties.managed, version: importedSecret.properties.version },
    createdSecret: {
      contentType: createdSecret.properties.contentType,
      hasKey: (createdSecret.value ?? '').includes('PRIVATE KEY'),
      hasCert: (createdSecret.value ?? '').includes('BEGIN CERTIFICATE'),
    },
  })}\n`,
);
