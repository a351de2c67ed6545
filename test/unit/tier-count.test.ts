// The tier runner's counting (test/tier-count.ts) on JSON reports captured from vitest 5.1.1
// (`vitest run <file> --reporter=json`, trimmed to the fields it reads; in vitest-reports/):
// - pass.json: a describe with two passing tests and an `it.skip` (exit 0);
// - hook.json: a describe whose beforeAll timed out before its three tests ran (exit 1): vitest
//   reports the three as skipped and numFailedTests 0, the kernel tier's old failure mode;
// - load.json: a test file importing a module that does not exist (exit 1): no test at all;
// - mixed.json: one passing and one failing test (exit 1);
// - unhandled.json: two passing tests and an error thrown from a timer after the first (exit 1):
//   the report says success, only the exit status shows the error.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countTier, type VitestReport } from '../tier-count.ts';

const report = (name: string) =>
  JSON.parse(
    readFileSync(join(import.meta.dirname, 'vitest-reports', `${name}.json`), 'utf8'),
  ) as VitestReport;
const counts = (name: string, exit: number) => {
  const { passed, failed, skipped } = countTier(report(name), exit);
  return { passed, failed, skipped };
};

describe('countTier', () => {
  it('a passing run: passes and an it.skip in a passing file as skipped', () => {
    expect(counts('pass', 0)).toEqual({ passed: 2, failed: 0, skipped: 1 });
    expect(countTier(report('pass'), 0).problems).toEqual([]);
  });

  it('a failed hook: the tests it kept from running count as failed, not skipped', () => {
    expect(counts('hook', 1)).toEqual({ passed: 0, failed: 3, skipped: 0 });
    expect(countTier(report('hook'), 1).problems).toEqual([
      '3 test(s) in hook.test.ts did not run because the file failed (a hook or a suite in it failed)',
    ]);
  });

  it('a file that failed to load counts as one failure with its message', () => {
    expect(counts('load', 1)).toEqual({ passed: 0, failed: 1, skipped: 0 });
    expect(countTier(report('load'), 1).problems[0]).toContain("Cannot find module './no-such-module.ts'");
  });

  it('a failed test counts once; its passing neighbour still passes', () => {
    expect(counts('mixed', 1)).toEqual({ passed: 1, failed: 1, skipped: 0 });
  });

  it('an error outside the tests (only the exit status shows it) counts as a failure', () => {
    expect(counts('unhandled', 1)).toEqual({ passed: 2, failed: 1, skipped: 0 });
    expect(counts('unhandled', 0)).toEqual({ passed: 2, failed: 0, skipped: 0 });
  });

  it('no report at all counts as a failure', () => {
    expect(countTier(undefined, 0)).toMatchObject({ passed: 0, failed: 1 });
  });
});
