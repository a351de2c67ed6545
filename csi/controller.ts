// The CSI Controller service: CreateVolume asks placement for replicas and records the layout;
// DeleteVolume marks the record and keeps it (the finalizer) until no agent reports a partition of
// it; GetCapacity reports what placement can really place; expansion grows extents in place.
import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { PlacementCache } from '../controller/placement-cache.ts';
import {
  beginRelocation,
  cancelRelocation,
  type RelocationPass,
  releaseRemoved,
  relocationEnded,
  relocationTarget,
} from '../controller/relocator.ts';
import { ClusterState } from '../placement/cluster.ts';
import { PlacementEngine } from '../placement/engine.ts';
import type { NodeInfo, ReplicaInfo } from '../placement/model.ts';
import type { PlacementPolicy } from '../placement/policies.ts';
import { GiB, MiB } from '../placement/units.ts';
import { KeyedLock } from '../state/lock.ts';
import { type NodeInventory, reportsPartition, type VolumeRecord, type VolumeStore } from '../state/store.ts';
import { alreadyExists, CsiError, exhausted, invalid, notFound, outOfRange, toCsiError } from './errors.ts';
import { parseParameters } from './params.ts';
import { preferredNode, segmentOf } from './topology.ts';
import type {
  CapacityRange,
  ControllerExpandVolumeRequest,
  CreateVolumeRequest,
  DeleteVolumeRequest,
  GetCapacityRequest,
  ValidateVolumeCapabilitiesRequest,
  Volume,
  VolumeCapability,
} from './types.ts';

export const DEFAULT_VOLUME_BYTES = GiB;
const SUPPORTED_MODES = new Set([
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
]);

export interface ControllerOptions {
  store: VolumeStore;
  inventory: NodeInventory;
  /** When set, only the holder of the allocator lease changes volumes; others answer UNAVAILABLE. */
  leader?: { isLeader: boolean; currentHolder: string | undefined } | undefined;
  /**
   * Placement inputs kept current by informers (`--state kube`). Without it every decision lists
   * every node and volume. Either way the double-booking check re-reads the store.
   */
  model?: PlacementCache | undefined;
  /** With a model: how long CreateVolume and GetCapacity wait for its first lists before UNAVAILABLE. */
  syncWaitMs?: number;
  /** Scale of the randomised backoff after a collision (default 50 ms; tests shorten it). */
  backoffMs?: number;
  /** Ignored with a model (it has its own). */
  policy?: PlacementPolicy;
  seed?: number;
}

/** Why a capability cannot be served, or undefined. */
export function capabilityProblem(c: VolumeCapability): string | undefined {
  if (!c.access_mode || c.access_mode.mode === 'UNKNOWN') return 'access_mode is required';
  if (!c.block && !c.mount) return 'access_type (block or mount) is required';
  if (!SUPPORTED_MODES.has(c.access_mode.mode)) {
    return `access mode ${c.access_mode.mode} is not supported: a MeshStor volume is used by one node at a time`;
  }
  if (c.mount && c.mount.fs_type !== '' && c.mount.fs_type !== 'xfs')
    return `fs_type ${c.mount.fs_type} is not supported (xfs)`;
  return undefined;
}

function checkCapabilities(caps: readonly VolumeCapability[] | undefined): void {
  if (!caps || caps.length === 0) throw invalid('volume_capabilities is required');
  for (const c of caps) {
    const p = capabilityProblem(c);
    if (p) throw invalid(p);
  }
}

function int64(v: string | number | undefined, field: string): number {
  const n = Number(v ?? 0);
  if (!Number.isFinite(n) || n < 0) throw invalid(`${field} must not be negative`);
  if (!Number.isSafeInteger(n)) throw outOfRange(`${field} ${v} is larger than MeshStor can address`);
  return n;
}

/** The size to provision for a capacity range: at least required, at most limit, whole MiB. */
export function sizeFor(range: CapacityRange | null | undefined): number {
  const required = int64(range?.required_bytes, 'capacity_range.required_bytes');
  const limit = int64(range?.limit_bytes, 'capacity_range.limit_bytes');
  if (limit > 0 && required > limit)
    throw invalid(`required_bytes ${required} is above limit_bytes ${limit}`);
  const want =
    required > 0 ? required : limit > 0 ? Math.min(limit, DEFAULT_VOLUME_BYTES) : DEFAULT_VOLUME_BYTES;
  const size = Math.ceil(want / MiB) * MiB;
  if (limit > 0 && size > limit) throw outOfRange(`no whole-MiB size between ${required} and ${limit} bytes`);
  return size;
}

