import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KvvmError } from '../handler/errors.js';
import {
  OMITTED_SUBSTATUS_NAME,
  STATUS_LIMITS,
  readStatus,
  renderStatusDocument,
  statusFilePath,
  validateStatusDocument,
  writeStatus,
  type HandlerStatusReport,
  type SubStatus,
} from '../handler/protocol/status.js';
import { guestAgentVectorsDir } from './helpers/vectors.js';

const agentVectors = guestAgentVectorsDir;

const root = mkdtempSync(join(tmpdir(), 'kvvm-status-'));
after(() => rmSync(root, { recursive: true, force: true }));
const NOW = new Date('2026-01-01T00:00:00.789Z');
const NAME = 'Microsoft.Azure.KeyVault.KeyVaultForLinux';

type Rendered = {
  version: number;
  timestampUTC: string;
  status: {
    name: string;
    operation: string;
    status: string;
    code: number;
    formattedMessage: { lang: string; message: string };
    substatus?: Array<{ name: string; status: string; code: number; formattedMessage: { lang: string; message: string } }>;
  };
};
function rendered(report: HandlerStatusReport): { text: string; doc: Rendered } {
  const text = renderStatusDocument(NAME, report, NOW);
  const doc = (JSON.parse(text) as Rendered[])[0]!;
  return { text, doc };
}

