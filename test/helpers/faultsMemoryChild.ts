/**
 * Run by test/faults/memory.test.ts as `node --expose-gc faultsMemoryChild.js <cycles>`: the service's poll loop
 * (runPollLoop) with a virtual sleep, the real vault reader over HTTPS to an in-process dev vault, the real PEM
 * store, status writer and logger. Every few cycles it forces a GC and samples heapUsed; prints one JSON line.
 */
import { join } from 'node:path';
import { createCa, issueCertificate, toPemSecret, toPkcs12Base64 } from '../../handler/devvault/certFactory.js';
import { parseCertificateSecret } from '../../handler/certs/parse.js';
import { makeChainCheck } from '../../handler/commands/service.js';
import { writeStatus } from '../../handler/protocol/status.js';
import { createLogger } from '../../handler/service/logger.js';
import { DEFAULT_RETRY_POLICY, runPollLoop } from '../../handler/service/pollLoop.js';
import { parseSettings } from '../../handler/settings/index.js';
import { createPemStore } from '../../handler/stores/pemStore.js';
import { createVaultReader } from '../../handler/vault/secretsClient.js';
import { startTestVault } from './devVault.js';
import { faultWorkDir, registerSecrets } from './faults.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const cycles = Number(process.argv[2] ?? 2000);
const SAMPLE_EVERY = 20;

const work = await faultWorkDir('memory');
// 2,000 cycles with a virtual clock send thousands of requests per real second: lift the vault's rate limit,
// which this test is not about (throttling has its own tests in vault.test.ts).
const tv = await startTestVault({ rateLimit: { requests: 1_000_000, windowMs: 10_000 } });
const log = createLogger({ logFolder: join(work, 'log'), name: 'service' });
const ca = createCa('memory root');
const pool = Array.from({ length: 3 }, (_, i) => issueCertificate({ issuer: ca, subjectCn: `m${i}.test`, serverAuth: false }));
const values = pool.map((c, i) =>
  i % 2 === 0 ? { v: toPkcs12Base64(c.keyPem, [c.certPem]), t: 'application/x-pkcs12' } : { v: toPemSecret(c.keyPem, [c.certPem]), t: 'application/x-pem-file' },
);
registerSecrets('memory', { secrets: [...pool.map((c) => c.keyPem), ...values.map((x) => x.v)] });
const names = ['m0', 'm1', 'm2'];
names.forEach((n, i) => tv.vault.setSecret(n, values[i]!.v, { contentType: values[i]!.t }));
const parsed = parseSettings(
  {
    secretsManagementSettings: {
      pollingIntervalInS: '3600',
      observedCertificates: names.map((n) => ({ url: `${tv.vault.vaultUrl}/secrets/${n}`, certificateStoreLocation: join(work, 'store') })),
    },
  },
  { platform: 'linux', env: tv.env },
);
if (!parsed.ok) throw new Error('settings');

const samples: { cycle: number; heapUsed: number }[] = [];
let cycle = 0;
const controller = new AbortController();
const statusFolder = join(work, 'status');
await runPollLoop(
  parsed.config,
  {
    sync: {
      vault: createVaultReader(tv.readerOptions()),
      store: createPemStore({}),
      parse: parseCertificateSecret,
      checkChain: makeChainCheck([]),
      now: () => new Date(),
      log,
    },
    writeStatus: (report) => writeStatus(statusFolder, 0, 'KeyVaultForLinux', report, new Date()),
    isSuperseded: async () => false,
    // Virtual clock: the interval passes at once (one macrotask, so I/O callbacks still run).
    sleep: () => new Promise((r) => setImmediate(r)),
    random: Math.random,
    retry: DEFAULT_RETRY_POLICY,
    concurrency: 3,
    jitter: false,
    initialJitterMs: 0,
    onCycle: (results) => {
      cycle += 1;
      if (results.some((r) => r.state === 'error')) throw new Error(`cycle ${cycle}: ${results.map((r) => r.reason).join(',')}`);
      // A rotation now and then, so installs, activations and removals happen too, not only version listings.
      if (cycle % 100 === 0) {
        const i = (cycle / 100) % names.length;
        tv.vault.setSecret(names[i]!, values[(i + 1) % values.length]!.v, { contentType: values[(i + 1) % values.length]!.t });
      }
      if (cycle % SAMPLE_EVERY === 0) {
        gc();
        samples.push({ cycle, heapUsed: process.memoryUsage().heapUsed });
      }
      if (cycle >= cycles) controller.abort();
    },
  },
  controller.signal,
);
registerSecrets('memory', { tokens: tv.vault.issuedTokens() });
await log.close();
await tv.close();
process.stdout.write(`${JSON.stringify({ cycles: cycle, samples })}\n`);
