/**
 * onChange commands with real processes: the poll loop against the real dev vault and PEM store (virtual clock),
 * the real command runner spawning a recorder script through node. Nothing here is mocked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCa, issueCertificate, toPkcs12Base64 } from '../handler/devvault/certFactory.js';
import { parseSettings } from '../handler/settings/index.js';
import { createVaultReader } from '../handler/vault/secretsClient.js';
import { createPemStore } from '../handler/stores/pemStore.js';
import { parseCertificateSecret } from '../handler/certs/parse.js';
import { makeChainCheck } from '../handler/commands/service.js';
import { DEFAULT_RETRY_POLICY, runPollLoop } from '../handler/service/pollLoop.js';
import type { HandlerStatusReport } from '../handler/protocol/status.js';
import { createConsumerHooks } from '../handler/consumers/hooks.js';
import { runCommand } from '../handler/consumers/runCommand.js';
import { executableExists } from '../handler/consumers/executable.js';
import { startTestVault, type TestVault } from './helpers/devVault.js';
import { makeAgentLayout } from './helpers/agentFolder.js';
import { enableCommand } from '../handler/commands/lifecycle.js';
import type { CommandHost } from '../handler/commands/context.js';

const logLines: Array<{ level: string; message: string; meta?: Record<string, unknown> }> = [];
const log = {
  info: (message: string, meta?: Record<string, unknown>) => void logLines.push({ level: 'info', message, ...(meta ? { meta } : {}) }),
  warn: (message: string, meta?: Record<string, unknown>) => void logLines.push({ level: 'warn', message, ...(meta ? { meta } : {}) }),
  error: (message: string, meta?: Record<string, unknown>) => void logLines.push({ level: 'error', message, ...(meta ? { meta } : {}) }),
};

/** Appends one JSON line per run: its argv (after the script) and every KVVM_* variable; exits with argv's "exit=N". */
const RECORDER = `
import { appendFileSync } from 'node:fs';
const [out, ...args] = process.argv.slice(2);
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('KVVM_')));
appendFileSync(out, JSON.stringify({ args, env, path: process.env.PATH }) + '\\n');
const code = args.find((a) => a.startsWith('exit='));
if (code) { process.stderr.write('reload failed: config test\\nsecond line\\n'); process.exit(Number(code.slice(5))); }
`;

interface Run {
  args: string[];
  env: Record<string, string>;
}