describe('writeStatus', () => {
  test('writes <seq>.status in the agent format and it round-trips through the agent rules', async () => {
    const report: HandlerStatusReport = {
      operation: 'Enable',
      status: 'success',
      code: 0,
      message: 'All 2 certificates installed',
      substatus: [{ name: 'https://v.vault.azure.net/secrets/a', status: 'success', code: 0, message: 'installed, expires 2027-01-01' }],
    };
    await writeStatus(root, 5, NAME, report, NOW);
    const text = readFileSync(join(root, '5.status'), 'utf8');
    assert.ok(text.startsWith('[{"version":1.0,"timestampUTC":"2026-01-01T00:00:00Z","status":{'), text);
    const doc = JSON.parse(text) as Rendered[];
    assert.equal(doc.length, 1);
    assert.deepEqual(doc[0]!.status, {
      name: NAME,
      operation: 'Enable',
      status: 'success',
      code: 0,
      formattedMessage: { lang: 'en-US', message: 'All 2 certificates installed' },
      substatus: [{ name: 'https://v.vault.azure.net/secrets/a', status: 'success', code: 0, formattedMessage: { lang: 'en-US', message: 'installed, expires 2027-01-01' } }],
    });
    assert.deepEqual(validateStatusDocument(doc), { ok: true });
    const view = await readStatus(statusFilePath(root, 5));
    assert.equal(view.state, 'valid');
    assert.equal(view.agentStatus, 'success');
    assert.ok(view.state === 'valid' && view.message === 'All 2 certificates installed' && view.operation === 'Enable' && !view.exceedsAgentLimit);
    assert.deepEqual(
      readdirSync(root).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  test('a report without substatus has no substatus key', () => {
    assert.equal('substatus' in rendered({ operation: 'Install', status: 'transitioning', code: 0, message: '' }).doc.status, false);
  });

  test('an invalid report is refused and nothing is written', async () => {
    const bad = [
      { operation: 'Enable', status: 'Success', code: 0, message: 'x' },
      { operation: 'Enable', status: 'success', code: 1.5, message: 'x' },
      { operation: '', status: 'success', code: 0, message: 'x' },
      { operation: 'Enable', status: 'success', code: 0, message: 'x', substatus: [{ name: 'n', status: 'ok', code: 0, message: '' }] },
    ] as unknown as HandlerStatusReport[];
    for (const report of bad) {
      await assert.rejects(writeStatus(root, 77, NAME, report, NOW), (err: unknown) => err instanceof KvvmError && err.reason === 'status-invalid');
    }
    assert.equal((await readStatus(statusFilePath(root, 77))).state, 'missing');
  });

  test('the top message is cut to 1024 characters with an ellipsis, without splitting an emoji', () => {
    const { doc } = rendered({ operation: 'Enable', status: 'error', code: 5, message: `${'a'.repeat(1022)}😀😀😀` });
    const message = doc.status.formattedMessage.message;
    assert.ok(message.length <= STATUS_LIMITS.topMessageChars);
    assert.ok(message.endsWith('…'));
    assert.equal(message, `${'a'.repeat(1022)}…`);
  });

  test('each substatus message is cut to 10 KiB of UTF-8', () => {
    const { doc } = rendered({ operation: 'Enable', status: 'error', code: 5, message: 'm', substatus: [{ name: 'n', status: 'error', code: 1, message: 'é'.repeat(20_000) }] });
    const message = doc.status.substatus![0]!.formattedMessage.message;
    assert.ok(Buffer.byteLength(message) <= STATUS_LIMITS.substatusMessageBytes);
    assert.ok(Buffer.byteLength(message) > STATUS_LIMITS.substatusMessageBytes - 8);
    assert.ok(message.endsWith('…'));
  });

  test('too many substatus entries: the most severe are kept, the rest summarised in one entry, the file stays well under 128 KiB', () => {
    const substatus: SubStatus[] = [];
    for (let i = 0; i < 400; i++) substatus.push({ name: `cert-${i}`, status: 'success', code: 0, message: 'x'.repeat(2000) });
    substatus[350] = { name: 'cert-350', status: 'error', code: 7, message: 'forbidden' };
    substatus[399] = { name: 'cert-399', status: 'warning', code: 0, message: 'expires soon' };
    const { text, doc } = rendered({ operation: 'Enable', status: 'error', code: 7, message: 'm', substatus });
    assert.ok(Buffer.byteLength(text) <= STATUS_LIMITS.fileBytes, `${Buffer.byteLength(text)} bytes`);
    assert.deepEqual(validateStatusDocument(JSON.parse(text)), { ok: true });
    const entries = doc.status.substatus!;
    const names = entries.map((e) => e.name);
    assert.ok(names.includes('cert-350') && names.includes('cert-399'), 'error and warning kept');
    assert.ok(names.indexOf('cert-350') < names.indexOf('cert-399'), 'original order kept');
    const summary = entries.at(-1)!;
    assert.equal(summary.name, OMITTED_SUBSTATUS_NAME);
    assert.equal(summary.status, 'success'); // only successes were left out
    const omitted = 400 - (entries.length - 1);
    assert.match(summary.formattedMessage.message, new RegExp(`^${omitted} more substatus entries omitted .*\\(${omitted} success\\)`));
  });

  test('the summary carries the worst status of what it replaces', () => {
    const substatus: SubStatus[] = Array.from({ length: 200 }, (_, i) => ({ name: `c${i}`, status: 'error' as const, code: 3, message: 'y'.repeat(1500) }));
    const { doc } = rendered({ operation: 'Enable', status: 'error', code: 3, message: 'm', substatus });
    const summary = doc.status.substatus!.at(-1)!;
    assert.equal(summary.name, OMITTED_SUBSTATUS_NAME);
    assert.equal(summary.status, 'error');
    assert.equal(summary.code, 3);
  });

  test('concurrent writers never expose a partially written file to a reader', async () => {
    const dir = mkdtempSync(join(root, 'race-'));
    const file = statusFilePath(dir, 1);
    await writeStatus(dir, 1, NAME, { operation: 'Enable', status: 'transitioning', code: 0, message: 'start' }, NOW);
    let writing = true;
    let reads = 0;
    const reader = (async () => {
      while (writing) {
        const text = await readFile(file, 'utf8');
        const doc: unknown = JSON.parse(text); // throws (fails the test) on a torn file
        assert.deepEqual(validateStatusDocument(doc), { ok: true });
        reads++;
      }
    })();
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 150; i++) {
        const substatus = Array.from({ length: 1 + ((i * 7 + w) % 20) }, (_, k) => ({
          name: `w${w}-${k}`,
          status: 'success' as const,
          code: 0,
          message: 'z'.repeat(500 * ((k + i) % 5)),
        }));
        await writeStatus(dir, 1, NAME, { operation: 'Enable', status: 'transitioning', code: 0, message: `writer ${w} write ${i}`, substatus }, NOW);
      }
    });
    await Promise.all(writers);
    writing = false;
    await reader;
    assert.ok(reads > 0);
    assert.deepEqual(readdirSync(dir), ['1.status']);
  });
});

