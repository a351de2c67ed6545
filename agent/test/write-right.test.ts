// The timing rules of self-fencing (ADR 0006) with a hand-driven clock: the holder fences when its
// right lapses (counted from the send of its last accepted renewal), a new holder waits D + M of an
// unchanged lease on its own clock, and the chosen numbers satisfy the inequalities.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Clock,
  LEASE_SECONDS_RANGE,
  type LeaseApi,
  MemoryLeases,
  RightWatch,
  timingViolations,
  WRITE_RIGHT,
  WriteRight,
  writeRightTiming,
} from '../write-right.ts';

class HandClock implements Clock {
  t = 1_000;
  now(): number {
    return this.t;
  }
}

const { leaseMs: D, renewMs: R, fenceGuardMs: G, takeoverMarginMs: M } = WRITE_RIGHT;

function holder(api: LeaseApi = new MemoryLeases()) {
  const clock = new HandClock();
  const lapses: string[] = [];
  const right = new WriteRight({
    node: 'n1',
    api,
    clock,
    onLapse: async (why) => void lapses.push(why),
  });
  /** Ticks once a second (as the agent does) until `ms` have passed. */
  const run = async (ms: number) => {
    for (let left = ms; left > 0; left -= 1_000) {
      clock.t += Math.min(1_000, left);
      await right.tick();
      await right.settle();
    }
  };
  return { clock, right, lapses, run };
}

describe('the chosen timing', () => {
  it('satisfies every inequality of ADR 0006', () => {
    expect(timingViolations(WRITE_RIGHT)).toEqual([]);
  });

  it("names the inequality a timing breaks: ADR 0002's 30 s ctrl-loss-tmo, no margin, renewals too rare", () => {
    expect(timingViolations({ ...WRITE_RIGHT, remoteCtrlLossTmoSec: 30 })).toEqual([
      expect.stringMatching(/stalled write could complete on the local leg first/),
    ]);
    expect(timingViolations({ ...WRITE_RIGHT, takeoverMarginMs: 0 })).toEqual([
      expect.stringMatching(/new holder could start before/),
      expect.stringMatching(/must be positive/),
    ]);
    expect(timingViolations({ ...WRITE_RIGHT, renewMs: 20_000 })).toEqual([
      expect.stringMatching(/one lost renewal fences/),
    ]);
  });

  it('is the measured ADR 0006 timing at the default 40 s lease', () => {
    expect(WRITE_RIGHT).toMatchObject({
      leaseMs: 40_000,
      renewMs: 10_000,
      fenceGuardMs: 5_000,
      takeoverMarginMs: 10_000,
      remoteCtrlLossTmoSec: 60,
    });
  });

  it('satisfies every inequality for every lease a deployment may choose', () => {
    // all of them: the range is a few hundred whole seconds
    for (let seconds = LEASE_SECONDS_RANGE.min; seconds <= LEASE_SECONDS_RANGE.max; seconds++) {
      expect(timingViolations(writeRightTiming(seconds)), `${seconds} s`).toEqual([]);
    }
  });
});

describe('WriteRight: the holder', () => {
  it('holds nothing before its first accepted renewal, and never fences what it never held', async () => {
    const h = holder();
    expect(h.right.holds()).toBe(false);
    await h.right.tick();
    await h.right.settle();
    expect(h.right.holds()).toBe(true);
    expect(h.right.remainingMs()).toBe(D - G);
    const never = holder({
      renew: () => Promise.reject(new Error('apiserver down')),
      read: async () => undefined,
    });
    await never.run(3 * D);
    expect(never.right.holds()).toBe(false);
    expect(never.lapses).toEqual([]);
    expect(never.right.why()).toMatch(/apiserver down/);
  });

  it('keeps its right while renewals go through, and fences once, G before D after the last one was sent', async () => {
    const leases = new MemoryLeases();
    const sent: number[] = [];
    const h = holder({
      renew: (n, s) => {
        sent.push(h.clock.t);
        return leases.renew(n, s);
      },
      read: (n) => leases.read(n),
    });
    await h.run(5 * D);
    expect(h.lapses).toEqual([]);
    expect(sent.length).toBeGreaterThanOrEqual((5 * D) / R - 1);
    leases.cut.add('n1');
    const lastSent = sent.at(-1) as number;
    await h.run(lastSent + D - G - 1_000 - h.clock.t);
    expect(h.right.holds()).toBe(true);
    expect(h.lapses).toEqual([]);
    await h.run(1_000);
    expect(h.right.holds()).toBe(false);
    expect(h.lapses).toHaveLength(1);
    expect(h.lapses[0]).toMatch(/cannot reach the apiserver/);
    await h.run(2 * D);
    expect(h.lapses).toHaveLength(1);
    // reachable again: the right comes back, and a later lapse fences again
    leases.cut.delete('n1');
    await h.run(3_000);
    expect(h.right.holds()).toBe(true);
    leases.cut.add('n1');
    await h.run(D);
    expect(h.lapses).toHaveLength(2);
  });

  it('counts the right from the send, not the answer: a slow renewal buys no extra time', async () => {
    let answer: (() => void) | undefined;
    const slow: LeaseApi = {
      renew: () =>
        new Promise<void>((resolve) => {
          answer = resolve;
        }),
      read: async () => ({ version: '1', leaseSeconds: D / 1000 }),
    };
    const h = holder(slow);
    const sent = h.clock.t;
    await h.right.tick();
    h.clock.t += 30_000; // the apiserver answers 30 s later
    answer?.();
    await h.right.settle();
    expect(h.right.remainingMs()).toBe(sent + D - G - h.clock.t);
  });

  it('fences on time while a renewal hangs in flight', async () => {
    const leases = new MemoryLeases();
    const h = holder({
      renew: async (n, s) => {
        if (h.clock.t > 20_000) return new Promise<void>(() => {}); // never answers
        return leases.renew(n, s);
      },
      read: (n) => leases.read(n),
    });
    for (let i = 0; i < 80 && h.lapses.length === 0; i++) {
      h.clock.t += 1_000;
      await h.right.tick();
    }
    expect(h.lapses).toHaveLength(1);
    // the last accepted renewal was sent at or before 20 s: the fence came by then + D - G
    expect(h.clock.t).toBeLessThanOrEqual(20_000 + D - G + 1_000);
    // no renewal failed, so the lapse is blamed on renewals not accepted in time (not on a stale
    // start-up message)
    expect(h.lapses[0]).toMatch(/no renewal accepted within 35 s/);
  });
});

