// The allocator: the one place extents are handed out. It decides with placement (on the live model
// or on fresh lists), claims the extents on each node's allocation ledger (a write under the
// ledger's version, refused when another volume's claim shares a byte or the ledger moved on),
// writes the record, and checks that its claims still stand. Two overlapping claims can never both
// be written, so two records never keep one extent, at a cost of a few objects per call whatever
// the cluster's size (docs/adr/0004-allocation-ledger.md). A refused claim backs off at random and
// tries again away from the contested bytes. Only the holder of the allocator Lease allocates.

import { randomUUID } from 'node:crypto';
import { ClusterState } from '../placement/cluster.ts';
import { PlacementEngine } from '../placement/engine.ts';
import { PlacementError } from '../placement/errors.ts';
import type { ReplicaInfo, SpreadPolicy, TopologySegment } from '../placement/model.ts';
import type { PlacementPolicy } from '../placement/policies.ts';
import { KeyedLock } from '../state/lock.ts';
import { withLedgerClaims } from '../state/placement-model.ts';
import type { NodeInventory, VolumeRecord, VolumeStore } from '../state/store.ts';
import { Claims, ownerOf } from './claims.ts';
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
   * every node and volume. Either way the double-booking check is the store's ledger.
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
  /**
   * CSI's accessibility_requirements.requisite as placement segments: every replica goes on a node
   * inside one of them (any of them). Undefined: anywhere. Empty: nowhere (nothing fits).
   */
  requisite?: readonly TopologySegment[] | undefined;
  /** What the record carries beyond its layout: a snapshot's mark, a restore's seed (ADR 0010). */
  marks?: Pick<VolumeRecord, 'snapshot' | 'seed'> | undefined;
}

