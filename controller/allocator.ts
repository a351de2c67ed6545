// The allocator: the one place extents are handed out. It decides with placement (on the live model
// or on fresh lists), writes the record, then re-reads every record and withdraws its own when
// another overlaps it, backing off at random before trying again. Whichever of two racing
// controllers re-reads second sees the other's record, so two overlapping records never both
// survive. Only the holder of the allocator Lease allocates.
import { ClusterState } from '../placement/cluster.ts';
import { PlacementEngine } from '../placement/engine.ts';
import { PlacementError } from '../placement/errors.ts';
import type { ReplicaInfo, SpreadPolicy, TopologySegment } from '../placement/model.ts';
import type { PlacementPolicy } from '../placement/policies.ts';
import { KeyedLock } from '../state/lock.ts';
import type { NodeInventory, VolumeRecord, VolumeStore } from '../state/store.ts';
import { AllocatorRefusal } from './errors.ts';
import { PlacementCache } from './placement-cache.ts';
import { markDeleting } from './release.ts';

export interface AllocatorOptions {
  store: VolumeStore;
  inventory: NodeInventory;
  /** When set, only the holder of the allocator lease changes volumes; others are refused (unavailable). */
  leader?: { isLeader: boolean; currentHolder: string | undefined } | undefined;
  /**
   * Placement inputs kept current by informers (`--state kube`). Without it every decision lists
   * every node and volume. Either way the double-booking check re-reads the store.
   */
  model?: PlacementCache | undefined;
  /** With a model: how long a decision waits for its first lists before it is refused (unavailable). */
  syncWaitMs?: number;
  /** Scale of the randomised backoff after a collision (default 50 ms; tests shorten it). */
  backoffMs?: number;
  /** Ignored with a model (it has its own). */
  policy?: PlacementPolicy;
  seed?: number;
}

/** What a new volume needs; the id is the record's name. */
export interface VolumeRequest {
  id: string;
  name: string;
  sizeBytes: number;
  replicaCount: number;
  spread: SpreadPolicy;
  fsType: VolumeRecord['fsType'];
  preferredNode?: string | undefined;
}

const MAX_ATTEMPTS = 8;

export class Allocator {
  readonly store: VolumeStore;
  readonly inventory: NodeInventory;
  private readonly opts: AllocatorOptions;
  /** Serialises work on one volume across handlers and reconcilers of this process. */
  readonly perVolume = new KeyedLock();
  /** One decision at a time in this process: decisions read and write the same free space. */
  private readonly decisions = new KeyedLock();
  /** Records this allocator withdrew because another controller's overlapped them (a metric). */
  collisions = 0;

  constructor(opts: AllocatorOptions) {
    this.store = opts.store;
    this.inventory = opts.inventory;
    this.opts = opts;
  }

  get isLeader(): boolean {
    return !this.opts.leader || this.opts.leader.isLeader;
  }

  requireLeader(): void {
    const l = this.opts.leader;
    if (l && !l.isLeader) {
      throw new AllocatorRefusal(
        'unavailable',
        `this controller is not the active allocator (lease held by ${l.currentHolder ?? 'nobody yet'}); retry`,
      );
    }
  }

  /** Runs `work` as this process's only decision in flight. */
  decide<T>(work: () => Promise<T>): Promise<T> {
    return this.decisions.run('', work);
  }

  /** An engine on the live model when there is one, else on fresh lists. */
  async engine(): Promise<PlacementEngine> {
    const model = this.opts.model;
    if (!model) return this.freshEngine();
    await model.ensureSynced(this.opts.syncWaitMs ?? 5000);
    return model.engine;
  }

  /** An engine built from lists read now: for decisions no later re-read checks. */
  async freshEngine(): Promise<PlacementEngine> {
    const [nodes, records] = await Promise.all([this.inventory.nodes(), this.store.list()]);
    const cluster = ClusterState.fromSnapshot({
      nodes,
      volumes: records.map((r) => ({
        id: r.id,
        sizeBytes: r.sizeBytes,
        replicaCount: r.replicaCount,
        spread: r.spread,
        replicas: r.replicas,
      })),
    });
    return new PlacementEngine(cluster, { policy: this.opts.policy, seed: this.opts.seed });
  }

  /** The largest volume that fits now within `segment`. */
  async capacity(
    segment: TopologySegment,
    shape: { replicaCount: number; spread: SpreadPolicy },
  ): Promise<number> {
    return (await this.engine()).capacity(segment, shape);
  }