describe('RightWatch: the node taking over', () => {
  it('waits D + M of an unchanged lease from its first sight; a renewal starts the wait again', async () => {
    const leases = new MemoryLeases();
    const clock = new HandClock();
    const watch = new RightWatch(leases, clock);
    await leases.renew('n1');
    expect(await watch.waitMs('n1')).toBe(D + M);
    clock.t += D + M - 1;
    expect(await watch.waitMs('n1')).toBe(1);
    await leases.renew('n1');
    expect(await watch.waitMs('n1')).toBe(D + M);
    clock.t += D + M;
    expect(await watch.waitMs('n1')).toBe(0);
    // a node without a lease is waited for the same way (it may hold a right the reader cannot see)
    expect(await watch.waitMs('n9')).toBe(D + M);
    clock.t += D + M;
    expect(await watch.waitMs('n9')).toBe(0);
  });

  it("waits for the holder's own lease when it wrote a longer one (nodes configured differently)", async () => {
    const leases = new MemoryLeases();
    const clock = new HandClock();
    const watch = new RightWatch(leases, clock); // this node: the default 40 s
    const slow = writeRightTiming(120);
    await leases.renew('slow', 120);
    const wait = await watch.waitMs('slow');
    expect(wait).toBe(slow.leaseMs + slow.takeoverMarginMs);
    // the holder's rule: (D + M)(1 - ρ) > D(1 + ρ) with its D
    expect(wait * (1 - WRITE_RIGHT.clockRateError)).toBeGreaterThan(
      slow.leaseMs * (1 + WRITE_RIGHT.clockRateError),
    );
    clock.t += D + M; // this node's own D + M is not enough
    expect(await watch.waitMs('slow')).toBe(wait - (D + M));
    // a holder with a shorter lease is still waited this node's own D + M
    await leases.renew('quick', 10);
    expect(await watch.waitMs('quick')).toBe(D + M);
  });

  it('never lets the new holder start before the old one fenced, whatever the two clocks drift within ρ', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1_000, max: 60_000 }), // when the old holder is cut off, after its first renewal
        fc.double({ min: -WRITE_RIGHT.clockRateError, max: WRITE_RIGHT.clockRateError, noNaN: true }),
        fc.double({ min: -WRITE_RIGHT.clockRateError, max: WRITE_RIGHT.clockRateError, noNaN: true }),
        fc.integer({ min: 0, max: 2_000 }), // how late the watcher's reads see a renewal
        async (cutAt, rateOld, rateNew, seenLate) => {
          // real time in ms; each node's clock runs at (1 + rate) of it
          let real = 0;
          const oldClock = { now: () => real * (1 + rateOld) };
          const newClock = { now: () => real * (1 + rateNew) };
          const leases = new MemoryLeases();
          let fencedAt: number | undefined;
          const right = new WriteRight({
            node: 'old',
            api: leases,
            clock: oldClock,
            onLapse: async () => {
              fencedAt = real;
            },
          });
          // the watcher reads a copy of the lease that lags the apiserver by `seenLate`
          const renewedAt: number[] = [];
          const lagging: LeaseApi = {
            renew: (n) => leases.renew(n),
            read: async () => ({
              version: String(renewedAt.filter((t) => t <= real - seenLate).length),
              leaseSeconds: D / 1000,
            }),
          };
          const watch = new RightWatch(lagging, newClock);
          let tookOverAt: number | undefined;
          for (real = 0; real < cutAt + 3 * D && tookOverAt === undefined; real += 250) {
            if (real >= cutAt) leases.cut.add('old');
            const before = (await leases.read('old'))?.version;
            await right.tick();
            await right.settle();
            if ((await leases.read('old'))?.version !== before) renewedAt.push(real);
            if (real >= cutAt && (await watch.waitMs('old')) === 0) tookOverAt = real;
          }
          expect(fencedAt).toBeDefined();
          expect(tookOverAt).toBeDefined();
          expect(tookOverAt as number).toBeGreaterThan(fencedAt as number);
        },
      ),
      { numRuns: 40 },
    );
  });
});