describe('validateStatusDocument and readStatus: the agent judgement', () => {
  test("the agent's sample-status.json is valid (string substatus code and null formattedMessage included)", async () => {
    const view = await readStatus(join(agentVectors(), 'sample-status.json'));
    assert.equal(view.state, 'valid');
    assert.equal(view.agentStatus, 'success');
  });

  test("the agent's invalid fixtures are rejected: broken JSON, and no status/status key", async () => {
    const broken = await readStatus(join(agentVectors(), 'sample-status-invalid-json-format.json'));
    assert.equal(broken.state, 'invalid');
    assert.equal(broken.agentStatus, 'error');
    assert.ok(broken.state === 'invalid' && /not valid JSON/.test(broken.reason));
    const doc: unknown = JSON.parse(readFileSync(join(agentVectors(), 'sample-status-invalid-status-no-status-status-key.json'), 'utf8'));
    assert.deepEqual(validateStatusDocument(doc), { ok: false, reason: 'missing key: status/status' });
  });

  test('a missing status file is what the agent reports as transitioning', async () => {
    assert.deepEqual(await readStatus(join(root, 'nope', '0.status')), { state: 'missing', agentStatus: 'transitioning' });
  });

  const ok = { status: 'success', formattedMessage: { lang: 'en-US', message: 'm' } };
  const cases: Array<[string, unknown, RegExp | null]> = [
    ['not an array', { status: ok }, /array/],
    ['null', null, /array/],
    ['empty array', [], /empty/],
    ['[null]', [null], /missing key: status/],
    ['no status', [{ version: 1 }], /missing key: status$/],
    ['status a string', [{ status: 'success' }], /status\/status/],
    ['capitalised status', [{ status: { ...ok, status: 'Success' } }], /"Success" is not one of/],
    ['formattedMessage without lang', [{ status: { ...ok, formattedMessage: { message: 'm' } } }], /formattedMessage\/lang/],
    ['formattedMessage without message', [{ status: { ...ok, formattedMessage: { lang: 'en-US' } } }], /formattedMessage\/message/],
    ['formattedMessage a string', [{ status: { ...ok, formattedMessage: 'm' } }], /must be an object/],
    ['substatus an object', [{ status: { ...ok, substatus: {} } }], /substatus must be an array/],
    ['substatus without status', [{ status: { ...ok, substatus: [{ name: 'x' }] } }], /substatus\[0\]\/status/],
    ['substatus with a bad status', [{ status: { ...ok, substatus: [{ status: 'done' }] } }], /substatus\[0\]\/status "done"/],
    ['substatus bad formattedMessage', [{ status: { ...ok, substatus: [{ status: 'error', formattedMessage: { lang: 'en' } }] } }], /substatus\[0\]\/formattedMessage\/message/],
    [
      'null formattedMessage, null substatus entries and null substatus list',
      [{ status: { status: 'warning', formattedMessage: null, substatus: [null, { status: 'error', formattedMessage: null }] } }],
      null,
    ],
    ['substatus null', [{ status: { ...ok, substatus: null } }], null],
    ['only [0] is judged', [{ status: ok }, 'garbage'], null],
  ];
  for (const [label, doc, expected] of cases) {
    test(`${label} → ${expected ? 'rejected' : 'accepted'}`, () => {
      const verdict = validateStatusDocument(doc);
      if (expected === null) assert.deepEqual(verdict, { ok: true });
      else {
        assert.equal(verdict.ok, false);
        assert.ok(!verdict.ok && expected.test(verdict.reason), !verdict.ok ? verdict.reason : '');
      }
    });
  }
});