  /**
   * Places and records a new volume. The caller holds the volume's lock and has checked that no
   * record of this id exists. Retries collisions with other controllers, away from the contested
   * bytes; refuses (contended) after MAX_ATTEMPTS.
   */
  async create(req: VolumeRequest): Promise<VolumeRecord> {
    const contested: ReplicaInfo[] = [];
    for (let attempt = 1; ; attempt++) {
      const record = await this.decide(() => this.placeAndRecord(req, contested));
      // Another controller may have placed a volume on the same bytes at the same moment. Both
      // re-read after writing; the later reader always sees the other's record, so at most one
      // of two overlapping records survives. The one that sees a clash yields and tries again,
      // away from the contested bytes (the other side may have yielded too).
      const clash = await this.overlapping(record);
      if (!clash) return record;
      this.collisions++;
      // Avoid the other record's bytes too: a lagging model may not know it yet, and would
      // otherwise place next to our own contested bytes and onto it again.
      contested.push(...record.replicas, ...clash.replicas);
      await markDeleting(this.store, this.inventory, record.id);
      this.opts.model?.drop(record.id);
      if (attempt >= MAX_ATTEMPTS) {
        throw new AllocatorRefusal(
          'contended',
          `volume ${req.name}: extents kept colliding with ${clash.id}; retry`,
        );
      }
      // Randomised exponential backoff, so the other side's record is visible before one of us
      // allocates again. (A fixed tie-break would be unsafe when one side never saw the other.)
      await new Promise((r) => setTimeout(r, Math.random() * (this.opts.backoffMs ?? 50) * 2 ** attempt));
    }
  }

  private async placeAndRecord(req: VolumeRequest, avoid: readonly ReplicaInfo[]): Promise<VolumeRecord> {
    const engine = await this.engine();
    const model = this.opts.model;
    const id = req.id;
    // No record of this id exists (checked, under the volume's lock), so an earlier decision for
    // it that this controller took back holds nothing any more.
    model?.prepare(id, Date.now());
    const held: string[] = [];
    avoid.forEach((x, i) => {
      // Hold contested bytes for this decision only; they may be taken already, which is fine.
      try {
        engine.cluster.reserve({
          id: `contested/${id}/${i}`,
          volumeId: id,
          replicas: [{ replicaId: x.id, node: x.node, drive: x.drive, extent: x.extent }],
        });
        held.push(`contested/${id}/${i}`);
      } catch {
        // already taken (the other side kept it) or the node is gone: nothing to hold
      }
    });
    let r: ReturnType<PlacementEngine['allocate']>;
    try {
      // Under its own reservation id, never the volume's: a stale model may still hold a deleted
      // volume of this name, and allocate would hand back that layout as if it were this one.
      r = engine.allocate({
        volumeId: PlacementCache.reservationId(id),
        sizeBytes: req.sizeBytes,
        replicaCount: req.replicaCount,
        spread: req.spread,
        preferredNode: req.preferredNode,
      });
    } finally {
      for (const h of held) engine.cluster.release(h);
    }
    if (!r.ok) {
      const reasons = Object.entries(r.nodeReasons ?? {})
        .slice(0, 10)
        .map(([n, why]) => `${n}: ${why}`)
        .join('; ');
      throw new PlacementError(r.code, `${r.message}${reasons ? ` (${reasons})` : ''}`);
    }
    const record: VolumeRecord = {
      id,
      name: req.name,
      sizeBytes: req.sizeBytes,
      replicaCount: req.replicaCount,
      spread: req.spread,
      fsType: req.fsType,
      replicas: r.reservation.replicas.map((x) => ({
        id: x.replicaId,
        node: x.node,
        drive: x.drive,
        extent: x.extent,
        state: 'Pending',
      })),
      phase: 'Active',
    };
    // The live model keeps these extents reserved until the informer delivers the record, so the
    // next decision never hands them out again from a model that has not seen it yet.
    model?.hold(id, r.reservation, Date.now());
    try {
      await this.store.create(record);
    } catch (e) {
      model?.drop(id);
      throw e;
    }
    return record;
  }

  /** Another record whose extents overlap this one's, if any (read fresh from the store). */
  async overlapping(mine: VolumeRecord): Promise<VolumeRecord | undefined> {
    for (const other of await this.store.list()) {
      if (other.id === mine.id) continue;
      for (const a of mine.replicas) {
        for (const b of other.replicas) {
          if (
            a.node === b.node &&
            a.drive === b.drive &&
            a.extent.start < b.extent.end &&
            b.extent.start < a.extent.end
          ) {
            return other;
          }
        }
      }
    }
    return undefined;
  }

  /**
   * Grows a volume's extents in place to `sizeBytes`. The caller holds the volume's lock. Growth is
   * not re-checked against other records after the write, so it is decided on fresh lists, never on
   * a model that may lag (expansion is rare; this is not the hot path).
   */
  async expand(rec: VolumeRecord, sizeBytes: number): Promise<void> {
    await this.decide(async () => {
      const plan = (await this.freshEngine()).planExpand(rec.id, sizeBytes);
      if (!plan.ok) throw new PlacementError(plan.code, plan.message);
      for (const g of plan.grows) {
        const r = rec.replicas.find((x) => x.id === g.replicaId);
        if (r) r.extent = { start: g.start, end: g.newEnd };
      }
      rec.sizeBytes = sizeBytes;
      await this.store.replace(rec);
      this.showGrowth(rec.id, plan.grows);
    });
  }

  /** Shows growth in the live model now, so the next decision does not wait for the informer. */
  private showGrowth(id: string, grows: readonly { replicaId: string; newEnd: number }[]): void {
    const cluster = this.opts.model?.engine.cluster;
    if (!cluster?.volumes.has(id)) return;
    for (const g of grows) {
      try {
        cluster.growReplica(id, g.replicaId, g.newEnd);
      } catch {
        // the model has not seen those bytes free: it shows them taken already, which is safe
      }
    }
  }
}
