import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvvmError } from '../handler/errors.js';
import { REASONS, codeOf, type Reason } from '../handler/reasons.js';

describe('the reason catalogue', () => {
  it('gives every reason a meaning and a status code of the extension-platform convention', () => {
    for (const [reason, entry] of Object.entries(REASONS)) {
      // kebab-case; a version keeps its dot ('removed-in-4.0' is documented and shown in status files).
      assert.match(reason, /^[a-z0-9]+(-[a-z0-9]+(\.[0-9]+)?)*$/, `${reason}: kebab-case`);
      assert.ok(entry.meaning.length > 10, `${reason}: says what it means`);
      assert.ok([1, -1, 2].includes(entry.code), `${reason}: code ${entry.code} is 1 (user), -1 (system) or 2 (usage)`);
    }
  });

  it('a KvvmError takes its status code from the catalogue unless the throw site overrides it', () => {
    const cases: Array<[Reason, number]> = [
      ['forbidden', 1],
      ['service-start', -1],
      ['usage', 2],
      ['status-invalid', -1],
    ];
    for (const [reason, code] of cases) {
      assert.equal(new KvvmError(reason, 'm').code, code, reason);
      assert.equal(codeOf(reason), code, reason);
    }
    assert.equal(new KvvmError('windows-api', 'access denied', { code: 1 }).code, 1);
  });
});
