import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decryptArgs } from '../../../handler/protocol/protectedSettingsWindows.js';
import {
  controlAction,
  isNodeBinary,
  ownsService,
  quoteWindowsArg,
  serviceEnvironment,
  serviceHostArgv,
  serviceRegistration,
  serviceStatusFor,
} from '../../../handler/service/windowsServiceConfig.js';
import { supervisorFor } from '../../../handler/service/supervisorFor.js';

/**
 * The exact Service Control Manager and CryptDecryptMessage arguments, as numbers against winsvc.h / wincrypt.h.
 * What Wine does not show (the restart-on-failure flag, LocalMachine keys for protected settings) rests on these.
 */
const reg = serviceRegistration({
  execPath: 'C:\\Packages\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows\\3.0.0\\bin\\node.exe',
  cliScript: 'C:\\Packages\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows\\3.0.0\\lib\\handler\\cli.js',
  launchFile: 'C:\\Packages\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows\\3.0.0\\kvvm-service.launch.json',
});

describe('Windows service registration (CreateServiceW / ChangeServiceConfig2W arguments)', () => {
  it('is an own-process, auto-start LocalSystem service named kvvm', () => {
    assert.equal(reg.serviceName, 'kvvm');
    assert.equal(reg.serviceType, 0x10); // SERVICE_WIN32_OWN_PROCESS
    assert.equal(reg.startType, 0x2); // SERVICE_AUTO_START
    assert.equal(reg.errorControl, 0x1); // SERVICE_ERROR_NORMAL
    assert.equal(reg.account, null); // lpServiceStartName NULL = LocalSystem
  });
  it('node.exe runs cli.js windows-service-host with the launch file, every path quoted', () => {
    assert.equal(
      reg.binaryPathName,
      '"C:\\Packages\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows\\3.0.0\\bin\\node.exe" ' +
        '"C:\\Packages\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows\\3.0.0\\lib\\handler\\cli.js" windows-service-host ' +
        '"C:\\Packages\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows\\3.0.0\\kvvm-service.launch.json"',
    );
  });
  it('the single executable (execPath not node.exe) runs its own windows-service-host command, without cli.js', () => {
    const sea = serviceRegistration({ execPath: 'C:\\ext\\bin\\kvvm.exe', cliScript: 'C:\\ext\\lib\\handler\\cli.js', launchFile: 'C:\\ext\\kvvm-service.launch.json' });
    assert.equal(sea.binaryPathName, '"C:\\ext\\bin\\kvvm.exe" windows-service-host "C:\\ext\\kvvm-service.launch.json"');
    assert.deepEqual(serviceHostArgv({ execPath: 'C:\\ext\\bin\\kvvm.exe', cliScript: undefined, launchFile: 'C:\\l.json' }), [
      'C:\\ext\\bin\\kvvm.exe',
      'windows-service-host',
      'C:\\l.json',
    ]);
  });
  it('tells node from the single executable by the file name only, case-insensitively', () => {
    for (const p of ['C:\\Program Files\\nodejs\\node.exe', 'C:\\x\\NODE.EXE', '/usr/bin/node', 'node']) assert.equal(isNodeBinary(p), true, p);
    for (const p of ['C:\\ext\\bin\\kvvm.exe', 'C:\\node\\kvvm.exe', 'C:\\x\\nodejs.exe', '/opt/kvvm/bin/kvvm']) assert.equal(isNodeBinary(p), false, p);
  });
  it('node without a known CLI script cannot be registered', () => {
    assert.throws(() => serviceHostArgv({ execPath: 'C:\\node\\node.exe', cliScript: undefined, launchFile: 'C:\\l.json' }), /CLI script/);
  });
  it('restarts on failure after 10 s, 60 s, then 5 min, resetting the count after a day, non-crash failures included', () => {
    assert.deepEqual(reg.failureActions, {
      resetPeriodS: 86_400,
      actions: [
        { type: 1, delayMs: 10_000 },
        { type: 1, delayMs: 60_000 },
        { type: 1, delayMs: 300_000 },
      ], // SC_ACTION_RESTART
    });
    assert.equal(reg.failureActionsOnNonCrashFailures, true);
  });
  it('quotes arguments the way CommandLineToArgvW reads them, and refuses a double quote', () => {
    assert.equal(quoteWindowsArg('C:\\a b\\c'), '"C:\\a b\\c"');
    assert.equal(quoteWindowsArg('C:\\dir\\'), '"C:\\dir\\\\"');
    assert.throws(() => quoteWindowsArg('C:\\a"b'));
  });
  it('an existing service is ours only when its binary path names our launch file (case-insensitive)', () => {
    assert.equal(ownsService(reg.binaryPathName.toUpperCase(), 'c:\\packages\\plugins\\microsoft.azure.keyvault.keyvaultforwindows\\3.0.0\\kvvm-service.launch.json'), true);
    assert.equal(ownsService(reg.binaryPathName, 'C:\\Packages\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows\\3.1.0\\kvvm-service.launch.json'), false);
  });
});

