// The nodes tier's CI subset of Kubernetes' e2e storage suites is a regular expression built from
// spec names; ginkgo matches it against each spec's whole text. These are texts of e2e.test
// v1.36.3 as its dry run prints them (tags such as [Slow] follow the name).
import { describe, expect, it } from 'vitest';
import { CI_FOCUS, CI_LANES, CI_SKIP, CI_SPECS } from '../nodes/e2e.ts';

const text = (pattern: string, spec: string) =>
  `External Storage [Driver: meshstor.io] [Testpattern: ${pattern}] ${spec}`;

describe('the e2e CI subset', () => {
  const focus = new RegExp(CI_FOCUS);
  const skip = new RegExp(CI_SKIP);

  it('selects each listed spec, with or without tags after it, and skips none of them', () => {
    for (const { pattern, spec } of CI_SPECS) {
      expect(focus.test(text(pattern, spec)), spec).toBe(true);
      expect(focus.test(text(pattern, `${spec} [Slow]`)), spec).toBe(true);
      expect(skip.test(text(pattern, spec)), spec).toBe(false);
    }
  });

  it('puts each spec in exactly one lane', () => {
    expect(CI_LANES.length).toBe(2);
    for (const { pattern, spec } of CI_SPECS)
      expect(
        CI_LANES.filter((lane) => new RegExp(lane).test(text(pattern, spec))),
        spec,
      ).toHaveLength(1);
  });

  it('leaves out the same spec under another pattern and the sibling specs of a suite', () => {
    for (const whole of [
      text('Dynamic PV (default fs)', 'volumes should store data'),
      text(
        'Dynamic PV (default fs)(allowExpansion)',
        'volume-expand should resize volume when PVC is edited while pod is using it',
      ),
      text(
        'Dynamic PV (block volmode)(allowExpansion)',
        'volume-expand should resize volume when PVC is edited and the pod is re-created on the same node after controller resize is finished',
      ),
      text(
        'Dynamic PV (immediate binding)',
        'topology should provision a volume and schedule a pod with AllowedTopologies',
      ),
      'External Storage [Driver: other.io] [Testpattern: Dynamic PV (default fs)] capacity provides storage capacity information',
    ])
      expect(focus.test(whole), whole).toBe(false);
  });
});
