/**
 * The `akvvm_service` systemd unit: its text, the supervisor script file it runs, and the systemctl commands
 * enable/disable/uninstall issue. NOT run under systemd: neither this machine nor CI boots with systemd as
 * PID 1, so systemctl is replaced by a recorder (the one stand-in in this file); the unit text is checked
 * against systemd's quoting rules, and the script file is parsed by the real /bin/sh (`sh -n`).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeSystemdUnit, startSystemdService, stopSystemdService, systemdBooted, type SystemctlRunner } from '../handler/service/systemdService.js';
import { quoteUnitArg, renderUnit, supervisorScriptFile, SYSTEMD_UNIT_NAME, unitEnvironment, unitOwner } from '../handler/service/systemdUnit.js';
import { DEFAULT_RESTART_POLICY, WORKER_NODE_OPTIONS } from '../handler/service/restartLoop.js';

const root = mkdtempSync(join(tmpdir(), 'kvvm-systemd-'));
after(() => rmSync(root, { recursive: true, force: true }));

function recorder(codes: Record<string, number> = {}): { run: SystemctlRunner; calls: string[][] } {
  const calls: string[][] = [];
  return { calls, run: async (args) => (calls.push(args), codes[args.join(' ')] ?? 0) };
}

describe('the akvvm_service unit text', () => {
  const ext = '/var/lib/waagent/Microsoft.Azure.KeyVault.KeyVaultForLinux-3.0.0';
  const unit = renderUnit({
    extensionFolder: ext,
    version: '3.0.0',
    supervisorScript: `${ext}/kvvm-supervisor.sh`,
    serviceLock: `${ext}/kvvm-service.lock`,
    kvvmCommand: [`${ext}/runtime/node`, `${ext}/lib/handler/cli.js`],
    env: { ConfigSequenceNumber: '7', AZURE_GUEST_AGENT_EXTENSION_PATH: ext, HTTPS_PROXY: 'http://p:3128/a%20$b' },
    outputFile: '/var/log/azure/Microsoft.Azure.KeyVault.KeyVaultForLinux/kvvm-service.out',
  });
  const line = (key: string): string[] =>
    unit
      .split('\n')
      .filter((l) => l.startsWith(`${key}=`))
      .map((l) => l.slice(key.length + 1));

  test('runs the supervisor script with the lock, the restart policy and the packaged runtime', () => {
    const p = DEFAULT_RESTART_POLICY;
    assert.deepEqual(line('ExecStart'), [
      [
        '/bin/sh',
        `${ext}/kvvm-supervisor.sh`,
        `${ext}/kvvm-service.lock`,
        p.baseDelayMs,
        p.maxDelayMs,
        p.crashLoopCount,
        p.windowS,
        p.slowDelayMs,
        `${ext}/runtime/node`,
        ...WORKER_NODE_OPTIONS,
        `${ext}/lib/handler/cli.js`,
      ]
        .map((a) => `"${a}"`)
        .join(' '),
    ]);
    assert.deepEqual(line('WorkingDirectory'), [ext]);
    assert.deepEqual(line('Restart'), ['on-failure']);
    assert.deepEqual(line('KillMode'), ['control-group']);
    assert.deepEqual(line('WantedBy'), ['multi-user.target']);
    assert.match(unit, /^Description=Azure Key Vault VM extension certificate service \(kvvm, KeyVaultForLinux 3\.0\.0\)$/m);
    assert.equal(unitOwner(unit), ext);
  });

  test('environment values are quoted for systemd: % doubled, $ kept (no expansion in Environment=)', () => {
    assert.deepEqual(line('Environment'), [`"AZURE_GUEST_AGENT_EXTENSION_PATH=${ext}"`, '"ConfigSequenceNumber=7"', '"HTTPS_PROXY=http://p:3128/a%%20$b"']);
  });

  test('ExecStart arguments escape quotes, backslashes, newlines, % and $', () => {
    assert.equal(quoteUnitArg('a "b" \\c\nd %e $f', true), '"a \\"b\\" \\\\c\\nd %%e $$f"');
    assert.equal(quoteUnitArg('$HOME', false), '"$HOME"');
  });

  test('only the agent, kvvm, trust, proxy and PATH variables go into the unit', () => {
    assert.deepEqual(
      Object.keys(
        unitEnvironment({
          ConfigSequenceNumber: '1',
          AZURE_GUEST_AGENT_EXTENSION_VERSION: '3.0.0',
          KVVM_NO_JITTER: '1',
          NODE_EXTRA_CA_CERTS: '/x',
          no_proxy: 'h',
          PATH: '/bin',
          HOME: '/root',
          SSH_AUTH_SOCK: '/tmp/s',
          AWS_SECRET: 'x',
        }),
      ).sort(),
      ['AZURE_GUEST_AGENT_EXTENSION_VERSION', 'ConfigSequenceNumber', 'KVVM_NO_JITTER', 'NODE_EXTRA_CA_CERTS', 'PATH', 'no_proxy'],
    );
  });

  test('the supervisor script file parses under the real /bin/sh', () => {
    const file = join(root, 'kvvm-supervisor.sh');
    writeFileSync(file, supervisorScriptFile());
    execFileSync('/bin/sh', ['-n', file]);
  });
});

describe('systemctl steps (recorded, not run under systemd)', () => {
  test('systemd counts as the init system only where /run/systemd/system exists', () => {
    assert.equal(
      systemdBooted((p) => p === '/run/systemd/system'),
      true,
    );
    assert.equal(
      systemdBooted(() => false),
      false,
    );
  });

  test('enable writes the script and the unit, then daemon-reload, enable, restart; a failing step names the command', async () => {
    const ext = join(root, 'ext-a');
    const unitDir = join(root, 'units-a');
    mkdirSync(ext, { recursive: true });
    mkdirSync(unitDir, { recursive: true });
    const files = {
      supervisorPidFile: join(ext, 'kvvm-supervisor.pid'),
      workerPidFile: join(ext, 'kvvm-service.pid'),
      serviceLock: join(ext, 'kvvm-service.lock'),
      outputFile: join(ext, 'out'),
    };
    const rec = recorder({ [`is-active --quiet ${SYSTEMD_UNIT_NAME}`]: 0 });
    await startSystemdService({
      files,
      run: rec.run,
      unitDir,
      workerWaitMs: 200,
      unit: { extensionFolder: ext, version: '3.0.0', kvvmCommand: ['/usr/bin/node', 'cli.js'], env: { ConfigSequenceNumber: '3' } },
    });
    assert.deepEqual(rec.calls.slice(0, 3), [['daemon-reload'], ['enable', SYSTEMD_UNIT_NAME], ['restart', SYSTEMD_UNIT_NAME]]);
    assert.equal(statSync(join(ext, 'kvvm-supervisor.sh')).mode & 0o777, 0o700);
    assert.equal(unitOwner(readFileSync(join(unitDir, SYSTEMD_UNIT_NAME), 'utf8')), ext);

    const failing = recorder({ [`restart ${SYSTEMD_UNIT_NAME}`]: 5 });
    await assert.rejects(
      startSystemdService({
        files,
        run: failing.run,
        unitDir,
        workerWaitMs: 200,
        unit: { extensionFolder: ext, version: '3.0.0', kvvmCommand: ['/usr/bin/node', 'cli.js'], env: {} },
      }),
      (err: Error & { reason?: string }) => err.reason === 'systemctl-failed' && err.message.includes(`systemctl restart ${SYSTEMD_UNIT_NAME} exited with 5`),
    );
  });

  test("uninstall disables and removes this folder's unit, and leaves another version's unit alone", async () => {
    const unitDir = join(root, 'units-b');
    mkdirSync(unitDir, { recursive: true });
    const mine = join(root, 'ext-new');
    const unit = renderUnit({ extensionFolder: mine, version: '3.1.0', supervisorScript: 's', serviceLock: 'l', kvvmCommand: ['n'], env: {}, outputFile: 'o' });
    writeFileSync(join(unitDir, SYSTEMD_UNIT_NAME), unit);

    const old = recorder();
    assert.equal(await removeSystemdUnit(join(root, 'ext-old'), old.run, unitDir), 'not-ours');
    assert.deepEqual(old.calls, []);
    assert.ok(existsSync(join(unitDir, SYSTEMD_UNIT_NAME)));

    const rec = recorder();
    assert.equal(await removeSystemdUnit(mine, rec.run, unitDir), 'removed');
    assert.deepEqual(rec.calls, [['disable', '--now', SYSTEMD_UNIT_NAME], ['daemon-reload']]);
    assert.equal(existsSync(join(unitDir, SYSTEMD_UNIT_NAME)), false);
    assert.equal(await removeSystemdUnit(mine, rec.run, unitDir), 'absent');
  });
});

describe('stopping through systemd (recorded)', () => {
  test('an active unit is stopped and disabled (no start at the next boot); an inactive enabled one is disabled; an absent one is left alone', async () => {
    const ext = join(root, 'ext-stop');
    mkdirSync(ext, { recursive: true });
    const files = {
      supervisorPidFile: join(ext, 'kvvm-supervisor.pid'),
      workerPidFile: join(ext, 'kvvm-service.pid'),
      serviceLock: join(ext, 'kvvm-service.lock'),
      outputFile: join(ext, 'out'),
    };
    const active = recorder();
    assert.equal(await stopSystemdService(files, active.run, 1000), 'stopped');
    assert.deepEqual(active.calls, [
      ['is-active', '--quiet', SYSTEMD_UNIT_NAME],
      ['is-enabled', '--quiet', SYSTEMD_UNIT_NAME],
      ['disable', '--now', SYSTEMD_UNIT_NAME],
    ]);
    const crashed = recorder({ [`is-active --quiet ${SYSTEMD_UNIT_NAME}`]: 3 });
    assert.equal(await stopSystemdService(files, crashed.run, 1000), 'not-running');
    assert.deepEqual(crashed.calls, [
      ['is-active', '--quiet', SYSTEMD_UNIT_NAME],
      ['is-enabled', '--quiet', SYSTEMD_UNIT_NAME],
      ['disable', SYSTEMD_UNIT_NAME],
    ]);
    const absent = recorder({ [`is-active --quiet ${SYSTEMD_UNIT_NAME}`]: 4, [`is-enabled --quiet ${SYSTEMD_UNIT_NAME}`]: 1 });
    assert.equal(await stopSystemdService(files, absent.run, 1000), 'not-running');
    assert.deepEqual(absent.calls, [
      ['is-active', '--quiet', SYSTEMD_UNIT_NAME],
      ['is-enabled', '--quiet', SYSTEMD_UNIT_NAME],
    ]);
  });
});