describe('Windows service environment carried from enable', () => {
  it('keeps the agent, proxy and CA variables and the known kvvm variables the service reads, and nothing else', () => {
    const env = serviceEnvironment({
      ConfigSequenceNumber: '4',
      AZURE_GUEST_AGENT_EXTENSION_PATH: 'C:\\ext',
      KVVM_EXTRA_VAULT_SUFFIXES: 'localhost',
      NODE_EXTRA_CA_CERTS: 'C:\\ca.pem',
      HTTPS_PROXY: 'http://proxy:3128',
      no_proxy: '169.254.169.254',
      PATH: 'C:\\Windows',
      USERPROFILE: 'C:\\Users\\agent',
      SOME_TOKEN: 'x',
      UNSET: undefined,
      // a test harness's own variable, a typo, and a deploy-only variable: never persisted into the launch file
      KVVM_WINE_FIXTURES: 'Z:\\tmp',
      KVVM_NO_JITER: '1',
      KVVM_ARM_ENDPOINT: 'https://arm.localhost',
      KVVM_RETRY_BASE_MS: undefined,
    });
    assert.deepEqual(env, {
      ConfigSequenceNumber: '4',
      AZURE_GUEST_AGENT_EXTENSION_PATH: 'C:\\ext',
      KVVM_EXTRA_VAULT_SUFFIXES: 'localhost',
      NODE_EXTRA_CA_CERTS: 'C:\\ca.pem',
      HTTPS_PROXY: 'http://proxy:3128',
      no_proxy: '169.254.169.254',
    });
  });
});

describe('SetServiceStatus and the control handler', () => {
  it('start pending, then running accepting STOP and SHUTDOWN', () => {
    assert.deepEqual(serviceStatusFor('starting', 1), {
      dwServiceType: 0x10,
      dwCurrentState: 2,
      dwControlsAccepted: 0,
      dwWin32ExitCode: 0,
      dwServiceSpecificExitCode: 0,
      dwCheckPoint: 1,
      dwWaitHint: 30_000,
    });
    const running = serviceStatusFor('running');
    assert.equal(running.dwCurrentState, 4);
    assert.equal(running.dwControlsAccepted, 0x1 | 0x4);
  });
  it('stop pending gives the service time to finish its step', () => {
    const s = serviceStatusFor('stopping', 3);
    assert.equal(s.dwCurrentState, 3);
    assert.equal(s.dwCheckPoint, 3);
    assert.equal(s.dwWaitHint, 30_000);
  });
  it('a requested stop is a clean stop; an unrequested exit is a service-specific error the SCM restarts', () => {
    assert.deepEqual(
      [serviceStatusFor({ stopped: { exitCode: 0, requested: true } }), serviceStatusFor({ stopped: { exitCode: null, requested: true } })].map((s) => [
        s.dwCurrentState,
        s.dwWin32ExitCode,
        s.dwServiceSpecificExitCode,
      ]),
      [
        [1, 0, 0],
        [1, 0, 0],
      ],
    );
    const crashed = serviceStatusFor({ stopped: { exitCode: 1, requested: false } });
    assert.deepEqual([crashed.dwCurrentState, crashed.dwWin32ExitCode, crashed.dwServiceSpecificExitCode], [1, 1066, 1]);
    const killed = serviceStatusFor({ stopped: { exitCode: null, requested: false } });
    assert.deepEqual([killed.dwWin32ExitCode, killed.dwServiceSpecificExitCode], [1066, 1]);
    const superseded = serviceStatusFor({ stopped: { exitCode: 0, requested: false } });
    assert.equal(superseded.dwWin32ExitCode, 0);
  });
  it('STOP and SHUTDOWN stop, INTERROGATE reports, anything else is not implemented', () => {
    assert.deepEqual(controlAction(1), { action: 'stop', result: 0 });
    assert.deepEqual(controlAction(5), { action: 'stop', result: 0 });
    assert.deepEqual(controlAction(4), { action: 'report', result: 0 });
    assert.deepEqual(controlAction(2), { action: 'ignore', result: 120 }); // PAUSE: ERROR_CALL_NOT_IMPLEMENTED
  });
  it('win32 gets the Windows service supervisor, POSIX the detached-process one', () => {
    assert.notEqual(supervisorFor('win32'), supervisorFor('linux'));
    assert.equal(typeof supervisorFor('win32').startDetached, 'function');
  });
});

describe('CryptDecryptMessage arguments for protected settings', () => {
  it('LocalMachine\\My, read-only, existing store; X509|PKCS7 encoding; one store; silent key access', () => {
    const args = decryptArgs();
    assert.equal(args.location, 'LocalMachine');
    assert.equal(args.storeName, 'MY');
    assert.equal(args.openFlags, 0x20000 | 0x4000 | 0x8000); // CERT_SYSTEM_STORE_LOCAL_MACHINE | OPEN_EXISTING | READONLY
    assert.deepEqual(args.para, { dwMsgAndCertEncodingType: 0x10001, cCertStore: 1, dwFlags: 0x40 });
  });
  it('CurrentUser (the Wine test) differs only in the store location flag', () => {
    const args = decryptArgs('CurrentUser');
    assert.equal(args.openFlags, 0x10000 | 0x4000 | 0x8000);
    assert.deepEqual(args.para, decryptArgs('LocalMachine').para);
  });
});
