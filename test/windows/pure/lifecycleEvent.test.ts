import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lifecycleLogLine, raiseRenewalEvent, switchCertificateCommand, type CommandLine, type LifecycleHost } from '../../../handler/stores/windows/lifecycleEvent.js';

/**
 * Event 1001 for IIS Automatic Rebind: the exact powershell.exe command line (no PowerShell under Wine, checked on
 * Windows Server with the commands in docs/windows.md) and what each outcome logs.
 */
const OLD = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const NEW = '0123456789ABCDEF0123456789ABCDEF01234567';
const input = { location: 'LocalMachine' as const, storeName: 'WebHosting', oldThumbprint: OLD, newThumbprint: NEW, systemRoot: 'C:\\Windows' };

function host(exists: boolean, result: { code: number | null; output: string }): LifecycleHost & { runs: CommandLine[] } {
  const runs: CommandLine[] = [];
  return { runs, exists: () => exists, run: async (c) => (runs.push(c), result) };
}

describe('certificate lifecycle event 1001 (Switch-Certificate -NotifyOnly)', () => {
  it('runs Windows PowerShell by absolute path, no profile, non-interactive, with the store path of the certificate', () => {
    const cmd = switchCertificateCommand(input);
    assert.equal(cmd.file, 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe');
    assert.deepEqual(cmd.args.slice(0, 3), ['-NoProfile', '-NonInteractive', '-Command']);
    assert.equal(
      cmd.args[3],
      'if (-not (Get-Command Switch-Certificate -ErrorAction SilentlyContinue)) { Import-Module PKI -ErrorAction SilentlyContinue }; ' +
        'if (-not (Get-Command Switch-Certificate -ErrorAction SilentlyContinue)) { exit 3 }; ' +
        "Switch-Certificate -OldCert (Get-Item -LiteralPath 'Cert:\\LocalMachine\\WebHosting\\A1B2C3D4E5F60718293A4B5C6D7E8F9012345678') " +
        "-NewCert (Get-Item -LiteralPath 'Cert:\\LocalMachine\\WebHosting\\0123456789ABCDEF0123456789ABCDEF01234567') -NotifyOnly -ErrorAction Stop; " +
        "Write-Output 'kvvm:lifecycle-event-raised'",
    );
    assert.equal(cmd.args.length, 4);
  });
  it('quotes store names with spaces and refuses anything that is not a thumbprint', () => {
    assert.match(switchCertificateCommand({ ...input, storeName: 'My Store' }).args[3] ?? '', /'Cert:\\LocalMachine\\My Store\\A1B2/);
    assert.throws(() => switchCertificateCommand({ ...input, newThumbprint: `${NEW.slice(0, 39)}'` }), /thumbprint/);
  });
  it("raised: exit 0 with the script's marker", async () => {
    const h = host(true, { code: 0, output: 'kvvm:lifecycle-event-raised' });
    const outcome = await raiseRenewalEvent(input, h);
    assert.deepEqual(outcome, { raised: true });
    assert.equal(h.runs.length, 1);
    assert.deepEqual(lifecycleLogLine(input, outcome), {
      level: 'info',
      message: `certificate lifecycle event 1001 raised (Switch-Certificate -NotifyOnly) for LocalMachine\\WebHosting: ${OLD} -> ${NEW}`,
    });
  });
  it('no powershell.exe: nothing is run and the log line says why', async () => {
    const h = host(false, { code: 0, output: '' });
    const outcome = await raiseRenewalEvent(input, h);
    assert.equal(h.runs.length, 0);
    assert.equal(outcome.raised, false);
    const line = lifecycleLogLine(input, outcome);
    assert.equal(line.level, 'warn');
    assert.match(line.message, /event 1001 NOT raised .*powershell\.exe does not exist/);
  });
  it("a powershell.exe that exits 0 without running the script (Wine's stub) is not taken for success", async () => {
    const outcome = await raiseRenewalEvent(input, host(true, { code: 0, output: '' }));
    assert.equal(outcome.raised, false);
    assert.match(lifecycleLogLine(input, outcome).message, /NOT raised.*not a working PowerShell/);
  });
  it('no PKI module (exit 3) and a failing Switch-Certificate are told apart', async () => {
    const noPki = await raiseRenewalEvent(input, host(true, { code: 3, output: '' }));
    assert.equal(!noPki.raised && noPki.reason, 'no-pki-module');
    const failed = await raiseRenewalEvent(input, host(true, { code: 1, output: 'Switch-Certificate : Cannot find path\r\nmore' }));
    assert.equal(!failed.raised && failed.reason, 'failed');
    assert.match(lifecycleLogLine(input, failed).message, /exited with 1: Switch-Certificate : Cannot find path;/);
  });
});
