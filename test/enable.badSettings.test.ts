/**
 * Every bad-settings case from the catalogue, delivered the way the agent delivers it (a <seq>.settings file),
 * run through `enable`: the status file the agent reads must say error, name what is wrong and how to fix it,
 * enable must exit non-zero, and no service may be started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BAD_SETTINGS } from './fixtures/settings/badCases.js';
import { makeAgentLayout } from './helpers/agentFolder.js';
import { enableCommand } from '../handler/commands/lifecycle.js';
import type { CommandHost } from '../handler/commands/context.js';

test(`enable reports each of the ${BAD_SETTINGS.length} bad settings in the status file with the path and a fix`, async (t) => {
  assert.ok(BAD_SETTINGS.length >= 30);
  const root = await mkdtemp(join(tmpdir(), 'kvvm-enable-bad-'));
  try {
    let seq = 0;
    for (const c of BAD_SETTINGS) {
      await t.test(c.name, async () => {
        // The catalogue is written against kvvm's strict 4.x rules (removed-in-4.0 cases among them).
        const layout = makeAgentLayout(join(root, String(seq)), { version: '4.0.0' });
        layout.writeSettings(seq, c.settings);
        let stderr = '';
        const host: CommandHost = {
          env: { ...layout.env(seq) },
          execPath: process.execPath,
          scriptPath: undefined,
          cwd: layout.extensionFolder,
          platform: c.platform ?? 'linux',
          now: () => new Date('2026-11-23T00:00:00Z'),
          stdout: () => undefined,
          stderr: (s) => {
            stderr += s;
          },
        };
        const code = await enableCommand(host);
        assert.notEqual(code, 0, 'enable exits non-zero on invalid settings');
        const view = await layout.readStatus(seq);
        assert.equal(view.state, 'valid');
        if (view.state !== 'valid') return;
        assert.equal(view.agentStatus, 'error');
        const message = view.message ?? '';
        assert.ok(message.includes(c.mention), `status names the culprit '${c.mention}': ${message}`);
        if (c.path !== '') assert.ok(message.includes(c.path), `status names the path ${c.path}: ${message}`);
        assert.match(message, /Fix: \S/, 'status says how to fix it');
        assert.ok(stderr.length > 0);
        if (c.secret !== undefined) assert.ok(!message.includes(c.secret) && !stderr.includes(c.secret), 'neither the status nor the log repeats the secret');
        await assert.rejects(stat(join(layout.extensionFolder, 'kvvm-service.pid')), 'no service started');
        await assert.rejects(stat(join(layout.extensionFolder, 'mrseq')), 'an invalid configuration is not recorded as applied');
      });
      seq += 1;
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
