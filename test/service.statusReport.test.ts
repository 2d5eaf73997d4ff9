/**
 * The status report's summary line (service/statusReport.ts, a pure function of the cycle's results): a certificate
 * whose refresh failed while an earlier version stays installed and active counts as in place, and the line says
 * it is at an earlier version; one that was never installed does not count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildStatusReport } from '../handler/service/statusReport.js';
import type { CertificateSyncResult } from '../handler/engine/certificateSync.js';
import type { ObservedCertificate } from '../handler/settings/config.js';

const cert = (name: string): ObservedCertificate => ({ vaultName: 'vault', secretName: name }) as ObservedCertificate;
const nextPollAt = new Date('2026-12-02T15:00:00Z');

const installed: CertificateSyncResult = { cert: cert('a'), state: 'unchanged', changed: false, activeVersion: 'v1', thumbprint: 'AA', notAfter: new Date('2027-01-01T00:00:00Z') };
const failedKept: CertificateSyncResult = {
  cert: cert('b'),
  state: 'error',
  changed: false,
  activeVersion: 'v7',
  thumbprint: 'BB',
  message: 'The vault could not be reached.',
  reason: 'vault-unreachable',
};
const failedNew: CertificateSyncResult = { cert: cert('c'), state: 'error', changed: false, message: 'Access denied.', reason: 'forbidden' };

test('a certificate whose refresh failed with an earlier version still active counts as in place, and says so', () => {
  const report = buildStatusReport({ mode: 'bounded', phase: { kind: 'polling', nextPollAt }, expected: 2, results: [installed, failedKept], warnings: [] });
  assert.equal(report.status, 'success');
  assert.match(
    report.message,
    /^2 of 2 certificates in place \(1 at an earlier version: refreshing it failed\); 1 failed on the last poll: vault\/b: The vault could not be reached\./,
  );
  assert.match(report.substatus?.[1]?.message ?? '', /Currently installed: version v7, thumbprint BB/);
});

test('a certificate never installed does not count as in place', () => {
  const report = buildStatusReport({
    mode: 'bounded',
    phase: { kind: 'retrying', attempt: 2, maxAttempts: 25, nextRetryAt: nextPollAt },
    expected: 3,
    results: [installed, failedKept, failedNew],
    warnings: [],
  });
  assert.equal(report.status, 'transitioning');
  assert.match(report.message, /^Initial sync: 2 of 3 certificates in place \(1 at an earlier version: refreshing it failed\); attempt 2 of 25 failed/);
});

test('with every certificate synced the line is the plain count', () => {
  const report = buildStatusReport({ mode: 'bounded', phase: { kind: 'polling', nextPollAt }, expected: 1, results: [installed], warnings: [] });
  assert.match(report.message, /^1 of 1 certificates in place; next poll at 2026-12-02T15:00:00\.000Z\.$/);
});
