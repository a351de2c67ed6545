// The mutable, indexed cluster model the engine decides over: nodes with their drives, volumes
// with their replicas, and in-flight reservations. Every extent anyone claims is recorded on its
// drive, so a second claim on the same bytes is refused at one place (DriveState.take).
import { type Claim, DriveState } from './drive.ts';
import { PlacementError } from './errors.ts';
import type {
  ClusterSnapshot,
  Extent,
  MemberState,
  NodeInfo,
  PartitionInfo,
  ReplicaInfo,
  SpreadPolicy,
  TopologySegment,
  VolumeInfo,
} from './model.ts';
import { hash32 } from './rng.ts';

export class NodeState {
  readonly name: string;
  readonly zone: string;
  readonly rack: string;
  schedulable: boolean;
  agentHealthy: boolean;
  readonly drives: DriveState[];
  capacityBytes = 0;
  freeBytes = 0;
  /** Largest free extent on a drive that still has a GPT slot. */
  largestPlaceable = 0;
  /** MeshStor replicas and reservations on this node. */
  replicas = 0;
  /** Bytes of partitions that are not MeshStor's (the OS, other software). */
  foreignBytes = 0;
  /** GPT entries in use (any partition) and in all, over the node's drives. */
  slotsUsed = 0;
  slotsTotal = 0;
  /** Stable hash of the name, mixed with a per-decision salt to break score ties. */
  readonly key: number;
  /** Small integer ids of the zone and rack, assigned by the ClusterState (cheap to index by). */
  zoneId = 0;
  rackId = 0;

  constructor(info: NodeInfo) {
    this.name = info.name;
    this.zone = info.labels.zone ?? '';
    this.rack = info.labels.rack ?? '';
    this.schedulable = info.schedulable;
    this.agentHealthy = info.agentHealthy;
    this.drives = info.drives.map((d) => new DriveState(info.name, d));
    this.key = hash32(info.name);
    this.refresh();
  }

  domainId(key: SpreadPolicy['domain']): number {
    return key === 'zone' ? this.zoneId : this.rackId;
  }

  get usable(): boolean {
    return this.agentHealthy;
  }

  domain(key: SpreadPolicy['domain']): string {
    return key === 'zone' ? this.zone : this.rack;
  }

  drive(id: string): DriveState | undefined {
    return this.drives.find((d) => d.id === id);
  }

  matches(segment: TopologySegment | undefined): boolean {
    if (!segment) return true;
    if (segment.node !== undefined && segment.node !== this.name) return false;
    if (segment.zone !== undefined && segment.zone !== this.zone) return false;
    if (segment.rack !== undefined && segment.rack !== this.rack) return false;
    return true;
  }

  refresh(): void {
    let cap = 0;
    let free = 0;
    let largest = 0;
    let reps = 0;
    let foreign = 0;
    let slotsUsed = 0;
    let slotsTotal = 0;
    for (const d of this.drives) {
      slotsUsed += d.slotsUsed;
      slotsTotal += d.gptSlots;
      cap += d.capacityBytes;
      free += d.freeBytes;
      if (d.largestPlaceable > largest) largest = d.largestPlaceable;
      reps += d.meshstorExtents;
      foreign += d.foreignBytes;
    }
    this.capacityBytes = cap;
    this.freeBytes = free;
    this.largestPlaceable = largest;
    this.replicas = reps;
    this.foreignBytes = foreign;
    this.slotsUsed = slotsUsed;
    this.slotsTotal = slotsTotal;
  }
}

export interface VolumeState extends VolumeInfo {
  /** Next replica index, so ids are never reused within a volume. */
  nextReplica: number;
}

export interface ReservedReplica {
  replicaId: string;
  node: string;
  drive: string;
  extent: Extent;
}

export interface Reservation {
  id: string;
  volumeId: string;
  replicas: ReservedReplica[];
  /** Caller's clock; `expireReservations(now)` drops reservations past it. */
  expiresAt?: number | undefined;
}

