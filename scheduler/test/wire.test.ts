// The prioritize answer as sent (wire.ts sparsePriorities) ranks every candidate exactly as the
// full answer would, under kube-scheduler's rule: total = other plugins + Score × weight × 10, and
// a host missing from the answer adds nothing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HostPriority, sparsePriorities } from '../wire.ts';

/** The hosts kube-scheduler could pick (highest total) given an extender answer. */
function best(others: Map<string, number>, answer: readonly HostPriority[], weight: number): string[] {
  const ext = new Map(answer.map((h) => [h.Host, h.Score * weight * 10]));
  let top = Number.NEGATIVE_INFINITY;
  const totals = [...others].map(([host, s]) => [host, s + (ext.get(host) ?? 0)] as const);
  for (const [, t] of totals) top = Math.max(top, t);
  return totals.filter(([, t]) => t === top).map(([h]) => h);
}

const candidates = fc
  .uniqueArray(fc.stringMatching(/^node-[0-9]{1,4}$/), { minLength: 1, maxLength: 60 })
  .chain((hosts) =>
    fc.tuple(
      fc.constant(hosts),
      fc.array(fc.integer({ min: 0, max: 10 }), { minLength: hosts.length, maxLength: hosts.length }),
      fc.array(fc.integer({ min: 0, max: 400 }), { minLength: hosts.length, maxLength: hosts.length }),
      fc.integer({ min: 1, max: 5 }),
    ),
  );

describe('sparsePriorities', () => {
  it('leaves every ordering of candidates as the full answer gives it, whatever the other plugins scored', () => {
    fc.assert(
      fc.property(candidates, ([hosts, scores, otherScores, weight]) => {
        const full = hosts.map((Host, i) => ({ Host, Score: scores[i] as number }));
        const sent = sparsePriorities(full);
        const others = new Map(hosts.map((h, i) => [h, otherScores[i] as number]));
        expect(best(others, sent, weight)).toEqual(best(others, full, weight));
        // every pair keeps its order, not only the winners
        const total = (answer: readonly HostPriority[], h: string) =>
          (others.get(h) ?? 0) + (answer.find((x) => x.Host === h)?.Score ?? 0) * weight * 10;
        for (const a of hosts.slice(0, 8))
          for (const b of hosts.slice(0, 8))
            expect(Math.sign(total(sent, a) - total(sent, b))).toBe(
              Math.sign(total(full, a) - total(full, b)),
            );
      }),
    );
  });

  it('sends only hosts above the lowest score, each at most once, within 1..10', () => {
    fc.assert(
      fc.property(candidates, ([hosts, scores]) => {
        const full = hosts.map((Host, i) => ({ Host, Score: scores[i] as number }));
        const sent = sparsePriorities(full);
        const lowest = Math.min(...scores);
        expect(sent.map((h) => h.Host)).toEqual(full.filter((h) => h.Score > lowest).map((h) => h.Host));
        for (const h of sent) expect(h.Score).toBeGreaterThanOrEqual(1);
        for (const h of sent) expect(h.Score).toBeLessThanOrEqual(10);
      }),
    );
  });

  it('answers nothing when every candidate scores the same, and nothing for no candidates', () => {
    expect(
      sparsePriorities([
        { Host: 'a', Score: 3 },
        { Host: 'b', Score: 3 },
      ]),
    ).toEqual([]);
    expect(sparsePriorities([])).toEqual([]);
  });
});
