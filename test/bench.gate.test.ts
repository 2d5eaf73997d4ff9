/**
 * CI's benchmark gate (bench/report.ts gateFigure): what fails a quick run and what never can.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { count, gateFigure, gateFigures, HEADROOM, measuredFloor, mergeResults, QUICK_PREFIX, timing as computedTiming, type BenchEntry } from '../bench/report.js';

/** A timing against a floor measured in the same run (the gated kind). */
const timing = (...args: Parameters<typeof computedTiming>): BenchEntry => measuredFloor(computedTiming(...args));

const recordedAs = (e: BenchEntry): BenchEntry => ({ ...e, name: QUICK_PREFIX + e.name });

describe('benchmark gate', () => {
  it('an informational wall time never fails, however far it moved (the "16.5 > 2 x 4.9" case)', () => {
    const recorded = timing('poll 100 rotated: wall', 2474, 500, null, 'ms');
    const busy = timing('poll 100 rotated: wall', 8250, 500, null, 'ms');
    const v = gateFigure(busy, recordedAs(recorded));
    assert.equal(v.kind, 'info');
    assert.equal(v.failed, false);
  });

  it('a count with a target fails as soon as it exceeds it, with or without a recorded baseline', () => {
    assert.equal(gateFigure(count('poll 100 rotated: failures', 0, 1), undefined).failed, false);
    const one = gateFigure(count('poll 100 rotated: failures', 1, 1), undefined);
    assert.equal(one.kind, 'count');
    assert.equal(one.failed, true);
    assert.equal(gateFigure(count('fleet: 429s', 5000, null), undefined).failed, false, 'an informational count is not gated');
  });

  it('vault requests per certificate are gated against their target like counts (no clock in them)', () => {
    const ok = gateFigure(computedTiming('poll unchanged, 100 version(s) in its history: requests per certificate', 1, 1, 1, 'requests'), undefined);
    assert.equal(ok.kind, 'count');
    assert.equal(ok.failed, false);
    assert.equal(gateFigure(computedTiming('poll unchanged, 100 version(s) in its history: requests per certificate', 4, 1, 1, 'requests'), undefined).failed, true);
  });

  it('a targeted ratio fails only above max(target, 3 x recorded ratio)', () => {
    const recorded = recordedAs(timing('enable: wall', 290, 63, 8, 'ms')); // ratio 4.6 → limit 13.8
    const limit = HEADROOM * recorded.ratio;
    const within = gateFigure(timing('enable: wall', 63 * (limit - 0.1), 63, 8, 'ms'), recorded);
    assert.equal(within.kind, 'ratio');
    assert.equal(within.failed, false, 'over its target but within the noise headroom: not a CI failure');
    assert.equal(gateFigure(timing('enable: wall', 63 * (limit + 0.1), 63, 8, 'ms'), recorded).failed, true);
    // A target above 3x the recorded ratio is the limit.
    const small = recordedAs(timing('idle: resident memory', 40, 39, 5, 'MiB'));
    assert.equal(gateFigure(timing('idle: resident memory', 39 * 4.5, 39, 5, 'MiB'), small).failed, false);
    assert.equal(gateFigure(timing('idle: resident memory', 39 * 5.5, 39, 5, 'MiB'), small).failed, true);
  });

  it('a targeted ratio against a computed floor (not measured in the run) is informational, however far load moves it', () => {
    const recorded = recordedAs(computedTiming('poll 100 unchanged: wall', 196, 250, 1.2, 'ms'));
    const busy = gateFigure(computedTiming('poll 100 unchanged: wall', 5474, 250, 1.2, 'ms'), recorded); // measured: 21.9 x on a loaded machine
    assert.equal(busy.kind, 'info');
    assert.equal(busy.failed, false);
  });

  it('a recorded ratio under the floor counts as 1; a ratio without a recorded baseline is informational', () => {
    const idle0 = recordedAs(timing('idle: CPU over 10 s', 0, 10, 2, 'ms'));
    assert.equal(gateFigure(timing('idle: CPU over 10 s', 20, 10, 2, 'ms'), idle0).failed, false);
    assert.equal(gateFigure(timing('idle: CPU over 10 s', 40, 10, 2, 'ms'), idle0).failed, true);
    assert.equal(gateFigure(timing('new figure', 1e6, 1, 2, 'ms'), undefined).kind, 'info');
  });

  it('gateFigures pairs each figure with its "quick: " entry, never a full-run one', () => {
    const full = timing('enable: wall', 100, 100, 8, 'ms'); // ratio 1 under the plain name
    const quick = recordedAs(timing('enable: wall', 500, 100, 8, 'ms')); // ratio 5 → limit 15
    const [v] = gateFigures([full, quick], [timing('enable: wall', 1200, 100, 8, 'ms')]);
    assert.equal(v?.recorded, 5);
    assert.equal(v?.failed, false);
  });

  it('recording a run replaces only the figures of its mode and of the scenarios it ran (--only keeps the rest)', () => {
    const full = [timing('poll 1000 unchanged: wall', 1100, 800, 1.2, 'ms'), timing('enable: wall', 224, 36, 2.5, 'ms')];
    const quick = [timing('poll 100 unchanged: wall', 90, 80, 1.2, 'ms'), timing('enable: wall', 300, 36, 2.5, 'ms'), count('fleet (jitter+backoff): 429s', 3, null)];
    const recorded = [...full, ...quick.map(recordedAs)];
    const onlyEnable = mergeResults(recorded, [timing('enable: wall', 150, 36, 2.5, 'ms')], true, new Set(['enable']));
    assert.deepEqual(
      onlyEnable.map((e) => [e.name, e.value]),
      [
        ['poll 1000 unchanged: wall', 1100],
        ['enable: wall', 224],
        ['quick: poll 100 unchanged: wall', 90],
        ['quick: fleet (jitter+backoff): 429s', 3],
        ['quick: enable: wall', 150],
      ],
    );
    const fullPoll = mergeResults(recorded, [timing('poll 1000 unchanged: wall', 1000, 800, 1.2, 'ms')], false, new Set(['poll']));
    assert.deepEqual(
      fullPoll.map((e) => [e.name, e.value]),
      [['enable: wall', 224], ['poll 1000 unchanged: wall', 1000], ...quick.map((e) => [QUICK_PREFIX + e.name, e.value])],
    );
    const stale = mergeResults([timing('poll 1000 renamed: wall', 1, 1, null, 'ms')], [], false, new Set(['poll']));
    assert.deepEqual(stale, [], 'a figure of a scenario that ran and no longer reports it is dropped');
  });
});