/** Something in the loaded state that disagrees with itself; surfaced, never "fixed". */
export interface Drift {
  kind: 'overlap' | 'missing-drive' | 'unknown-node';
  message: string;
}

export class ClusterState {
  private readonly nodeMap = new Map<string, NodeState>();
  /** Nodes sorted by name: the deterministic scan order. */
  nodes: NodeState[] = [];
  readonly volumes = new Map<string, VolumeState>();
  /**
   * The largest replica extent this model has held (reserved or loaded); never shrinks. Policies
   * read it as the size the biggest future request is likely to need.
   */
  largestReplicaBytes = 0;
  readonly reservations = new Map<string, Reservation>();
  readonly drift: Drift[] = [];
  private readonly domainIds = { zone: new Map<string, number>(), rack: new Map<string, number>() };

  /** The integer id of a zone or rack name (ids are never reused). */
  domainId(key: SpreadPolicy['domain'], name: string): number {
    const ids = this.domainIds[key];
    let id = ids.get(name);
    if (id === undefined) {
      id = ids.size;
      ids.set(name, id);
    }
    return id;
  }

  static fromSnapshot(snapshot: ClusterSnapshot): ClusterState {
    const c = new ClusterState();
    for (const n of snapshot.nodes) c.addNode(n);
    for (const v of snapshot.volumes) c.loadVolume(v);
    for (const n of c.nodes) {
      for (const d of n.drives) {
        for (const [a, b] of d.conflicts()) {
          c.drift.push({
            kind: 'overlap',
            message: `${n.name}/${d.id}: [${a.start}, ${a.end}) overlaps [${b.start}, ${b.end})`,
          });
        }
      }
    }
    return c;
  }

  toSnapshot(): ClusterSnapshot {
    return {
      nodes: this.nodes.map((n) => ({
        name: n.name,
        labels: { zone: n.zone || undefined, rack: n.rack || undefined },
        schedulable: n.schedulable,
        agentHealthy: n.agentHealthy,
        drives: n.drives.map((d) => ({
          id: d.id,
          sizeBytes: d.sizeBytes,
          logicalBlockSize: d.logicalBlockSize,
          gptSlots: d.gptSlots,
          partitions: d.extents.flatMap((t): PartitionInfo[] => {
            const c = t.claim;
            if (c.kind === 'foreign') return [{ start: t.start, end: t.end, label: c.label }];
            if (c.kind === 'orphan') {
              return [
                { start: t.start, end: t.end, owner: { volumeId: c.volumeId, replicaId: c.replicaId } },
              ];
            }
            return [];
          }),
        })),
      })),
      volumes: [...this.volumes.values()].map((v) => ({
        id: v.id,
        sizeBytes: v.sizeBytes,
        replicaCount: v.replicaCount,
        spread: { ...v.spread },
        replicas: v.replicas.map((r) => ({ ...r, extent: { ...r.extent } })),
        attachedNode: v.attachedNode,
      })),
    };
  }

  node(name: string): NodeState | undefined {
    return this.nodeMap.get(name);
  }

  mustNode(name: string): NodeState {
    const n = this.nodeMap.get(name);
    if (!n) throw new PlacementError('not-found', `node ${name} is not in the cluster model`);
    return n;
  }

  mustVolume(id: string): VolumeState {
    const v = this.volumes.get(id);
    if (!v) throw new PlacementError('not-found', `volume ${id} is not in the cluster model`);
    return v;
  }