/** The nodes outside every segment of a requisite: none may hold a replica. */
function outsideRequisite(
  engine: PlacementEngine,
  requisite: readonly TopologySegment[] | undefined,
): Set<string> {
  if (!requisite) return new Set();
  return new Set(
    engine.cluster.nodes.filter((n) => !requisite.some((seg) => n.matches(seg))).map((n) => n.name),
  );
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
  /** Decisions this allocator took back because another volume had claimed their bytes (a metric). */
  collisions = 0;
  /** The store's allocation ledger, with this process's last-seen versions. */
  readonly claims: Claims;

  constructor(opts: AllocatorOptions) {
    this.store = opts.store;
    this.inventory = opts.inventory;
    this.opts = opts;
    this.claims = new Claims(opts.store.ledger);
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

  /**
   * An engine built from lists read now: for decisions no later re-read checks. With
   * `ledgerClaims`, the ledgers are listed too and claims no record holds count as taken
   * (state/placement-model.ts withLedgerClaims), so a plan never lands on bytes its claim would be
   * refused for: for relocations, which are planned again every pass. CreateVolume does not ask
   * (one list of every ledger per call); its retry avoids the bytes a refused claim showed.
   */
  async freshEngine(opts: { ledgerClaims?: boolean } = {}): Promise<PlacementEngine> {
    const [inventory, records, ledgers] = await Promise.all([
      this.inventory.nodes(),
      this.store.list(),
      opts.ledgerClaims ? this.claims.ledger.list() : [],
    ]);
    const volumes = records.map((r) => ({
      id: r.id,
      sizeBytes: r.sizeBytes,
      replicaCount: r.replicaCount,
      spread: r.spread,
      replicas: r.replicas,
    }));
    const nodes = ledgers.length > 0 ? withLedgerClaims(inventory, volumes, ledgers) : inventory;
    const cluster = ClusterState.fromSnapshot({ nodes, volumes });
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
   * record of this id exists. Retries when another volume claimed the bytes first, away from the
   * contested bytes; refuses (contended) after MAX_ATTEMPTS.
   */
  async create(req: VolumeRequest): Promise<VolumeRecord> {
    const contested: ReplicaInfo[] = [];
    for (let attempt = 1; ; attempt++) {
      const record = await this.decide(() => this.place(req, contested));
      const taken = await this.claimAndRecord(record);
      if (!taken) return record;
      this.collisions++;
      // Avoid what the ledger showed taken too: a lagging model may not know those claims yet,
      // and would otherwise place onto them again.
      contested.push(...record.replicas, ...taken);
      const clash = taken[0] as ReplicaInfo;
      if (attempt >= MAX_ATTEMPTS) {
        throw new AllocatorRefusal(
          'contended',
          `volume ${req.name}: extents kept colliding with ${clash.id.split('/')[0]}; retry`,
        );
      }
      // Randomised exponential backoff, so the other side's record is in our model before we
      // decide again. (A fixed tie-break would be unsafe when one side never saw the other.)
      await new Promise((r) => setTimeout(r, Math.random() * (this.opts.backoffMs ?? 50) * 2 ** attempt));
    }
  }

  /**
   * Claims the record's extents, writes the record and checks the claims still stand. Returns the
   * bytes that stopped it, the clashing claim first (nothing of ours is left then), or undefined
   * once the record is written and its claims hold.
   */
  private async claimAndRecord(record: VolumeRecord): Promise<ReplicaInfo[] | undefined> {
    const model = this.opts.model;
    try {
      const refused = await this.claims.claim(ownerOf(record), record.replicas);
      if (refused) {
        model?.drop(record.id);
        return [refused.clash, ...refused.taken].map((c) => ({
          id: `${c.volume}/${c.replica}`,
          node: refused.node,
          drive: c.drive,
          extent: { start: c.start, end: c.end },
          state: 'Pending',
        }));
      }
      await this.store.create(record);
    } catch (e) {
      model?.drop(record.id);
      // Best effort: a claim left behind is released by the ledger reconciler once it is old.
      await this.claims.release(ownerOf(record), record.replicas).catch(() => undefined);
      throw e;
    }
    if (await this.claims.holds(ownerOf(record), record.replicas)) return undefined;
    // The ledger reconciler took a claim for orphaned while our record was being written (only
    // possible after a stall longer than its grace period). It revoked before it looked for our
    // record; we looked at the ledger after writing it: one of us saw the other. We yield.
    await markDeleting(this.store, this.inventory, record.id);
    model?.drop(record.id);
    const first = record.replicas[0] as ReplicaInfo;
    return [{ ...first, id: `${record.id}/${first.id} (revoked)` }];
  }

  /**
   * A record a retried CreateVolume found: it is answered as created only while its claims stand.
   * A record whose claims are gone was never answered (an answered record keeps its claims until
   * it is released): its writer was killed between the record and its check, after the ledger
   * reconciler had taken the claims for orphaned. It is claimed again, or withdrawn (contended,
   * the caller retries) when another allocation has its bytes now, but only while nothing of it is
   * in use: a withdrawal never touches a record with an array, an attachment, a relocation or a
   * member past Pending (refused then, and left to a human, as the ledger reconciler reports it).
   * Records older than the ledger are claimed here if the reconciler has not adopted them yet;
   * their writer answered them, so they are answered as they are whatever the ledger shows.
   */
  async confirm(rec: VolumeRecord): Promise<void> {
    const owner = ownerOf(rec);
    if (await this.claims.holds(owner, rec.replicas)) return;
    const refused = await this.claims.claim(owner, rec.replicas);
    if (!refused && (await this.claims.holds(owner, rec.replicas))) return;
    if (rec.allocation === undefined) return;
    const untouched =
      !rec.arrayUuid &&
      !rec.attachment &&
      !rec.relocation &&
      rec.replicas.every((r) => r.state === 'Pending');
    if (!untouched) {
      throw new AllocatorRefusal(
        'contended',
        `volume ${rec.name}: its extents are claimed by ${refused?.clash.volume ?? 'nobody (revoked)'} while it is in use; not withdrawn, see the ledger reconciler's report`,
      );
    }
    await markDeleting(this.store, this.inventory, rec.id);
    this.opts.model?.drop(rec.id);
    throw new AllocatorRefusal(
      'contended',
      `volume ${rec.name}: its record lost its extents to ${refused?.clash.volume ?? 'a revocation'} and was withdrawn; retry`,
    );
  }

  /** Decides where the volume goes (held in the live model as this controller's own) without writing. */
  private async place(req: VolumeRequest, avoid: readonly ReplicaInfo[]): Promise<VolumeRecord> {
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
    const outside = outsideRequisite(engine, req.requisite);
    try {
      // Under its own reservation id, never the volume's: a stale model may still hold a deleted
      // volume of this name, and allocate would hand back that layout as if it were this one.
      r = engine.allocate({
        volumeId: PlacementCache.reservationId(id),
        sizeBytes: req.sizeBytes,
        replicaCount: req.replicaCount,
        spread: req.spread,
        preferredNode: req.preferredNode,
        excludeNodes: outside,
      });
    } finally {
      for (const h of held) engine.cluster.release(h);
    }
    if (!r.ok) {
      // the nodes outside the requisite were never candidates: their reasons say nothing
      const reasons = Object.entries(r.nodeReasons ?? {})
        .filter(([n]) => !outside.has(n))
        .slice(0, 10)
        .map(([n, why]) => `${n}: ${why}`)
        .join('; ');
      const where = req.requisite ? 'nothing inside accessibility_requirements.requisite fits: ' : '';
      throw new PlacementError(r.code, `${where}${r.message}${reasons ? ` (${reasons})` : ''}`);
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
      // This attempt's claims carry it; another attempt for the same volume is another owner.
      allocation: randomUUID(),
      ...req.marks,
    };
    // The live model keeps these extents reserved until the informer delivers the record, so the
    // next decision never hands them out again from a model that has not seen it yet.
    model?.hold(id, r.reservation, Date.now());
    return record;
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
      // The grown bytes are claimed first: a claim another allocation holds there (its record not
      // listed yet) refuses the growth, which the caller retries.
      for (const g of plan.grows) {
        const r = rec.replicas.find((x) => x.id === g.replicaId);
        if (!r) continue;
        const clash = await this.claims.grow(ownerOf(rec), r, g.newEnd);
        if (clash)
          throw new AllocatorRefusal(
            'contended',
            `volume ${rec.id}: the bytes to grow into are claimed by ${clash.volume}; retry`,
          );
      }
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
