// The time-bounded right to acknowledge writes (ADR 0006). A node may run an array only while it
// holds its right: a coordination.k8s.io Lease per node, renewed through the apiserver. The holder
// counts its right from when it SENT its last accepted renewal; a node that wants to take a volume
// over counts from when it SAW the holder's lease last change, on its own clock. Neither reads the
// other's wall clock, so clock skew cannot shorten the wait; only the rate error of the two clocks
// counts, and the margin covers it. Both clocks are injected (tests drive them by hand).
//
// The numbers and why they hold together are `WRITE_RIGHT` and `timingViolations` below; the
// argument is in docs/adr/0006-self-fencing.md.

/** A monotonic clock in milliseconds (performance.now() in the agent). */
export interface Clock {
  now(): number;
}

export const monotonicClock: Clock = { now: () => performance.now() };

export interface WriteRightTiming {
  /** D: how long one accepted renewal lets the holder acknowledge writes (from its send time). */
  leaseMs: number;
  /** R: how often the holder renews. */
  renewMs: number;
  /** G: the holder starts fencing this long before its right ends; a fence finishes well within it. */
  fenceGuardMs: number;
  /** M: a new holder waits D + M of unchanged lease, seen on its own clock, before it assembles. */
  takeoverMarginMs: number;
  /** L: ctrl-loss-tmo of remote legs: a write stalled on a cut leg is failed on it after about L. */
  remoteCtrlLossTmoSec: number;
  /** The reconnect delay of remote legs (nvme connect --reconnect-delay): L is counted in its steps. */
  reconnectDelaySec: number;
  /** ρ: the largest rate error assumed between two nodes' monotonic clocks (crystals: ~1e-4). */
  clockRateError: number;
}

export const WRITE_RIGHT: WriteRightTiming = {
  leaseMs: 40_000,
  renewMs: 10_000,
  fenceGuardMs: 5_000,
  takeoverMarginMs: 10_000,
  remoteCtrlLossTmoSec: 60,
  reconnectDelaySec: 1,
  clockRateError: 1e-3,
};

/**
 * The inequalities the timing must satisfy (empty when all hold):
 * 1. the holder tolerates a lost renewal: D - G >= 2R;
 * 2. the new holder starts after the old holder's right ended, in real time:
 *    (D + M)(1 - ρ) > D(1 + ρ);
 * 3. a write stalled on a cut remote leg cannot complete on the local leg alone before the
 *    holder's right ended (the cut comes at or after the last accepted renewal was sent):
 *    L - reconnect delay > D(1 + ρ).
 */
export function timingViolations(t: WriteRightTiming): string[] {
  const out: string[] = [];
  const { leaseMs: D, renewMs: R, fenceGuardMs: G, takeoverMarginMs: M, clockRateError: p } = t;
  if (D - G < 2 * R) out.push(`D - G (${D - G} ms) < 2R (${2 * R} ms): one lost renewal fences`);
  if ((D + M) * (1 - p) <= D * (1 + p))
    out.push(`(D + M)(1 - ρ) <= D(1 + ρ): a new holder could start before the old right ended`);
  const stall = (t.remoteCtrlLossTmoSec - t.reconnectDelaySec) * 1000;
  if (stall <= D * (1 + p))
    out.push(`L - delay (${stall} ms) <= D(1 + ρ): a stalled write could complete on the local leg first`);
  if (G <= 0 || R <= 0 || M <= 0) out.push('G, R and M must be positive');
  return out;
}

/** A node's lease as the apiserver keeps it. */
export interface LeaseApi {
  /** Creates or renews `node`'s lease; resolves only once the apiserver accepted the write. */
  renew(node: string, leaseSeconds: number): Promise<void>;
  /** An opaque version of `node`'s lease that changes on every renewal; undefined when it has none. */
  version(node: string): Promise<string | undefined>;
}

export interface WriteRightOptions {
  node: string;
  api: LeaseApi;
  clock?: Clock | undefined;
  timing?: WriteRightTiming | undefined;
  /** Called once each time the right lapses (fences every array running here); must not throw. */
  onLapse: (why: string) => Promise<void>;
  /** Told of each renewal that failed (the agent logs it). */
  onRenewError?: ((message: string) => void) | undefined;
}

/** The holder's side: renews, and fences this node's arrays when its right lapses. */
export class WriteRight {
  private readonly o: WriteRightOptions;
  private readonly clock: Clock;
  readonly timing: WriteRightTiming;
  /** Until when (on this clock) writes may be acknowledged; -Infinity before the first renewal. */
  private validUntil = Number.NEGATIVE_INFINITY;
  private nextRenewAt = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  private lapsed = true;
  private lastError = 'no renewal accepted yet';
  private timer: NodeJS.Timeout | undefined;