  addNode(info: NodeInfo): NodeState {
    if (!info.name) throw new PlacementError('invalid', 'node name is empty');
    if (this.nodeMap.has(info.name)) throw new PlacementError('conflict', `node ${info.name} exists already`);
    const ids = new Set<string>();
    for (const d of info.drives) {
      if (ids.has(d.id))
        throw new PlacementError('invalid', `node ${info.name}: drive id ${d.id} appears twice`);
      ids.add(d.id);
    }
    const n = new NodeState(info);
    n.zoneId = this.domainId('zone', n.zone);
    n.rackId = this.domainId('rack', n.rack);
    for (const di of info.drives) {
      const d = n.drive(di.id) as DriveState;
      for (const p of di.partitions) {
        d.load(
          p,
          p.owner
            ? { kind: 'orphan', volumeId: p.owner.volumeId, replicaId: p.owner.replicaId }
            : { kind: 'foreign', label: p.label },
        );
      }
    }
    n.refresh();
    this.nodeMap.set(n.name, n);
    // Keep scan order sorted by name: binary search and insert, not a full sort per node.
    let lo = 0;
    let hi = this.nodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.nodes[mid] as NodeState).name < n.name) lo = mid + 1;
      else hi = mid;
    }
    this.nodes.splice(lo, 0, n);
    return n;
  }

  /** The node and its drives are gone (node loss): its replicas become Faulty. */
  removeNode(name: string): void {
    this.mustNode(name);
    for (const [id, r] of this.reservations) if (r.replicas.some((x) => x.node === name)) this.release(id);
    this.nodeMap.delete(name);
    this.nodes = this.nodes.filter((n) => n.name !== name);
    for (const v of this.volumes.values()) {
      for (const r of v.replicas) if (r.node === name) r.state = 'Faulty';
    }
  }

  /** One drive of a node is gone (drive failure): its replicas become Faulty, the node stays. */
  removeDrive(nodeName: string, driveId: string): void {
    const n = this.mustNode(nodeName);
    this.mustDrive(nodeName, driveId);
    for (const [id, r] of this.reservations) {
      if (r.replicas.some((x) => x.node === nodeName && x.drive === driveId)) this.release(id);
    }
    n.drives.splice(
      n.drives.findIndex((d) => d.id === driveId),
      1,
    );
    n.refresh();
    for (const v of this.volumes.values()) {
      for (const r of v.replicas) if (r.node === nodeName && r.drive === driveId) r.state = 'Faulty';
    }
  }

  // ---------------------------------------------------------------- reservations --

  /** Claims every extent of the reservation, or none of them. */
  reserve(res: Reservation): void {
    if (this.reservations.has(res.id))
      throw new PlacementError('conflict', `reservation ${res.id} exists already`);
    const done: ReservedReplica[] = [];
    try {
      for (const r of res.replicas) {
        const d = this.mustDrive(r.node, r.drive);
        d.take(r.extent, { kind: 'reservation', reservationId: res.id, replicaId: r.replicaId });
        done.push(r);
        this.noteReplicaBytes(r.extent);
      }
    } catch (e) {
      for (const r of done) this.mustDrive(r.node, r.drive).drop(r.extent.start, isReservation(res.id));
      throw e;
    }
    for (const r of res.replicas) this.mustNode(r.node).refresh();
    this.reservations.set(res.id, res);
  }

  private noteReplicaBytes(e: Extent): void {
    if (e.end - e.start > this.largestReplicaBytes) this.largestReplicaBytes = e.end - e.start;
  }

  release(reservationId: string): boolean {
    const res = this.reservations.get(reservationId);
    if (!res) return false;
    for (const r of res.replicas) {
      const n = this.nodeMap.get(r.node);
      n?.drive(r.drive)?.drop(r.extent.start, isReservation(reservationId));
      n?.refresh();
    }
    this.reservations.delete(reservationId);
    return true;
  }

  expireReservations(now: number): string[] {
    const gone: string[] = [];
    for (const [id, r] of this.reservations) {
      if (r.expiresAt !== undefined && r.expiresAt <= now) {
        this.release(id);
        gone.push(id);
      }
    }
    return gone;
  }

  /** Turns a reservation made for a new volume into that volume, members Pending. */
  commitVolume(
    reservationId: string,
    volume: Omit<VolumeInfo, 'replicas'>,
    state: MemberState = 'Pending',
  ): VolumeState {
    const res = this.reservations.get(reservationId);
    if (!res) throw new PlacementError('not-found', `reservation ${reservationId} does not exist`);
    if (this.volumes.has(volume.id))
      throw new PlacementError('conflict', `volume ${volume.id} exists already`);
    const v: VolumeState = { ...volume, replicas: [], nextReplica: 0 };
    this.volumes.set(v.id, v);
    this.claimReserved(res, v, state);
    return v;
  }

  /** Turns a reservation for one more member of an existing volume into that member. */
  commitReplica(reservationId: string, state: MemberState = 'Pending'): ReplicaInfo[] {
    const res = this.reservations.get(reservationId);
    if (!res) throw new PlacementError('not-found', `reservation ${reservationId} does not exist`);
    const v = this.mustVolume(res.volumeId);
    return this.claimReserved(res, v, state);
  }

  private claimReserved(res: Reservation, v: VolumeState, state: MemberState): ReplicaInfo[] {
    const added: ReplicaInfo[] = [];
    for (const r of res.replicas) {
      const d = this.mustDrive(r.node, r.drive);
      d.reclaim(r.extent.start, isReservation(res.id), {
        kind: 'replica',
        volumeId: v.id,
        replicaId: r.replicaId,
        onDisk: false,
      });
      const rep: ReplicaInfo = {
        id: r.replicaId,
        node: r.node,
        drive: r.drive,
        extent: { ...r.extent },
        state,
      };
      v.replicas.push(rep);
      added.push(rep);
      v.nextReplica = Math.max(v.nextReplica, replicaIndex(r.replicaId) + 1);
    }
    this.reservations.delete(res.id);
    return added;
  }

  // -------------------------------------------------------------------- volumes --

  /** Loads a volume as it exists (its extents are claimed even if they conflict: see drift). */
  loadVolume(info: VolumeInfo): VolumeState {
    if (this.volumes.has(info.id)) throw new PlacementError('conflict', `volume ${info.id} appears twice`);
    // Memory (issue 15 §3): 100k volumes are loaded this way, so the record is compact: object
    // literals of fixed shape (a spread copy allocates slack), one shared spread per policy, and
    // node names and drive ids that are the model's own strings rather than one copy per replica.
    const v: VolumeState = {
      id: info.id,
      sizeBytes: info.sizeBytes,
      replicaCount: info.replicaCount,
      spread: sharedSpread(info.spread),
      replicas: info.replicas.map((r) => this.replicaRecord(r)),
      attachedNode: info.attachedNode,
      nextReplica: 0,
    };
    for (const r of v.replicas) {
      v.nextReplica = Math.max(v.nextReplica, replicaIndex(r.id) + 1);
      if (r.state === 'Removed') continue;
      this.noteReplicaBytes(r.extent);
      const n = this.nodeMap.get(r.node);
      if (!n) {
        this.drift.push({
          kind: 'unknown-node',
          message: `volume ${v.id} replica ${r.id}: node ${r.node} is unknown`,
        });
        continue;
      }
      const d = n.drive(r.drive);
      if (!d) {
        this.drift.push({
          kind: 'missing-drive',
          message: `volume ${v.id} replica ${r.id}: drive ${r.node}/${r.drive} is unknown`,
        });
        continue;
      }
      const claim = { kind: 'replica' as const, volumeId: v.id, replicaId: r.id };
      const existing = d.find(r.extent.start, r.extent.end);
      if (existing && existing.claim.kind === 'orphan' && existing.claim.volumeId === v.id) {
        d.reclaim(existing.start, (c) => c === existing.claim, { ...claim, onDisk: true });
      } else {
        d.load(r.extent, { ...claim, onDisk: false });
      }
      n.refresh();
    }
    this.volumes.set(v.id, v);
    return v;
  }

  /** A loaded replica's record, its node name and drive id the model's own strings when it knows them. */
  private replicaRecord(r: ReplicaInfo): ReplicaInfo {
    const n = this.nodeMap.get(r.node);
    const d = n?.drive(r.drive);
    return {
      id: r.id,
      node: n ? n.name : r.node,
      drive: d ? d.id : r.drive,
      extent: { start: r.extent.start, end: r.extent.end },
      state: r.state,
    };
  }

  setReplicaState(volumeId: string, replicaId: string, state: MemberState): void {
    const r = this.mustReplica(volumeId, replicaId);
    if (state === 'Removed') throw new PlacementError('invalid', 'use removeReplica to remove a member');
    r.state = state;
  }

  /**
   * Drops a member and frees its extent. Refuses to drop the last in-sync copy unless `force`
   * (used only when the caller knows the volume is being deleted).
   */
  removeReplica(volumeId: string, replicaId: string, opts: { force?: boolean } = {}): void {
    const v = this.mustVolume(volumeId);
    const r = this.mustReplica(volumeId, replicaId);
    const inSync = v.replicas.filter((x) => x.state === 'InSync');
    if (!opts.force && r.state === 'InSync' && inSync.length === 1) {
      throw new PlacementError('unsafe', `volume ${volumeId}: replica ${replicaId} is the last in-sync copy`);
    }
    this.freeReplicaExtent(v, r);
    v.replicas = v.replicas.filter((x) => x !== r);
  }

  /**
   * Grows a member's extent in place to end at `newEnd`: the bytes after it must be free. Leaves
   * everything as it was when it refuses.
   */
  growReplica(volumeId: string, replicaId: string, newEnd: number): void {
    const v = this.mustVolume(volumeId);
    const r = this.mustReplica(volumeId, replicaId);
    if (newEnd <= r.extent.end) return;
    const d = this.mustDrive(r.node, r.drive);
    if (!d.isFree({ start: r.extent.end, end: newEnd })) {
      throw new PlacementError(
        'exhausted',
        `${r.node}/${r.drive}: the bytes after replica ${volumeId}/${replicaId} are not free`,
      );
    }
    const mine = (c: Claim) => c.kind === 'replica' && c.volumeId === v.id && c.replicaId === r.id;
    const claim = d.extents.find((t) => t.start === r.extent.start && mine(t.claim))?.claim;
    if (!claim)
      throw new PlacementError(
        'not-found',
        `replica ${volumeId}/${replicaId} has no extent on ${r.node}/${r.drive}`,
      );
    d.drop(r.extent.start, mine);
    d.load({ start: r.extent.start, end: newEnd }, claim);
    r.extent = { start: r.extent.start, end: newEnd };
    this.mustNode(r.node).refresh();
  }

  deleteVolume(volumeId: string): void {
    const v = this.mustVolume(volumeId);
    for (const r of v.replicas) this.freeReplicaExtent(v, r);
    this.volumes.delete(volumeId);
  }

  private freeReplicaExtent(v: VolumeState, r: ReplicaInfo): void {
    const n = this.nodeMap.get(r.node);
    const d = n?.drive(r.drive);
    if (!n || !d) return; // the node or drive is gone: nothing left to free
    d.drop(r.extent.start, (c) => c.kind === 'replica' && c.volumeId === v.id && c.replicaId === r.id);
    n.refresh();
  }

  private mustReplica(volumeId: string, replicaId: string): ReplicaInfo {
    const r = this.mustVolume(volumeId).replicas.find((x) => x.id === replicaId);
    if (!r) throw new PlacementError('not-found', `volume ${volumeId} has no replica ${replicaId}`);
    return r;
  }

  mustDrive(node: string, drive: string): DriveState {
    const d = this.mustNode(node).drive(drive);
    if (!d) throw new PlacementError('not-found', `drive ${node}/${drive} is not in the cluster model`);
    return d;
  }
}

/** One frozen SpreadPolicy per domain and mode, shared by the loaded volumes that have it. */
const spreads = new Map<string, Readonly<SpreadPolicy>>();
export function sharedSpread(p: SpreadPolicy): SpreadPolicy {
  const key = `${p.domain}/${p.mode}`;
  let s = spreads.get(key);
  if (!s) {
    s = Object.freeze({ domain: p.domain, mode: p.mode });
    spreads.set(key, s);
  }
  return s;
}

export function replicaIndex(id: string): number {
  const m = /(\d+)$/.exec(id);
  return m ? Number(m[1]) : -1;
}

function isReservation(id: string) {
  return (c: Claim) => c.kind === 'reservation' && c.reservationId === id;
}
