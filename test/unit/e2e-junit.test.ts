// The nodes tier counts Kubernetes' e2e results from its JUnit report: a skipped or failed case
// must never be counted as passed.
import { describe, expect, it } from 'vitest';
import { parseJunit } from '../nodes/e2e.ts';

describe('parseJunit', () => {
  it('counts passed, failed (failure or error) and skipped specs, and names the failures', () => {
    const xml = `<?xml version="1.0"?>
<testsuites><testsuite name="Kubernetes e2e suite" tests="5">
  <testcase name="[ReportBeforeSuite]" time="0"></testcase>
  <testcase name="[It] [sig-storage] ok one" time="3"></testcase>
  <testcase name="[It] [sig-storage] ok two" time="1"/>
  <testcase name="[It] [sig-storage] skipped" time="0"><skipped message="not supported"></skipped></testcase>
  <testcase name="[It] [sig-storage] broke &#34;x&#34;" time="9"><failure message="boom">trace</failure></testcase>
  <testcase name="[It] [sig-storage] errored" time="9"><error message="panic"></error></testcase>
  <testcase name="[ReportAfterSuite] Kubernetes e2e suite report" time="0"></testcase>
</testsuite></testsuites>`;
    expect(parseJunit(xml)).toEqual({
      passed: 2,
      failed: 2,
      skipped: 1,
      failures: ['[It] [sig-storage] broke "x"', '[It] [sig-storage] errored'],
    });
  });

  it('does not count the suite’s own nodes as passed specs, but counts them when they fail', () => {
    const xml = `<testsuites><testsuite>
  <testcase name="[ReportBeforeSuite]" time="0"></testcase>
  <testcase name="[SynchronizedBeforeSuite]" time="1"><failure message="no nodes">x</failure></testcase>
  <testcase name="[It] [sig-storage] skipped" time="0"><skipped message="s"></skipped></testcase>
  <testcase name="[ReportAfterSuite] Kubernetes e2e suite report" time="0"></testcase>
</testsuite></testsuites>`;
    expect(parseJunit(xml)).toEqual({
      passed: 0,
      failed: 1,
      skipped: 1,
      failures: ['[SynchronizedBeforeSuite]'],
    });
  });

  it('finds nothing in a report without test cases', () => {
    expect(parseJunit('<testsuites></testsuites>')).toEqual({
      passed: 0,
      failed: 0,
      skipped: 0,
      failures: [],
    });
  });
});
