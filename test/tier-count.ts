// How `npm test` counts one vitest tier from vitest's JSON report and its exit status. A test that
// did not run because its file failed (a hook that threw or timed out, a suite that failed to load)
// counts as failed, never as skipped; so does an error vitest saw outside any test (it shows only
// in the exit status). Only a test that was skipped in a file that passed counts as skipped.

/** The part of vitest's JSON reporter output (`--reporter=json`) this reads. */
export interface VitestReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numFailedTestSuites: number;
  testResults: {
    name: string;
    /** 'failed' when the file failed to load, a hook in it failed, or a test in it failed. */
    status: string;
    /** The file's own error (e.g. a module that failed to load); empty for a failed hook. */
    message: string;
    assertionResults: { fullName: string; status: string }[];
  }[];
}

export interface TierCount {
  passed: number;
  failed: number;
  skipped: number;
  /** One line per failure that is not a failed test: why the counts include it. */
  problems: string[];
}

/**
 * Counts of one vitest tier. `report` is undefined when vitest wrote none; `exit` is vitest's exit
 * status (null when it died by a signal).
 */
export function countTier(report: VitestReport | undefined, exit: number | null): TierCount {
  if (!report) return { passed: 0, failed: 1, skipped: 0, problems: ['vitest wrote no JSON report'] };
  const count: TierCount = {
    passed: report.numPassedTests,
    failed: report.numFailedTests,
    skipped: report.numPendingTests + report.numTodoTests,
    problems: [],
  };
  for (const file of report.testResults) {
    if (file.status !== 'failed') continue;
    const notRun = file.assertionResults.filter((t) => t.status !== 'passed' && t.status !== 'failed');
    const why = file.message ? `: ${file.message}` : ' (a hook or a suite in it failed)';
    if (notRun.length > 0) {
      count.skipped -= notRun.length;
      count.failed += notRun.length;
      count.problems.push(
        `${notRun.length} test(s) in ${file.name} did not run because the file failed${why}`,
      );
    } else if (!file.assertionResults.some((t) => t.status === 'failed')) {
      count.failed += 1;
      count.problems.push(`${file.name} failed outside its tests${why}`);
    }
  }
  if (count.failed === 0 && report.numFailedTestSuites > 0) {
    count.failed += 1;
    count.problems.push(`${report.numFailedTestSuites} suite(s) failed with no failed test`);
  }
  if (count.failed === 0 && exit !== 0) {
    count.failed += 1;
    count.problems.push(
      `vitest exited ${exit ?? 'by a signal'} with no failed test: an error outside the tests`,
    );
  }
  return count;
}