async function setup(): Promise<{ tv: TestVault; dir: string; recorder: string; runs: () => Run[]; out: string; close(): Promise<void> }> {
  const tv = await startTestVault();
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-onchange-'));
  const recorder = join(dir, 'recorder.mjs');
  await writeFile(recorder, RECORDER);
  const out = join(dir, 'runs.jsonl');
  const runs = (): Run[] =>
    existsSync(out)
      ? readFileSync(out, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Run)
      : [];
  return {
    tv,
    dir,
    recorder,
    out,
    runs,
    close: async () => {
      await tv.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function putCertificate(tv: TestVault, name: string): string {
  const ca = createCa(`${name} CA`);
  const c = issueCertificate({ issuer: ca, subjectCn: `${name}.test`, serverAuth: false });
  return tv.vault.setSecret(name, toPkcs12Base64(c.keyPem, [c.certPem, ca.certPem]), { contentType: 'application/x-pkcs12' });
}

/**
 * Runs the poll loop for `cycles` cycles; before cycle i (1-based, after the first), `between[i]` runs (e.g. a
 * rotation in the vault). Returns every status written after a cycle.
 */
async function poll(tv: TestVault, settings: Record<string, unknown>, cycles: number, between: Record<number, () => void> = {}): Promise<HandlerStatusReport[]> {
  const parsed = parseSettings(
    { secretsManagementSettings: settings, authenticationSettings: { msiEndpoint: tv.vault.imdsEndpoint } },
    { platform: 'linux', env: tv.env, executableExists },
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const controller = new AbortController();
  const reports: HandlerStatusReport[] = [];
  let cycle = 1;
  await runPollLoop(
    parsed.config,
    {
      sync: { vault: createVaultReader(tv.readerOptions()), store: createPemStore({}), parse: parseCertificateSecret, checkChain: makeChainCheck([]), now: () => new Date(), log },
      writeStatus: async (r) => {
        if (r.substatus?.length) reports.push(r);
        if (reports.length >= cycles) controller.abort();
      },
      isSuperseded: async () => false,
      sleep: async () => {
        cycle += 1;
        between[cycle]?.();
      },
      random: () => 0.5,
      retry: DEFAULT_RETRY_POLICY,
      concurrency: 4,
      jitter: false,
      initialJitterMs: 0,
      afterCycle: createConsumerHooks({ platform: 'linux', serviceEnv: { PATH: '/usr/bin:/bin', SECRET_THING: 'x' }, run: runCommand, log }),
    },
    controller.signal,
  );
  return reports;
}

test('a rotation runs the command once per change with the documented environment; unchanged polls run nothing', async () => {
  const s = await setup();
  try {
    const v1 = putCertificate(s.tv, 'web');
    putCertificate(s.tv, 'api');
    const store = join(s.dir, 'store');
    let v2 = '';
    const command = { command: [process.execPath, s.recorder, s.out, 'reload'] };
    const reports = await poll(
      s.tv,
      {
        onChange: command,
        observedCertificates: [
          { url: `${s.tv.vault.vaultUrl}/secrets/web`, certificateStoreLocation: store, formats: ['pem', 'key'] },
          { url: `${s.tv.vault.vaultUrl}/secrets/api`, certificateStoreLocation: store },
        ],
      },
      4,
      {
        3: () => {
          v2 = putCertificate(s.tv, 'web');
        },
      },
    );
    const runs = s.runs();
    // cycle 1: both installed, one shared command → one run; cycle 2: unchanged; cycle 3: web rotated; cycle 4: unchanged.
    assert.equal(runs.length, 2, JSON.stringify(runs.map((r) => r.env['KVVM_CHANGED_CERTIFICATES'])));
    assert.equal(runs[0]!.env['KVVM_CHANGED_COUNT'], '2');
    assert.equal(runs[0]!.env['KVVM_CHANGED_CERTIFICATES'], `kvvm/web kvvm/api`);
    assert.equal(runs[0]!.env['KVVM_VERSION'], v1);
    assert.equal(runs[0]!.env['KVVM_PREVIOUS_VERSION'], '');
    const rotated = runs[1]!;
    assert.deepEqual(rotated.args, ['reload']);
    assert.equal(rotated.env['KVVM_CHANGED_COUNT'], '1');
    assert.equal(rotated.env['KVVM_CERTIFICATE_NAME'], 'web');
    assert.equal(rotated.env['KVVM_VAULT_NAME'], 'kvvm');
    assert.equal(rotated.env['KVVM_VAULT_URL'], s.tv.vault.vaultUrl);
    assert.equal(rotated.env['KVVM_VERSION'], v2);
    assert.equal(rotated.env['KVVM_PREVIOUS_VERSION'], v1);
    const active = reports[2]!.substatus!.find((x) => x.name === 'kvvm/web')!;
    assert.match(active.message, new RegExp(`version ${v2}, thumbprint ${rotated.env['KVVM_THUMBPRINT']}, expires ${rotated.env['KVVM_NOT_AFTER']}`));
    assert.equal(rotated.env['KVVM_LINK_PATH'], join(store, 'kvvm.web'));
    assert.equal(rotated.env['KVVM_FILE_PATH'], join(store, `kvvm.web.${v2}.PEM`));
    assert.equal(rotated.env['KVVM_KEY_PATH'], join(store, 'kvvm.web.key'));
    assert.equal(rotated.env['KVVM_PFX_PATH'], undefined, 'only the formats asked for');
    assert.notEqual(rotated.env['KVVM_PREVIOUS_THUMBPRINT'], rotated.env['KVVM_THUMBPRINT']);
    // The link the command is told about already points at the new version when it runs.
    assert.ok((await readFile(rotated.env['KVVM_LINK_PATH'], 'utf8')).includes('PRIVATE KEY'));
    assert.equal(reports[2]!.substatus!.find((x) => x.name === 'kvvm/web')!.status, 'success');
    assert.match(reports[2]!.substatus!.find((x) => x.name === 'kvvm/web')!.message, /onChange command .* succeeded/);
  } finally {
    await s.close();
  }
});

test('a failing command leaves the new version installed, is reported with its exit code and stderr, and is not retried on an unchanged poll', async () => {
  const s = await setup();
  try {
    putCertificate(s.tv, 'web');
    let v2 = '';
    const reports = await poll(
      s.tv,
      {
        observedCertificates: [
          { url: `${s.tv.vault.vaultUrl}/secrets/web`, certificateStoreLocation: join(s.dir, 'store'), onChange: { command: [process.execPath, s.recorder, s.out, 'exit=3'] } },
        ],
      },
      4,
      {
        2: () => {
          v2 = putCertificate(s.tv, 'web');
        },
      },
    );
    assert.equal(s.runs().length, 2, 'first install and the rotation; the unchanged polls after them run nothing');
    for (const i of [1, 2, 3]) {
      const sub = reports[i]!.substatus![0]!;
      assert.equal(sub.status, 'warning', `cycle ${i + 1}`);
      assert.match(sub.message, new RegExp(`version ${v2}`));
      assert.match(sub.message, /exited with code 3: reload failed: config test\./);
    }
    assert.equal(reports[3]!.status, 'success', 'the extension itself is fine');
    const link = await readFile(join(s.dir, 'store', 'kvvm.web'), 'utf8');
    assert.ok(link.length > 0);
    const line = logLines.find((l) => l.level === 'warn' && /exited with code 3/.test(l.message));
    assert.match(String(line?.meta?.['stderr']), /reload failed/);
  } finally {
    await s.close();
  }
});

test('shell metacharacters in arguments reach the program literally', async () => {
  const s = await setup();
  try {
    putCertificate(s.tv, 'web');
    const marker = join(s.dir, 'pwned');
    const tricky = [`$(touch ${marker})`, `; touch ${marker}`, '`id`', '*', 'a b', "'quoted'", '"$HOME"', '|', '&&', '>x', '$KVVM_VERSION'];
    await poll(
      s.tv,
      {
        observedCertificates: [
          { url: `${s.tv.vault.vaultUrl}/secrets/web`, certificateStoreLocation: join(s.dir, 'store'), onChange: { command: [process.execPath, s.recorder, s.out, ...tricky] } },
        ],
      },
      1,
    );
    assert.deepEqual(s.runs()[0]!.args, tricky);
    assert.equal(existsSync(marker), false);
  } finally {
    await s.close();
  }
});

test('the command gets only PATH and the KVVM_ variables from the service environment', async () => {
  const s = await setup();
  try {
    putCertificate(s.tv, 'web');
    const dump = join(s.dir, 'env.json');
    const script = join(s.dir, 'env.mjs');
    await writeFile(script, `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(dump)}, JSON.stringify(process.env));`);
    await poll(
      s.tv,
      {
        observedCertificates: [{ url: `${s.tv.vault.vaultUrl}/secrets/web`, certificateStoreLocation: join(s.dir, 'store'), onChange: { command: [process.execPath, script] } }],
      },
      1,
    );
    const env = JSON.parse(await readFile(dump, 'utf8')) as Record<string, string>;
    assert.equal(env['SECRET_THING'], undefined);
    assert.equal(env['PATH'], '/usr/bin:/bin');
    assert.deepEqual(
      Object.keys(env).filter((k) => !k.startsWith('KVVM_') && k !== 'PATH'),
      [],
    );
  } finally {
    await s.close();
  }
});

/** Gone: no such process, or a zombie waiting for its reaper (it runs nothing any more). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function waitGone(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 100 && !pids.every(isGone); i++) await sleep(20);
  return pids.filter((p) => !isGone(p));
}

test('a hanging command is killed at its limit with its whole process group, even when it ignores SIGTERM', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-hang-'));
  try {
    const pids = join(dir, 'pids');
    // The shell ignores SIGTERM and starts a background child: only the group SIGKILL after the grace ends both.
    const script = `trap "" TERM; sleep 300 & echo $! > ${pids}; echo $$ >> ${pids}; echo started; while :; do sleep 1; done`;
    const outcome = await runCommand(['/bin/sh', '-c', script], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 300, killGraceMs: 200 });
    assert.equal(outcome.timedOut, true);
    assert.equal(outcome.signal, 'SIGKILL');
    assert.match(outcome.stdout, /started/);
    const started = (await readFile(pids, 'utf8')).trim().split('\n').map(Number);
    assert.equal(started.length, 2);
    assert.deepEqual(await waitGone(started), [], 'no process of the group survives');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a command that exits leaves no background process of its group behind', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-orphan-'));
  try {
    const pids = join(dir, 'pids');
    const outcome = await runCommand(['/bin/sh', '-c', `sleep 300 & echo $! > ${pids}`], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 60_000 });
    assert.equal(outcome.exitCode, 0);
    assert.deepEqual(await waitGone([Number((await readFile(pids, 'utf8')).trim())]), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a timed-out command is reported in the substatus through the poll loop', async () => {
  const s = await setup();
  try {
    putCertificate(s.tv, 'web');
    const reports = await poll(
      s.tv,
      {
        observedCertificates: [
          { url: `${s.tv.vault.vaultUrl}/secrets/web`, certificateStoreLocation: join(s.dir, 'store'), onChange: { command: ['/bin/sleep', '300'], timeoutInS: 1 } },
        ],
      },
      1,
    );
    const sub = reports[0]!.substatus![0]!;
    assert.equal(sub.status, 'warning');
    assert.match(sub.message, /onChange command \/bin\/sleep did not finish within 1 s and was killed with its process group/);
  } finally {
    await s.close();
  }
});

test('captured output is size-capped and redacted', async () => {
  const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';
  const outcome = await runCommand(['/bin/sh', '-c', `printf '%s\\n' "$K"; head -c 100000 /dev/zero | tr '\\0' 'x'`], {
    env: { PATH: '/usr/bin:/bin', K: key },
    timeoutMs: 60_000,
    maxOutputBytes: 4096,
  });
  assert.equal(outcome.exitCode, 0);
  assert.ok(!outcome.stdout.includes('MIIEvQ'));
  assert.match(outcome.stdout, /\[redacted PEM\]/);
  assert.ok(outcome.stdout.length <= 4096);
  assert.ok(outcome.droppedBytes >= 100000 - 4096);
});

test('a command that cannot start is reported, not thrown', async () => {
  const outcome = await runCommand(['/nonexistent/kvvm-reload'], { env: {}, timeoutMs: 1000 });
  assert.equal(outcome.exitCode, null);
  assert.match(outcome.spawnError ?? '', /ENOENT/);
});

test('relative, missing and non-executable command paths are settings errors naming the JSON path and the fix', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kvvm-exe-'));
  try {
    const notExecutable = join(dir, 'reload.sh');
    await writeFile(notExecutable, '#!/bin/sh\n');
    await chmod(notExecutable, 0o644);
    const url = 'https://myvault.vault.azure.net/secrets/web';
    const cases: Array<{ where: 'global' | 'cert'; command: string[]; reason: string }> = [
      { where: 'cert', command: ['systemctl', 'reload', 'nginx'], reason: 'on-change-not-absolute' },
      { where: 'cert', command: ['./reload.sh'], reason: 'on-change-not-absolute' },
      { where: 'cert', command: ['bin/reload'], reason: 'on-change-not-absolute' },
      { where: 'global', command: ['nginx', '-s', 'reload'], reason: 'on-change-not-absolute' },
      { where: 'cert', command: ['/usr/sbin/kvvm-does-not-exist'], reason: 'on-change-not-found' },
      { where: 'global', command: ['/usr/sbin/kvvm-does-not-exist'], reason: 'on-change-not-found' },
      { where: 'cert', command: [dir], reason: 'on-change-not-found' },
      { where: 'cert', command: [notExecutable], reason: 'on-change-not-found' },
    ];
    for (const c of cases) {
      const onChange = { command: c.command };
      const settings =
        c.where === 'global'
          ? { secretsManagementSettings: { onChange, observedCertificates: [{ url }] } }
          : { secretsManagementSettings: { observedCertificates: [{ url, onChange }] } };
      const result = parseSettings(settings, { platform: 'linux', env: {}, executableExists });
      assert.equal(result.ok, false, JSON.stringify(c));
      if (result.ok) continue;
      const p = result.problems[0]!;
      assert.equal(p.reason, c.reason, JSON.stringify(c));
      assert.equal(p.path, c.where === 'global' ? '/secretsManagementSettings/onChange/command/0' : '/secretsManagementSettings/observedCertificates/0/onChange/command/0');
      assert.match(p.fix, c.reason === 'on-change-not-absolute' ? /full path/ : /Install the program or correct the path/);
    }
    // Shape errors come from the schema, with the path too.
    for (const [onChange, path] of [
      [{ command: 'systemctl reload nginx' }, '/secretsManagementSettings/observedCertificates/0/onChange/command'],
      [{ command: [] }, '/secretsManagementSettings/observedCertificates/0/onChange/command'],
      [{ command: ['/bin/true'], timeoutInS: 0 }, '/secretsManagementSettings/observedCertificates/0/onChange/timeoutInS'],
      [{ command: ['/bin/true'], timeoutInS: 86400 }, '/secretsManagementSettings/observedCertificates/0/onChange/timeoutInS'],
      [{ command: Array.from({ length: 65 }, () => 'x') }, '/secretsManagementSettings/observedCertificates/0/onChange/command'],
    ] as const) {
      const result = parseSettings({ secretsManagementSettings: { observedCertificates: [{ url, onChange }] } }, { platform: 'linux', env: {}, executableExists });
      assert.equal(result.ok, false, JSON.stringify(onChange));
      if (!result.ok)
        assert.ok(
          result.problems.some((p) => p.path.startsWith(path)),
          `${JSON.stringify(onChange)}: ${JSON.stringify(result.problems)}`,
        );
    }
    // An unknown key (as every unknown key since the version profiles) is ignored with a warning naming it.
    const shell = parseSettings(
      { secretsManagementSettings: { observedCertificates: [{ url, onChange: { command: ['/bin/true'], shell: true } }] } },
      { platform: 'linux', env: {}, executableExists },
    );
    assert.ok(shell.ok && shell.config.warnings.some((w) => w.path === '/secretsManagementSettings/observedCertificates/0/onChange/shell'));
    // Deploying from a workstation does not check the VM's files; the absolute-path rule still holds there.
    assert.equal(
      parseSettings({ secretsManagementSettings: { observedCertificates: [{ url, onChange: { command: ['/usr/sbin/only-on-the-vm'] } }] } }, { platform: 'linux', env: {} }).ok,
      true,
    );
    const win = parseSettings(
      { secretsManagementSettings: { observedCertificates: [{ url, onChange: { command: ['powershell.exe', '-File', 'x.ps1'] } }] } },
      { platform: 'win32', env: {} },
    );
    assert.equal(win.ok, false);
    if (!win.ok) assert.equal(win.problems[0]!.reason, 'on-change-not-absolute');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('enable refuses an onChange executable that does not exist on the machine, naming the path and the fix, and starts nothing', async () => {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-onchange-enable-'));
  try {
    const layout = makeAgentLayout(root);
    layout.writeSettings(0, {
      secretsManagementSettings: {
        observedCertificates: [{ url: 'https://myvault.vault.azure.net/secrets/web', onChange: { command: ['/usr/sbin/kvvm-no-such-reload', 'now'] } }],
      },
    });
    const host: CommandHost = {
      env: { ...layout.env(0) },
      execPath: process.execPath,
      scriptPath: undefined,
      cwd: layout.extensionFolder,
      platform: 'linux',
      now: () => new Date(),
      stdout: () => undefined,
      stderr: () => undefined,
    };
    assert.notEqual(await enableCommand(host), 0);
    const view = await layout.readStatus(0);
    assert.equal(view.state, 'valid');
    if (view.state !== 'valid') return;
    assert.equal(view.agentStatus, 'error');
    assert.match(view.message ?? '', /\/secretsManagementSettings\/observedCertificates\/0\/onChange\/command\/0/);
    assert.match(view.message ?? '', /kvvm-no-such-reload" does not exist on this machine/);
    assert.match(view.message ?? '', /Fix: Install the program or correct the path/);
    await assert.rejects(readFile(join(layout.extensionFolder, 'kvvm-service.pid')), 'no service started');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
