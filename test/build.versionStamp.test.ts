/** `npm run package -- --version X.Y.Z` stamps the handler version, so one build can ship the 3.x and the 4.x line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs } from '../build/package.js';
import { profileFor } from '../handler/settings/profile.js';
import { versionFromExtensionFolder, detectHandlerVersion } from '../handler/protocol/handlerEnvironment.js';

test('--version is passed to the package build; without it package.json decides', () => {
  assert.equal(parseArgs(['--version', '3.1.0'], '/repo').version, '3.1.0');
  assert.equal(parseArgs([], '/repo').version, undefined);
  assert.throws(() => parseArgs(['--version'], '/repo'), /--version X\.Y\.Z/);
});

test('the handler version: environment variable, else the folder name (Linux and Windows layouts), else the packaged one', () => {
  const packaged = (): string => '4.0.0';
  const linux = '/var/lib/waagent/Microsoft.Azure.KeyVault.KeyVaultForLinux-3.0.2';
  const windows = 'C:\\Packages\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows\\3.1.0.5';
  assert.deepEqual(detectHandlerVersion({ env: { AZURE_GUEST_AGENT_EXTENSION_VERSION: '4.1' }, extensionFolder: linux, packagedVersion: packaged }), {
    version: '4.1',
    source: 'environment',
  });
  assert.deepEqual(detectHandlerVersion({ env: {}, extensionFolder: linux, packagedVersion: packaged }), { version: '3.0.2', source: 'folder' });
  assert.deepEqual(detectHandlerVersion({ env: { AZURE_GUEST_AGENT_EXTENSION_VERSION: 'garbage' }, extensionFolder: windows, packagedVersion: packaged }), {
    version: '3.1.0.5',
    source: 'folder',
  });
  assert.deepEqual(detectHandlerVersion({ env: {}, extensionFolder: '/opt/kvvm', packagedVersion: packaged }), { version: '4.0.0', source: 'package' });
  for (const folder of ['/tmp/x-3.0', '/var/lib/waagent/Microsoft.Azure.KeyVault.KeyVaultForLinux', 'C:\\Packages\\Plugins\\3.0']) {
    assert.equal(versionFromExtensionFolder(folder), undefined, folder);
  }
});

test('major ≤ 3 is the 3.x profile, ≥ 4 the 4.x profile', () => {
  for (const [v, line] of [
    ['1.0', '3.x'],
    ['2.1.3', '3.x'],
    ['3.0', '3.x'],
    ['3.99.1.2', '3.x'],
    ['4.0', '4.x'],
    ['4.0.0', '4.x'],
    ['5.2', '4.x'],
  ] as const) {
    assert.equal(profileFor(v, 'linux', 'option').line, line, v);
  }
});
