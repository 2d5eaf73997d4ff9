import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeAgentLayout } from './helpers/agentFolder.js';
import { updateCommand } from '../handler/commands/lifecycle.js';
import type { CommandHost } from '../handler/commands/context.js';

function host(env: Record<string, string>, cwd: string): CommandHost & { out: string[] } {
  const out: string[] = [];
  return {
    env,
    execPath: process.execPath,
    scriptPath: undefined,
    cwd,
    platform: 'linux',
    now: () => new Date(),
    stdout: (s) => void out.push(s),
    stderr: (s) => void out.push(s),
    out,
  };
}

test('update carries mrseq and kvvm state over from the previous version folder, without overwriting', async () => {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-update-'));
  try {
    const oldLayout = makeAgentLayout(root, { version: '3.0.0' });
    await writeFile(join(oldLayout.extensionFolder, 'mrseq'), '7');
    await mkdir(join(oldLayout.extensionFolder, 'state'), { recursive: true });
    await writeFile(join(oldLayout.extensionFolder, 'state', 'marker.json'), '{"from":"3.0.0"}');
    const newLayout = makeAgentLayout(root, { version: '3.1.0' });
    newLayout.writeSettings(7, { secretsManagementSettings: { observedCertificates: ['https://v.vault.azure.net/secrets/c'] } });
    const env = { ...newLayout.env(7), AZURE_GUEST_AGENT_UPDATING_FROM_VERSION: '3.0.0' };
    const h = host(env, newLayout.extensionFolder);
    assert.equal(await updateCommand(h), 0);
    assert.equal((await readFile(join(newLayout.extensionFolder, 'mrseq'), 'utf8')).trim(), '7');
    assert.equal(await readFile(join(newLayout.extensionFolder, 'state', 'marker.json'), 'utf8'), '{"from":"3.0.0"}');

    // A second update (the agent may retry) must not clobber what the new version has written since.
    await writeFile(join(newLayout.extensionFolder, 'mrseq'), '8');
    assert.equal(await updateCommand(h), 0);
    assert.equal((await readFile(join(newLayout.extensionFolder, 'mrseq'), 'utf8')).trim(), '8');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('update without a previous version folder succeeds and says there was nothing to carry over', async () => {
  const root = await mkdtemp(join(tmpdir(), 'kvvm-update-'));
  try {
    const layout = makeAgentLayout(root, { version: '3.1.0' });
    const h = host({ ...layout.env(0), AZURE_GUEST_AGENT_UPDATING_FROM_VERSION: '2.9.0' }, layout.extensionFolder);
    assert.equal(await updateCommand(h), 0);
    assert.match(h.out.join(''), /nothing to carry over/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