  constructor(o: WriteRightOptions) {
    this.o = o;
    this.clock = o.clock ?? monotonicClock;
    this.timing = o.timing ?? WRITE_RIGHT;
  }

  /** Whether this node may acknowledge writes now (its right runs past the fence guard). */
  holds(): boolean {
    return this.clock.now() < this.validUntil - this.timing.fenceGuardMs;
  }

  /** Why it does not hold the right (for refusals and logs). */
  why(): string {
    return this.lastError;
  }

  /** Milliseconds of right left before the fence starts (negative once lapsed). */
  remainingMs(): number {
    return this.validUntil - this.timing.fenceGuardMs - this.clock.now();
  }

  /**
   * One step of the renewer: starts a renewal when one is due and none is in flight, and fences
   * when the right has lapsed. A renewal stuck in flight does not delay the fence.
   */
  async tick(): Promise<void> {
    if (!this.inFlight && this.clock.now() >= this.nextRenewAt) {
      this.inFlight = this.renew().finally(() => {
        this.inFlight = undefined;
      });
    }
    await this.check();
  }

  /** Waits for the renewal in flight (tests; the agent's first renewal before it serves). */
  async settle(): Promise<void> {
    await this.inFlight;
    await this.check();
  }

  private async renew(): Promise<void> {
    const sent = this.clock.now();
    this.nextRenewAt = sent + this.timing.renewMs;
    try {
      await this.o.api.renew(this.o.node, Math.ceil(this.timing.leaseMs / 1000));
      // counted from the send: the apiserver may have stored it at any moment after it
      this.validUntil = Math.max(this.validUntil, sent + this.timing.leaseMs);
      if (this.holds()) this.lapsed = false;
      // what a later lapse is blamed on, unless a failed renewal says more
      this.lastError = `lease of node ${this.o.node}: no renewal accepted within ${(this.timing.leaseMs - this.timing.fenceGuardMs) / 1000} s (the last one accepted took ${Math.round(this.clock.now() - sent)} ms)`;
    } catch (e) {
      this.lastError = `lease of node ${this.o.node} not renewed: ${e instanceof Error ? e.message : String(e)}`;
      this.o.onRenewError?.(this.lastError);
      // retry sooner than the period, still bounded
      this.nextRenewAt = sent + Math.min(this.timing.renewMs, 2_000);
    }
  }

  private async check(): Promise<void> {
    if (this.holds() || this.lapsed) return;
    this.lapsed = true;
    await this.o.onLapse(this.lastError);
  }

  /** Ticks every `everyMs` (1 s: the fence starts at most this late into the guard G). */
  start(everyMs = 1_000): void {
    const loop = () => {
      void this.tick().finally(() => {
        if (this.timer) this.timer = setTimeout(loop, everyMs);
      });
    };
    this.timer = setTimeout(loop, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * The side of a node that wants to take a volume over: another node's right has ended once its
 * lease has not changed for D + M on this node's clock. The first sight counts as a change (an
 * agent that just started waits the whole time), and so does a read that finds no lease.
 */
export class RightWatch {
  private readonly api: LeaseApi;
  private readonly clock: Clock;
  private readonly timing: WriteRightTiming;
  private readonly seen = new Map<string, { version: string | undefined; at: number }>();

  constructor(api: LeaseApi, clock: Clock = monotonicClock, timing: WriteRightTiming = WRITE_RIGHT) {
    this.api = api;
    this.clock = clock;
    this.timing = timing;
  }

  /** Reads `node`'s lease now; how long this node must still wait before it may assemble (0: ended). */
  async waitMs(node: string): Promise<number> {
    const version = await this.api.version(node);
    const now = this.clock.now();
    const last = this.seen.get(node);
    if (!last || last.version !== version) {
      this.seen.set(node, { version, at: now });
      return this.timing.leaseMs + this.timing.takeoverMarginMs;
    }
    return Math.max(0, last.at + this.timing.leaseMs + this.timing.takeoverMarginMs - now);
  }
}

/** Leases in memory (one process's "apiserver"): the unit tests and the kernel tier's nodes. */
export class MemoryLeases implements LeaseApi {
  private readonly versions = new Map<string, number>();
  /** Nodes cut off from this "apiserver": their renewals and reads fail. */
  readonly cut = new Set<string>();

  async renew(node: string, _leaseSeconds?: number): Promise<void> {
    if (this.cut.has(node)) throw new Error(`node ${node} cannot reach the apiserver`);
    this.versions.set(node, (this.versions.get(node) ?? 0) + 1);
  }

  async version(node: string): Promise<string | undefined> {
    const v = this.versions.get(node);
    return v === undefined ? undefined : String(v);
  }
}
