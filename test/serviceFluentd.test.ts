/**
 * loggingSettings `logger: "fluentd"` (issue 9, item 3), through `enable` as the agent runs it: the service's log
 * records reach a real fluentd forward-protocol receiver (FluentServer from @fluent-org/logger, listening on
 * loopback), tagged with `servicename` and redacted like the log file. With the receiver gone, the service keeps
 * syncing (a rotated certificate is installed, the same worker runs on); when a receiver is back on the same
 * port, records flow again without any restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { FluentServer } from '@fluent-org/logger';
import { createCa, issueCertificate, toPemSecret } from '../handler/devvault/certFactory.js';
import { startDevVault } from '../handler/devvault/server.js';
import { packageRoot } from '../handler/paths.js';
import { readPidFile } from '../handler/service/pidfile.js';
import { makeAgentLayout } from './helpers/agentFolder.js';
import { childProcessEnv } from './helpers/devVault.js';
import { pidAlive } from './helpers/serviceProcesses.js';

const run = promisify(execFile);
const CLI = join(packageRoot(), 'lib', 'handler', 'cli.js');

interface Entry {
  tag: string;
  record: Record<string, unknown>;
}

async function receiver(port: number, into: Entry[]): Promise<FluentServer> {
  const server = new FluentServer({ listenOptions: { host: '127.0.0.1', port } });
  server.on('entry', (tag: string, _time: unknown, record: Record<string, unknown>) => into.push({ tag, record }));
  await server.listen();
  return server;
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, limitMs = 90_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${limitMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

test('the service forwards its log records to a fluentd endpoint, and keeps syncing while the endpoint is down', { timeout: 240_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-fluentd-'));
  const vault = await startDevVault();
  const layout = makeAgentLayout(join(root, 'agent'));
  const store = join(root, 'store');
  const entries: Entry[] = [];
  let server = await receiver(0, entries);
  const port = server.port!;
  const env = childProcessEnv(vault, { ...layout.env(0), KVVM_NO_JITTER: '1', KVVM_DEV_POLL_INTERVAL_S: '1' });
  try {
    const ca = createCa('fluentd root');
    const rotate = (): string => {
      const leaf = issueCertificate({ issuer: ca, subjectCn: 'logs.test', serverAuth: false });
      return vault.setSecret('logs', toPemSecret(leaf.keyPem, [leaf.certPem, ca.certPem]), { contentType: 'application/x-pem-file' });
    };
    const v1 = rotate();
    layout.writeSettings(0, {
      secretsManagementSettings: {
        pollingIntervalInS: '3600',
        observedCertificates: [{ url: `${vault.vaultUrl}/secrets/logs`, certificateStoreLocation: store }],
      },
      authenticationSettings: { msiEndpoint: vault.imdsEndpoint },
      loggingSettings: { logger: 'fluentd', endpoint: `tcp://127.0.0.1:${port}`, format: 'forward', servicename: 'kvvm_fluent_test' },
    });
    await run(process.execPath, [CLI, 'enable'], { cwd: layout.extensionFolder, env });

    await until('the install record at the receiver', () => entries.find((e) => String(e.record['message']).includes(`installed version ${v1}`)));
    assert.ok(entries.length > 0 && entries.every((e) => e.tag === 'kvvm_fluent_test'), `tags: ${[...new Set(entries.map((e) => e.tag))].join(', ')}`);
    const started = entries.find((e) => String(e.record['message']).startsWith('service started for sequence 0'));
    assert.ok(started, 'the start record arrived');
    assert.equal(started.record['level'], 'info');
    assert.equal(started.record['component'], 'service');
    const worker = (await readPidFile(join(layout.extensionFolder, 'kvvm-service.pid')))?.pid;
    assert.ok(worker !== undefined);
    assert.equal(started.record['pid'], worker);

    // The receiver goes away; the service polls every second and must keep syncing.
    await server.close();
    const v2 = rotate();
    await until('the rotated version installed with the receiver down', async () => ((await readlink(join(store, 'kvvm.logs'))).includes(v2) ? true : undefined));
    await sleep(2000); // more polls, more records queued against the dead endpoint
    assert.ok(pidAlive(worker), 'the service is alive with the endpoint down');
    assert.equal((await readPidFile(join(layout.extensionFolder, 'kvvm-service.pid')))?.pid, worker, 'and was never restarted');

    // A receiver is back on the same port: records flow again through the reconnect (bounded backoff).
    const before = entries.length;
    server = await receiver(port, entries);
    await until('records after the reconnect', () => (entries.length > before ? true : undefined));
    assert.ok(entries.slice(before).every((e) => e.tag === 'kvvm_fluent_test'));
    console.log(`fluentd: ${before} records before the outage, ${entries.length - before} after the reconnect`);
  } finally {
    await run(process.execPath, [CLI, 'disable'], { cwd: layout.extensionFolder, env }).catch(() => undefined);
    await server.close().catch(() => undefined);
    await vault.close();
    await rm(root, { recursive: true, force: true });
  }
});