/** Volume ids are MeshStorVolume names: a DNS label, derived from the CSI name. */
export function volumeIdFor(name: string): string {
  if (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) return name;
  return `ms-${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

function toVolume(r: VolumeRecord): Volume {
  return {
    capacity_bytes: String(r.sizeBytes),
    volume_id: r.id,
    volume_context: { replicaCount: String(r.replicaCount), spread: r.spread.mode, fsType: r.fsType },
    // No accessible_topology: the volume is reachable from every node, so the PV must not pin pods.
    accessible_topology: [],
  };
}

export class ControllerService {
  private readonly store: VolumeStore;
  private readonly inventory: NodeInventory;
  private readonly opts: ControllerOptions;
  private readonly perVolume = new KeyedLock();
  /** Records this controller withdrew because another controller's overlapped them (a metric). */
  collisions = 0;
  /** One allocation at a time in this process: decisions read and write the same free space. */
  private readonly allocation = new KeyedLock();

  constructor(opts: ControllerOptions) {
    this.store = opts.store;
    this.inventory = opts.inventory;
    this.opts = opts;
  }

  private requireLeader(): void {
    const l = this.opts.leader;
    if (l && !l.isLeader) {
      throw new CsiError(
        status.UNAVAILABLE,
        `this controller is not the active allocator (lease held by ${l.currentHolder ?? 'nobody yet'}); retry`,
      );
    }
  }

  /**
   * A placement engine over what the agents report and every recorded volume: the live model when
   * there is one, else one built from fresh lists.
   */
  private async engine(): Promise<PlacementEngine> {
    const model = this.opts.model;
    if (!model) return this.freshEngine();
    await model.ensureSynced(this.opts.syncWaitMs ?? 5000);
    return model.engine;
  }

  /** An engine built from lists read now: for decisions no later re-read checks. */
  private async freshEngine(): Promise<PlacementEngine> {
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

  async createVolume(req: CreateVolumeRequest): Promise<{ volume: Volume }> {
    if (!req.name) throw invalid('name is required');
    checkCapabilities(req.volume_capabilities);
    if (req.volume_content_source)
      throw invalid('volume_content_source is not supported (no snapshots or clones yet)');
    const params = parseParameters(req.parameters ?? {});
    const size = sizeFor(req.capacity_range);
    const id = volumeIdFor(req.name);
    this.requireLeader();
    return this.perVolume.run(id, async () => {
      const existing = await this.store.get(id);
      if (existing) {
        const required = int64(req.capacity_range?.required_bytes, 'required_bytes');
        const limit = int64(req.capacity_range?.limit_bytes, 'limit_bytes');
        const fits = existing.sizeBytes >= required && (limit === 0 || existing.sizeBytes <= limit);
        const same =
          existing.name === req.name &&
          existing.replicaCount === params.replicaCount &&
          existing.spread.mode === params.spread.mode &&
          existing.spread.domain === params.spread.domain;
        if (existing.phase === 'Deleting')
          throw alreadyExists(`volume ${req.name} is being deleted; retry when it is gone`);
        if (!fits || !same)
          throw alreadyExists(`volume ${req.name} exists with a different size or parameters`);
        return { volume: toVolume(existing) };
      }
      const contested: ReplicaInfo[] = [];
      for (let attempt = 1; ; attempt++) {
        const record = await this.allocation.run('', () =>
          this.allocateRecord(req, id, size, params, contested),
        );
        // Another controller may have placed a volume on the same bytes at the same moment. Both
        // re-read after writing; the later reader always sees the other's record, so at most one
        // of two overlapping records survives. The one that sees a clash yields and tries again,
        // away from the contested bytes (the other side may have yielded too).
        const clash = await this.overlapping(record);
        if (!clash) return { volume: toVolume(record) };
        this.collisions++;
        // Avoid the other record's bytes too: a lagging model may not know it yet, and would
        // otherwise place next to our own contested bytes and onto it again.
        contested.push(...record.replicas, ...clash.replicas);
        await this.withdraw(record.id);
        this.opts.model?.drop(record.id);
        if (attempt >= 8) {
          throw new CsiError(
            status.ABORTED,
            `volume ${req.name}: extents kept colliding with ${clash.id}; retry`,
          );
        }
        // Randomised exponential backoff, so the other side's record is visible before one of us
        // allocates again. (A fixed tie-break would be unsafe when one side never saw the other.)
        await new Promise((r) => setTimeout(r, Math.random() * (this.opts.backoffMs ?? 50) * 2 ** attempt));
      }
    });
  }

  private async allocateRecord(
    req: CreateVolumeRequest,
    id: string,
    size: number,
    params: ReturnType<typeof parseParameters>,
    avoid: readonly ReplicaInfo[],
  ): Promise<VolumeRecord> {
    const engine = await this.engine();
    const model = this.opts.model;
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
        sizeBytes: size,
        replicaCount: params.replicaCount,
        spread: params.spread,
        preferredNode: preferredNode(req.accessibility_requirements?.preferred),
      });
    } finally {
      for (const h of held) engine.cluster.release(h);
    }
    if (!r.ok) {
      if (r.code === 'exhausted') {
        const reasons = Object.entries(r.nodeReasons)
          .slice(0, 10)
          .map(([n, why]) => `${n}: ${why}`)
          .join('; ');
        throw exhausted(`${r.message}${reasons ? ` (${reasons})` : ''}`);
      }
      throw toCsiError(new Error(r.message));
    }
    const record: VolumeRecord = {
      id,
      name: req.name,
      sizeBytes: size,
      replicaCount: params.replicaCount,
      spread: params.spread,
      fsType: params.fsType,
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
  private async overlapping(mine: VolumeRecord): Promise<VolumeRecord | undefined> {
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

  /** Takes back a record this controller just wrote (nothing can be on disk for it yet). */
  private async withdraw(id: string): Promise<void> {
    const rec = await this.store.get(id);
    if (!rec) return;
    if (rec.phase !== 'Deleting') {
      rec.phase = 'Deleting';
      await this.store.replace(rec);
    }
    await this.finalizeIfWiped(id);
  }

  async deleteVolume(req: DeleteVolumeRequest): Promise<Record<string, never>> {
    if (!req.volume_id) throw invalid('volume_id is required');
    this.requireLeader();
    return this.perVolume.run(req.volume_id, async () => {
      const rec = await this.store.get(req.volume_id);
      if (!rec) return {};
      if (rec.phase !== 'Deleting') {
        rec.phase = 'Deleting';
        await this.store.replace(rec);
      }
      await this.finalizeIfWiped(rec.id);
      return {};
    });
  }

  /**
   * Drops every Deleting record whose partitions no agent reports any more (DeleteVolume returned
   * long ago; the agents wipe afterwards). Returns the volumes released.
   */
  async finalizeDeleted(): Promise<string[]> {
    if (this.opts.leader && !this.opts.leader.isLeader) return [];
    const out: string[] = [];
    let nodes: NodeInfo[] | undefined; // read once per pass, and only if a volume is being deleted
    for (const rec of await this.store.list()) {
      if (rec.phase !== 'Deleting') continue;
      nodes ??= await this.inventory.nodes();
      const seen = nodes;
      if (await this.perVolume.run(rec.id, () => this.finalizeIfWiped(rec.id, seen))) out.push(rec.id);
    }
    return out;
  }

  /**
   * Drops a Deleting record once no agent reports a partition of it: only then are its extents free.
   * `nodes`: the agents' reports, when the caller read them already (read after the records, so a
   * wipe they show happened after the deletion was recorded).
   */
  async finalizeIfWiped(id: string, nodes?: readonly NodeInfo[]): Promise<boolean> {
    const rec = await this.store.get(id);
    if (rec?.phase !== 'Deleting') return false;
    if (reportsPartition(nodes ?? (await this.inventory.nodes()), id)) return false;
    await this.store.remove(id);
    return true;
  }

  async validateVolumeCapabilities(req: ValidateVolumeCapabilitiesRequest) {
    if (!req.volume_id) throw invalid('volume_id is required');
    if (!req.volume_capabilities || req.volume_capabilities.length === 0)
      throw invalid('volume_capabilities is required');
    const rec = await this.store.get(req.volume_id);
    if (!rec) throw notFound(`volume ${req.volume_id} does not exist`);
    const problems = req.volume_capabilities
      .map(capabilityProblem)
      .filter((p): p is string => p !== undefined);
    if (problems.length > 0) return { message: problems.join('; ') };
    return {
      confirmed: {
        volume_context: req.volume_context,
        volume_capabilities: req.volume_capabilities,
        parameters: req.parameters,
        mutable_parameters: req.mutable_parameters,
      },
    };
  }

  async getCapacity(req: GetCapacityRequest) {
    for (const c of req.volume_capabilities ?? []) {
      // An unsupported capability has no capacity; the spec asks for 0, not an error.
      if (capabilityProblem(c)) return { available_capacity: '0' };
    }
    // Bad StorageClass parameters are the user's to see on their claim: CreateVolume refuses them
    // with INVALID_ARGUMENT, which the provisioner turns into a ProvisioningFailed Event on the PVC.
    // Erroring here instead would leave no CSIStorageCapacity for the class, so the scheduler would
    // never pick a node, CreateVolume would never run, and the claim would say nothing. So capacity
    // for such a class is reported as for the default parameters.
    let params: ReturnType<typeof parseParameters>;
    try {
      params = parseParameters(req.parameters ?? {});
    } catch {
      params = parseParameters({});
    }
    const engine = await this.engine();
    const max = engine.capacity(segmentOf(req.accessible_topology), {
      replicaCount: params.replicaCount,
      spread: params.spread,
    });
    return { available_capacity: String(max), maximum_volume_size: { value: String(max) } };
  }

  async controllerGetCapabilities() {
    return {
      capabilities: ['CREATE_DELETE_VOLUME', 'GET_CAPACITY', 'EXPAND_VOLUME'].map((type) => ({
        rpc: { type },
      })),
    };
  }

  async controllerExpandVolume(req: ControllerExpandVolumeRequest) {
    if (!req.volume_id) throw invalid('volume_id is required');
    if (!req.capacity_range) throw invalid('capacity_range is required');
    if (req.volume_capability) checkCapabilities([req.volume_capability]);
    const size = sizeFor(req.capacity_range);
    this.requireLeader();
    return this.perVolume.run(req.volume_id, async () => {
      const rec = await this.store.get(req.volume_id);
      if (!rec) throw notFound(`volume ${req.volume_id} does not exist`);
      const nodeExpansion = !req.volume_capability?.block;
      if (size <= rec.sizeBytes)
        return { capacity_bytes: String(rec.sizeBytes), node_expansion_required: nodeExpansion };
      return this.allocation.run('', async () => {
        // Growth is not re-checked against other records after the write, so it is decided on
        // fresh lists, never on a model that may lag (expansion is rare; this is not the hot path).
        const engine = await this.freshEngine();
        const plan = engine.planExpand(rec.id, size);
        if (!plan.ok)
          throw plan.code === 'exhausted' ? exhausted(plan.message) : toCsiError(new Error(plan.message));
        for (const g of plan.grows) {
          const r = rec.replicas.find((x) => x.id === g.replicaId);
          if (r) r.extent = { start: g.start, end: g.newEnd };
        }
        rec.sizeBytes = size;
        await this.store.replace(rec);
        this.heldGrowth(rec.id, plan.grows);
        return { capacity_bytes: String(size), node_expansion_required: nodeExpansion };
      });
    });
  }

  /** Shows growth in the live model now, so the next decision does not wait for the informer. */
  private heldGrowth(id: string, grows: readonly { replicaId: string; newEnd: number }[]): void {
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

  /**
   * One relocation pass (the allocator only): starts moving a member to each healthy volume's
   * attached node that holds none, and releases the old members of relocations that ended.
   * The steps on disk are the attached node's agent's (agent/relocation.ts).
   */
  async relocate(): Promise<RelocationPass> {
    const out: RelocationPass = { started: [], finished: [], blocked: [] };
    if (this.opts.leader && !this.opts.leader.isLeader) return out;
    let nodes: NodeInfo[] | undefined; // read once, and only when a relocation has ended
    for (const listed of await this.store.list()) {
      // Only volumes with something to do are read again (under their lock).
      if (listed.phase !== 'Active' || (!listed.relocation && !relocationTarget(listed))) continue;
      await this.perVolume.run(listed.id, async () => {
        const rec = await this.store.get(listed.id);
        if (!rec) return;
        if (relocationEnded(rec)) nodes ??= await this.inventory.nodes();
        if (releaseRemoved(rec, nodes ?? [])) {
          await this.store.replace(rec);
          if (!rec.relocation) out.finished.push(rec.id);
          return;
        }
        const to = relocationTarget(rec);
        if (!to) return;
        // Decided on fresh lists (relocations are rare; a lagging model would only cost a retry).
        const started = await this.allocation.run('', async () => {
          const res = (await this.freshEngine()).planRelocation(rec.id, to);
          if (!res.ok) {
            out.blocked.push({ volume: rec.id, reason: res.message });
            return false;
          }
          if (res.noop || !beginRelocation(rec, res.plan)) return false;
          await this.store.replace(rec);
          return true;
        });
        if (!started) return;
        // As for CreateVolume: re-read after writing; a clash takes the new member back.
        if (await this.overlapping(rec)) {
          const again = await this.store.get(rec.id);
          if (again) {
            cancelRelocation(again);
            await this.store.replace(again);
          }
          out.blocked.push({
            volume: rec.id,
            reason: 'the new extent collided with another record; retrying',
          });
          return;
        }
        out.started.push(`${rec.id} -> ${to}`);
      });
    }
    return out;
  }
}
