/**
 * The PEM store's cost per certificate must not grow with the shared store directory (issue 12's scaling curve:
 * installing 10,000 certificates into one directory never finished when every install read the whole directory
 * three times). Counted, not timed: the file-system calls the store makes, through the very `node:fs` and
 * `node:fs/promises` functions it imports (helpers/fsCalls.ts), for the same work in a directory of a few entries
 * and in one of several thousand.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { countFsCalls, total } from './helpers/fsCalls.js';
import { linuxObserved } from './helpers/observed.js';
import { loadSecretVectors } from './helpers/vectors.js';

const VAULT = 'kvvmscale';
const FILLER = 4_000;
const CERTS = 30;

/** The store's file-system calls (synchronous and through the thread pool) and the directory entries readdir returned. */
async function counting(fn: () => Promise<void>): Promise<{ calls: number; readdirEntries: number; readdirs: number }> {
  const counted = await countFsCalls(fn);
  return { calls: total(counted), readdirEntries: counted.readdirEntries, readdirs: counted.readdirs };
}

const vector = loadSecretVectors()[0]!;
const material = parseCertificateSecret(vector.value, vector.contentType);
const version = '1'.repeat(32);

describe('PEM store cost in a shared directory of thousands of entries', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kvvm-pem-scale-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  /** Installs and activates CERTS certificates into a directory holding `filler` other certificates' files, then lists each. */
  async function measure(name: string, filler: number): Promise<{ install: Awaited<ReturnType<typeof counting>>; list: Awaited<ReturnType<typeof counting>> }> {
    const dir = join(root, name);
    const store = createPemStore();
    const certs = Array.from({ length: CERTS }, (_, i) => linuxObserved(VAULT, `cert${i}`, dir));
    await store.install(linuxObserved(VAULT, 'first', dir), { vaultName: VAULT, secretName: 'first', version }, material); // creates the directory
    for (let i = 0; i < filler; i++) await writeFile(join(dir, `othervault.secret${i}.${version}.PEM`), 'not read', { mode: 0o600 });
    const install = await counting(async () => {
      for (const cert of certs) {
        const id = { vaultName: VAULT, secretName: cert.secretName, version };
        await store.install(cert, id, material);
        await store.activate(cert, id, undefined);
      }
    });
    const list = await counting(async () => {
      for (const cert of certs) assert.equal((await store.list(cert))[0]?.active, true);
    });
    return { install, list };
  }

  it('installing and listing a certificate reads the directory at most once in a while, whatever its size', async (t) => {
    const small = await measure('small', 0);
    const large = await measure('large', FILLER);
    t.diagnostic(`small: ${JSON.stringify(small)}; large (${FILLER} other files): ${JSON.stringify(large)}`);
    // Before the directory index, every install read the whole directory three times (3 x 4,000 entries each).
    // Now the directory is read in full once after others changed it, and again only when the store's own changes
    // paused for a second (possible on a loaded machine): allow a few full reads for the whole sequence.
    assert.ok(large.install.readdirEntries <= 4 * (FILLER + 3 * CERTS), `install read ${large.install.readdirEntries} directory entries for ${CERTS} installs`);
    assert.ok(large.list.readdirEntries <= 2 * (FILLER + 3 * CERTS), `list read ${large.list.readdirEntries} directory entries for ${CERTS} lists`);
    // Every other call is per certificate: as many in the large directory as in the small one (give or take the
    // few full reads and their stats).
    assert.ok(large.install.calls <= small.install.calls + 4 * 3, `install: ${large.install.calls} calls in the large directory, ${small.install.calls} in the small one`);
    assert.ok(large.list.calls <= small.list.calls + 2 * 3, `list: ${large.list.calls} calls in the large directory, ${small.list.calls} in the small one`);
    assert.ok(small.install.calls > CERTS, 'the calls are counted');
  });
});
