import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { validateHandlerManifest } from '../handler/protocol/manifest.js';
import { packageRoot } from '../handler/paths.js';

const run = promisify(execFile);

test('the HandlerManifest.json at the root is one the agent accepts, and every command it names runs', async () => {
  const root = packageRoot();
  const verdict = validateHandlerManifest(JSON.parse(await readFile(join(root, 'HandlerManifest.json'), 'utf8')));
  assert.ok(verdict.ok, verdict.ok ? '' : verdict.reason);
  const commands = Object.values(verdict.manifest.commands);
  assert.equal(commands.length, 5);
  for (const command of commands) {
    const [exe, sub] = command.split(' ');
    await access(join(root, exe!), constants.X_OK);
    // The agent runs the command with a shell from the extension folder; --help proves the wiring without side effects.
    const { stdout } = await run('/bin/sh', ['-c', `${command} --help`], { cwd: root });
    assert.match(stdout, new RegExp(`Usage: kvvm ${sub}`));
  }
});
