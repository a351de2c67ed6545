// Syncs that take time: each node runs at most `slots` syncs into its drives at once; the rest
// wait in that node's queue in placement's order (rebuilds, then drains, then relocations, small
// first). A running sync copies at a fixed rate (its node's bandwidth shared by the slots, capped
// per sync), so its end is known when it starts.
import { compareSyncs, type SyncKind } from '../placement/moves.ts';

export interface Sync {
  seq: number;
  kind: SyncKind;
  volumeId: string;
  /** Node that receives the new member (whose write bandwidth and slots the sync uses). */
  target: string;
  bytes: number;
  /** The new member, Syncing until the sync ends. */
  toReplica: string;
  /** The member that leaves when the new one is in sync. */
  fromReplica?: string | undefined;
  /** Index of the scenario event that caused the move (-1: a pod's arrival). */
  cause: number;
  queuedAt: number;
  startedAt?: number | undefined;
  endsAt?: number | undefined;
  cancelled: boolean;
}

export class SyncQueue {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, Sync[]>();
  private queued = 0;
  /** Highest number of syncs running into one node at once, over the run. */
  peakPerNode = 0;
  /** Highest number of syncs running or waiting cluster-wide, over the run (a storm's size). */
  peakTotal = 0;
  private running = 0;

  private readonly slots: number;
  /** Bytes per hour one sync into a node copies. */
  private readonly rate: (node: string) => number;
  /** Told when a sync starts, with its end time, so the caller can schedule its completion. */
  private readonly started: (s: Sync) => void;

  constructor(slots: number, rate: (node: string) => number, started: (s: Sync) => void) {
    this.slots = slots;
    this.rate = rate;
    this.started = started;
  }

  get inFlight(): number {
    return this.running + this.queued;
  }

  enqueue(s: Sync, now: number): void {
    const q = this.waiting.get(s.target) ?? [];
    let i = q.length;
    while (i > 0 && compareSyncs(s, q[i - 1] as Sync) < 0) i--;
    q.splice(i, 0, s);
    this.waiting.set(s.target, q);
    this.queued++;
    this.peakTotal = Math.max(this.peakTotal, this.inFlight);
    this.fill(s.target, now);
  }

  /** A sync ended (done or cancelled): its slot goes to the next one waiting on that node. */
  finish(s: Sync, now: number): void {
    if (s.startedAt === undefined) {
      const q = this.waiting.get(s.target);
      const i = q ? q.indexOf(s) : -1;
      if (q && i >= 0) {
        q.splice(i, 1);
        this.queued--;
      }
      return;
    }
    this.active.set(s.target, (this.active.get(s.target) ?? 1) - 1);
    this.running--;
    this.fill(s.target, now);
  }

  private fill(node: string, now: number): void {
    const q = this.waiting.get(node);
    while (q && q.length > 0 && (this.active.get(node) ?? 0) < this.slots) {
      const s = q.shift() as Sync;
      this.queued--;
      const n = (this.active.get(node) ?? 0) + 1;
      this.active.set(node, n);
      this.running++;
      this.peakPerNode = Math.max(this.peakPerNode, n);
      s.startedAt = now;
      s.endsAt = now + s.bytes / this.rate(node);
      this.started(s);
    }
  }
}
