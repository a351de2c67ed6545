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

/** The lease a deployment gets unless it asks for another (`meshstor agent --lease-seconds`). */
export const DEFAULT_LEASE_SECONDS = 40;

/**
 * The shortest and longest lease an agent accepts. Only stretching is offered: the fence's own
 * duration F must stay within G = D/8, and F was measured (ADR 0006) against G = 5 s, D = 40 s.
 */
export const LEASE_SECONDS_RANGE = { min: DEFAULT_LEASE_SECONDS, max: 600 } as const;

/**
 * The whole timing for a lease of D seconds. Everything scales with D so the inequalities below
 * keep their margins: R = D/4 (three renewals may be lost before the fence), G = D/8, M = D/4,
 * and L = 1.5 D (the longest stall a cut leg can cause grows with the lease). D = 40 s gives the
 * values ADR 0006 measured: R 10 s, G 5 s, M 10 s, L 60 s. A deployment on slow nodes (a
 * starved VM, an overloaded apiserver) stretches D; a node loss then stalls writes for up to L
 * and a takeover waits D + M.
 */
export function writeRightTiming(leaseSeconds: number): WriteRightTiming {
  const D = leaseSeconds * 1000;
  return {
    leaseMs: D,
    renewMs: Math.round(D / 4),
    fenceGuardMs: Math.round(D / 8),
    takeoverMarginMs: Math.round(D / 4),
    remoteCtrlLossTmoSec: Math.ceil(1.5 * leaseSeconds),
    reconnectDelaySec: 1,
    clockRateError: 1e-3,
  };
}

export const WRITE_RIGHT: WriteRightTiming = writeRightTiming(DEFAULT_LEASE_SECONDS);

/**
 * L for a remote leg this node connects: its configured timing's (`--lease-seconds`), or the
 * default lease's. Every remote connect asks here, so no leg gets a shorter L than the right.
 */
export function remoteLegCtrlLossSec(o: { remoteCtrlLossTmoSec?: number | undefined }): number {
  return o.remoteCtrlLossTmoSec ?? WRITE_RIGHT.remoteCtrlLossTmoSec;
}

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

/** What another node sees of a node's lease. */
export interface LeaseSight {
  /** An opaque version that changes on every renewal. */
  version: string;
  /** The lease duration its holder wrote (its D); undefined when the lease does not say. */
  leaseSeconds: number | undefined;
}

/** A node's lease as the apiserver keeps it. */
export interface LeaseApi {
  /** Creates or renews `node`'s lease; resolves only once the apiserver accepted the write. */
  renew(node: string, leaseSeconds: number): Promise<void>;
  /** `node`'s lease as it is now; undefined when it has none. */
  read(node: string): Promise<LeaseSight | undefined>;
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
 *
 * D is the longer of this node's own and the one the holder wrote into its lease, and M grows with
 * it: nodes configured with different leases (a values change rolling through the DaemonSet) still
 * never start before the holder's right ended.
 */
export class RightWatch {
  private readonly api: LeaseApi;
  private readonly clock: Clock;
  private readonly timing: WriteRightTiming;
  private readonly seen = new Map<string, { version: string | undefined; at: number; waitMs: number }>();

  constructor(api: LeaseApi, clock: Clock = monotonicClock, timing: WriteRightTiming = WRITE_RIGHT) {
    this.api = api;
    this.clock = clock;
    this.timing = timing;
  }

  /** D + M for a holder that wrote `holderLeaseSeconds` into its lease. */
  private waitFor(holderLeaseSeconds: number | undefined): number {
    const own = this.timing;
    const D = Math.max(own.leaseMs, (holderLeaseSeconds ?? 0) * 1000);
    const M = Math.ceil((own.takeoverMarginMs * D) / own.leaseMs); // never below own M: D >= own D
    return D + M;
  }

  /** Reads `node`'s lease now; how long this node must still wait before it may assemble (0: ended). */
  async waitMs(node: string): Promise<number> {
    const lease = await this.api.read(node);
    const now = this.clock.now();
    const last = this.seen.get(node);
    if (!last || last.version !== lease?.version) {
      const waitMs = this.waitFor(lease?.leaseSeconds);
      this.seen.set(node, { version: lease?.version, at: now, waitMs });
      return waitMs;
    }
    return Math.max(0, last.at + last.waitMs - now);
  }
}

/** Leases in memory (one process's "apiserver"): the unit tests and the kernel tier's nodes. */
export class MemoryLeases implements LeaseApi {
  private readonly leases = new Map<string, { version: number; leaseSeconds: number | undefined }>();
  /** Nodes cut off from this "apiserver": their renewals and reads fail. */
  readonly cut = new Set<string>();

  async renew(node: string, leaseSeconds?: number): Promise<void> {
    if (this.cut.has(node)) throw new Error(`node ${node} cannot reach the apiserver`);
    this.leases.set(node, { version: (this.leases.get(node)?.version ?? 0) + 1, leaseSeconds });
  }

  async read(node: string): Promise<LeaseSight | undefined> {
    const l = this.leases.get(node);
    return l === undefined ? undefined : { version: String(l.version), leaseSeconds: l.leaseSeconds };
  }
}
