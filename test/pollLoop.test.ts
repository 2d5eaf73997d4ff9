/**
 * The service's initial-sync policy and polling, driven against the real dev vault and the real PEM store with
 * a virtual clock: `sleep` records the delay it was asked for and returns at once, so 25 retries take no time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevVault, type DevVault } from '../handler/devvault/server.js';
import { issueCertificate, toPkcs12Base64 } from '../handler/devvault/certFactory.js';
import { parseSettings } from '../handler/settings/index.js';
import { profileFor } from '../handler/settings/profile.js';
import type { KvvmConfig } from '../handler/settings/config.js';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { makeChainCheck } from '../handler/commands/service.js';
import { DEFAULT_RETRY_POLICY, runPollLoop, type PollLoopDeps, type PollLoopState } from '../handler/service/pollLoop.js';
import { backoffDelayMs as retryDelayMs } from '../handler/vault/backoff.js';
import type { HandlerStatusReport } from '../handler/protocol/status.js';

const env = { KVVM_EXTRA_VAULT_SUFFIXES: 'localhost' };
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface Harness {
  vault: DevVault;
  dir: string;
  config(requireInitialSync: boolean | undefined, names: string[]): KvvmConfig;
  deps(overrides: Partial<PollLoopDeps> & { stopAfter: (reports: HandlerStatusReport[]) => boolean }): {
    deps: PollLoopDeps;
    reports: HandlerStatusReport[];
    delays: number[];
    signal: AbortSignal;
  };
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const vault = await startDevVault({ port: 0 });
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-poll-'));
  const reader = createVaultReader({ authentication: { msiEndpoint: vault.imdsEndpoint }, env, tlsCa: [vault.caCertPem] });
  const store = createPemStore({});
  return {
    vault,
    dir,
    config(requireInitialSync, names) {
      const secretsManagementSettings: Record<string, unknown> = {
        observedCertificates: names.map((n) => ({ url: `${vault.vaultUrl}/secrets/${n}`, certificateStoreLocation: join(dir, 'store') })),
      };
      if (requireInitialSync !== undefined) secretsManagementSettings['requireInitialSync'] = requireInitialSync;
      // The profile whose initial-sync mode each test is about (docs/versions.md): absent → 4.x 'bounded',
      // true → 3.x Windows 'forever', false → 3.x 'none' (4.x refuses false). Only initialSync depends on it here.
      const profile = requireInitialSync === undefined ? profileFor('4.0', 'linux', 'option') : profileFor('3.0', requireInitialSync ? 'win32' : 'linux', 'option');
      const parsed = parseSettings({ secretsManagementSettings, authenticationSettings: { msiEndpoint: vault.imdsEndpoint } }, { platform: 'linux', env, profile });
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
      return parsed.config;
    },
    deps(overrides) {
      const controller = new AbortController();
      const reports: HandlerStatusReport[] = [];
      const delays: number[] = [];
      const deps: PollLoopDeps = {
        sync: { vault: reader, store, parse: parseCertificateSecret, checkChain: makeChainCheck([]), now: () => new Date(), log: silent },
        writeStatus: async (r) => {
          reports.push(r);
          if (overrides.stopAfter(reports)) controller.abort();
        },
        isSuperseded: async () => false,
        sleep: async (ms) => {
          delays.push(ms);
        },
        random: () => 1,
        retry: DEFAULT_RETRY_POLICY,
        concurrency: 4,
        jitter: false,
        initialJitterMs: 0,
        ...overrides,
      };
      return { deps, reports, delays, signal: controller.signal };
    },
    async close() {
      await vault.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function putCertificate(vault: DevVault, name: string): Promise<string> {
  const c = issueCertificate({ subjectCn: `${name}.test`, serverAuth: false });
  return vault.setSecret(name, toPkcs12Base64(c.keyPem, [c.certPem]), { contentType: 'application/x-pkcs12' });
}

test('without requireInitialSync the status stays transitioning, turns error after 25 attempts, then success once the certificate appears', async () => {
  const h = await harness();
  try {
    await putCertificate(h.vault, 'present');
    const config = h.config(undefined, ['present', 'missing']);
    let added = false;
    const run = h.deps({
      stopAfter: (reports) => reports.at(-1)?.status === 'success',
      sleep: async () => {
        // After the give-up, the operator fixes the vault; the next poll must turn the status to success.
        if (run.reports.at(-1)?.status === 'error' && !added) {
          added = true;
          await putCertificate(h.vault, 'missing');
        }
        run.delays.push(0);
      },
    });
    await runPollLoop(config, run.deps, run.signal);
    const states = run.reports.map((r) => r.status);
    assert.equal(states[0], 'transitioning');
    assert.equal(states.filter((s) => s === 'transitioning').length, 1 + 24, 'starting + 24 retries');
    assert.equal(states[25], 'error');
    assert.equal(states.at(-1), 'success');
    assert.match(run.reports[25]!.message, /25 attempts/);
    assert.match(run.reports[25]!.message, /missing/);
    const missing = run.reports[25]!.substatus?.find((s) => s.name.endsWith('/missing'));
    assert.equal(missing?.status, 'error');
  } finally {
    await h.close();
  }
});

test('retry delays grow and are capped', () => {
  const delays = Array.from({ length: 25 }, (_, i) => retryDelayMs(i + 1, DEFAULT_RETRY_POLICY, () => 1));
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! >= delays[i - 1]!, `delay ${i}`);
  assert.equal(delays[0], DEFAULT_RETRY_POLICY.baseDelayMs);
  assert.equal(delays.at(-1), DEFAULT_RETRY_POLICY.maxDelayMs);
  const total = delays.reduce((a, b) => a + b, 0);
  assert.ok(total < 90 * 60_000, 'all attempts fit in the agent’s 90-minute sequencing wait');
});

test('requireInitialSync true keeps retrying past 25 attempts and never reports error', async () => {
  const h = await harness();
  try {
    const config = h.config(true, ['missing']);
    const run = h.deps({ stopAfter: (reports) => reports.length >= 40 });
    await runPollLoop(config, run.deps, run.signal);
    assert.ok(
      run.reports.every((r) => r.status === 'transitioning'),
      run.reports.map((r) => r.status).join(','),
    );
    assert.match(run.reports.at(-1)!.message, /attempt 39\b/);
  } finally {
    await h.close();
  }
});

test('requireInitialSync false reports success as soon as polling starts, with the failing certificate in its substatus', async () => {
  const h = await harness();
  try {
    await putCertificate(h.vault, 'present');
    const config = h.config(false, ['present', 'missing']);
    const run = h.deps({ stopAfter: (reports) => reports.length >= 2 });
    await runPollLoop(config, run.deps, run.signal);
    assert.deepEqual(
      run.reports.map((r) => r.status),
      ['success', 'success'],
    );
    const sub = run.reports[1]!.substatus ?? [];
    assert.equal(sub.find((s) => s.name.endsWith('/present'))?.status, 'success');
    assert.equal(sub.find((s) => s.name.endsWith('/missing'))?.status, 'error');
    assert.match(sub.find((s) => s.name.endsWith('/missing'))!.message, /secret-not-found|not found/i);
    assert.equal(run.delays.at(-1), config.pollingIntervalS * 1000);
  } finally {
    await h.close();
  }
});

test('a superseded service exits without touching the status', async () => {
  const h = await harness();
  try {
    const config = h.config(undefined, ['missing']);
    const run = h.deps({ stopAfter: () => false, isSuperseded: async () => true });
    assert.equal(await runPollLoop(config, run.deps, run.signal), 'superseded');
    assert.equal(run.reports.length, 0);
  } finally {
    await h.close();
  }
});

test('a slow certificate does not hold back the status: the results known so far are written while it runs, under the same top-level state', { timeout: 60_000 }, async () => {
  const h = await harness();
  try {
    await putCertificate(h.vault, 'fast');
    const slow = issueCertificate({ subjectCn: 'slow.test', serverAuth: false });
    const slowValue = toPkcs12Base64(slow.keyPem, [slow.certPem]);
    h.vault.setSecret('slow', slowValue, { contentType: 'application/x-pkcs12' });
    const config = h.config(undefined, ['fast', 'slow']);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const stop = new AbortController();
    const reports: HandlerStatusReport[] = [];
    const base = h.deps({ stopAfter: () => false }).deps;
    const deps: PollLoopDeps = {
      ...base,
      progressWriteMs: 20,
      // The slow certificate's parse (a PFX at its CPU budget, say) waits until an interim status has been written.
      sync: { ...base.sync, parse: async (value, contentType) => (value === slowValue ? await held : undefined, parseCertificateSecret(value, contentType)) },
      writeStatus: async (r) => {
        reports.push(r);
        if (/Sync in progress/.test(r.message) && r.substatus?.some((s) => s.name.endsWith('/fast') && s.status === 'success')) release();
        if (r.status === 'success') stop.abort();
      },
    };
    await runPollLoop(config, deps, stop.signal);
    const interim = reports.find((r) => /Sync in progress/.test(r.message));
    assert.ok(interim, reports.map((r) => r.message).join('\n'));
    assert.equal(interim.status, 'transitioning', 'the top-level state is the one before (initial sync under way)');
    assert.match(interim.message, /1 of 2 certificates in place, 1 not yet checked/);
    const last = reports.at(-1)!;
    assert.equal(last.status, 'success', last.message);
    assert.ok(reports.indexOf(interim) < reports.indexOf(last), 'the interim write comes before the end-of-cycle one');
    assert.doesNotMatch(last.message, /Sync in progress/);
  } finally {
    await h.close();
  }
});

test('a loop that rests hands its state to the next process: no starting status, the same attempt count, short waits slept in place', async () => {
  const h = await harness();
  try {
    await putCertificate(h.vault, 'present');
    const config = h.config(undefined, ['present', 'missing']);
    const saved: Array<{ state: PollLoopState; delayMs: number }> = [];
    const rest = {
      minMs: 10_000,
      save: async (state: PollLoopState, delayMs: number) => {
        saved.push({ state: JSON.parse(JSON.stringify(state)) as PollLoopState, delayMs });
        return true;
      },
    };
    // First process: starting, then retries whose waits (2, 3, 4.5, 6.75 s) are slept in place; the next (10.1 s) is rested.
    const first = h.deps({ stopAfter: () => false, rest });
    assert.equal(await runPollLoop(config, first.deps, first.signal), 'resting');
    assert.deepEqual(first.delays, [2000, 3000, 4500, 6750]);
    assert.equal(saved.length, 1);
    assert.ok(saved[0]!.delayMs >= 10_000);
    assert.equal(saved[0]!.state.attempt, 5);
    assert.match(first.reports[0]!.message, /Initial sync of 2 certificates started/);
    // The next process goes on from there: its first status is attempt 6's, not a new start.
    const second = h.deps({ stopAfter: () => false, rest, resume: saved[0]!.state });
    assert.equal(await runPollLoop(config, second.deps, second.signal), 'resting');
    assert.doesNotMatch(second.reports[0]!.message, /started/);
    assert.match(second.reports[0]!.message, /attempt 6 of 25 failed/);
    // The certificate arrives; the next wake reports success and rests for the poll interval; the one after stays success.
    await putCertificate(h.vault, 'missing');
    const third = h.deps({ stopAfter: () => false, rest, resume: saved.at(-1)!.state });
    assert.equal(await runPollLoop(config, third.deps, third.signal), 'resting');
    assert.deepEqual(
      third.reports.map((r) => r.status),
      ['success'],
    );
    assert.equal(saved.at(-1)!.delayMs, config.pollingIntervalS * 1000);
    const fourth = h.deps({ stopAfter: () => false, rest, resume: saved.at(-1)!.state });
    assert.equal(await runPollLoop(config, fourth.deps, fourth.signal), 'resting');
    assert.deepEqual(
      fourth.reports.map((r) => r.status),
      ['success'],
    );
    assert.equal(saved.at(-1)!.state.provisioned, true);
    // A state that cannot be saved (a full disk): the process sleeps through the wait itself and polls on.
    const unsaved = h.deps({ stopAfter: (reports) => reports.length >= 2, rest: { minMs: 10_000, save: async () => false }, resume: saved.at(-1)!.state });
    assert.equal(await runPollLoop(config, unsaved.deps, unsaved.signal), 'stopped');
    assert.equal(unsaved.delays[0], config.pollingIntervalS * 1000, 'slept in place');
    assert.deepEqual(
      unsaved.reports.map((r) => r.status),
      ['success', 'success'],
      'and polled again',
    );
  } finally {
    await h.close();
  }
});
