// The CSI Controller service's handlers: they check requests as the spec asks and hand the work to
// the allocator (controller/allocator.ts): CreateVolume places and records the layout, DeleteVolume
// marks the record (the finalizer keeps it until no agent reports a partition of it), GetCapacity
// reports what placement can really place, expansion grows extents in place or first moves a
// member that cannot (controller/expansion.ts). The background reconcilers (deletion, relocation,
// expansion) live in controller/ and cmd/ runs them.
import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { MIN_FILESYSTEM_BYTES } from '../agent/host/filesystem-minimums.ts';
import { Allocator, type AllocatorOptions } from '../controller/allocator.ts';
import { advanceExpansion } from '../controller/expansion.ts';
import { markDeleting } from '../controller/release.ts';
import { GiB, MiB } from '../placement/units.ts';
import type { VolumeRecord } from '../state/store.ts';
import { capabilityProblem } from './capabilities.ts';
import { alreadyExists, CsiError, invalid, notFound, outOfRange } from './errors.ts';
import { parseParameters } from './params.ts';
import {
  type ContentSource,
  type CreateSnapshotRequest,
  contentSourceOf,
  createSnapshot,
  type DeleteSnapshotRequest,
  deleteSnapshot,
  type ListSnapshotsRequest,
  listSnapshots,
  sameSource,
  seedingFor,
} from './snapshots.ts';
import { preferredNode, requisiteSegments, segmentOf } from './topology.ts';
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
import { checkId, checkRange } from './validate.ts';

export const DEFAULT_VOLUME_BYTES = GiB;
/** The allocator's options: the service builds its allocator from them. */
export type ControllerOptions = AllocatorOptions;

function checkCapabilities(caps: readonly VolumeCapability[] | undefined): void {
  if (!caps || caps.length === 0) throw invalid('volume_capabilities is required');
  for (const c of caps) {
    const p = capabilityProblem(c);
    if (p) throw invalid(p);
  }
}

/**
 * The size to provision for a capacity range: at least required, at most limit, whole MiB, and at
 * least `minBytes` (the filesystem's smallest, for a mount volume): a smaller request is rounded
 * up, as CSI allows while the limit permits, rather than refused, since a claim of a few MiB is
 * common (tests, small config volumes) and would otherwise fail only at NodeStage's mkfs.
 */
export function sizeFor(range: CapacityRange | null | undefined, minBytes = MiB): number {
  const { required, limit } = checkRange(range);
  const want =
    required > 0 ? required : limit > 0 ? Math.min(limit, DEFAULT_VOLUME_BYTES) : DEFAULT_VOLUME_BYTES;
  const size = Math.ceil(Math.max(want, minBytes) / MiB) * MiB;
  if (limit > 0 && size > limit)
    throw outOfRange(
      minBytes > want
        ? `limit_bytes ${limit} is below the ${minBytes} bytes the volume's filesystem needs`
        : `no whole-MiB size between ${required} and ${limit} bytes`,
    );
  return size;
}

/** The smallest volume its capabilities allow: a mount volume holds XFS, a block one anything. */
function minimumFor(caps: readonly VolumeCapability[]): number {
  return caps.some((c) => c.mount) ? MIN_FILESYSTEM_BYTES.xfs : MiB;
}

/** Volume ids are MeshStorVolume names: a DNS label, derived from the CSI name. */
export function volumeIdFor(name: string): string {
  if (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) return name;
  return `ms-${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

/** A Volume as CreateVolume answers it: with the content source it was made from (ADR 0010). */
type VolumeWithSource = Volume & { content_source?: ContentSource | undefined };

function toVolume(r: VolumeRecord): VolumeWithSource {
  return {
    content_source: contentSourceOf(r),
    capacity_bytes: String(r.sizeBytes),
    volume_id: r.id,
    volume_context: { replicaCount: String(r.replicaCount), spread: r.spread.mode, fsType: r.fsType },
    // No accessible_topology: the volume is reachable from every node, so the PV must not pin pods.
    accessible_topology: [],
  };
}

export class ControllerService {
  /** The allocator behind the handlers; cmd/ runs the reconcilers on it too. */
  readonly allocator: Allocator;

  constructor(opts: ControllerOptions | Allocator) {
    this.allocator = opts instanceof Allocator ? opts : new Allocator(opts);
  }

  /** Records withdrawn because another controller's overlapped them. */
  get collisions(): number {
    return this.allocator.collisions;
  }

  async createVolume(req: CreateVolumeRequest, signal?: AbortSignal): Promise<{ volume: VolumeWithSource }> {
    checkId(req.name, 'name');
    checkCapabilities(req.volume_capabilities);
    const params = parseParameters(req.parameters ?? {});
    const size = sizeFor(req.capacity_range, minimumFor(req.volume_capabilities));
    const { required, limit } = checkRange(req.capacity_range);
    const requisite = requisiteSegments(req.accessibility_requirements?.requisite);
    const id = volumeIdFor(req.name);
    const a = this.allocator;
    a.requireLeader();
    return a.perVolume.run(
      id,
      async () => {
        const existing = await a.store.get(id);
        if (existing) {
          const fits = existing.sizeBytes >= required && (limit === 0 || existing.sizeBytes <= limit);
          const same =
            existing.name === req.name &&
            sameSource(existing, req.volume_content_source as ContentSource | null) &&
            existing.replicaCount === params.replicaCount &&
            existing.spread.mode === params.spread.mode &&
            existing.spread.domain === params.spread.domain;
          if (existing.phase === 'Deleting')
            throw alreadyExists(`volume ${req.name} is being deleted; retry when it is gone`);
          if (!fits || !same)
            throw alreadyExists(`volume ${req.name} exists with a different size or parameters`);
          await a.confirm(existing);
          return { volume: toVolume(existing) };
        }
        // Snapshots and clones (ADR 0010): the new volume is at least the snapshot's size.
        const seeding = await seedingFor(a, req.volume_content_source as ContentSource | null, id);
        const sizeBytes = Math.max(size, seeding?.minBytes ?? 0);
        if (limit > 0 && sizeBytes > limit)
          throw outOfRange(`limit_bytes ${limit} is below the content source's ${sizeBytes} bytes`);
        const record = await a.create({
          id,
          name: req.name,
          sizeBytes,
          marks: seeding ? { seed: seeding.seed } : undefined,
          ...params,
          preferredNode: preferredNode(req.accessibility_requirements?.preferred),
          requisite,
        });
        return { volume: toVolume(record) };
      },
      signal,
    );
  }

  createSnapshot(req: CreateSnapshotRequest, signal?: AbortSignal) {
    return createSnapshot(this.allocator, req, signal);
  }

  deleteSnapshot(req: DeleteSnapshotRequest, signal?: AbortSignal) {
    return deleteSnapshot(this.allocator, req, signal);
  }

  listSnapshots(req: ListSnapshotsRequest) {
    return listSnapshots(this.allocator, req);
  }

  async deleteVolume(req: DeleteVolumeRequest, signal?: AbortSignal): Promise<Record<string, never>> {
    checkId(req.volume_id, 'volume_id');
    const a = this.allocator;
    a.requireLeader();
    await a.perVolume.run(req.volume_id, () => markDeleting(a.store, a.inventory, req.volume_id), signal);
    return {};
  }

  async validateVolumeCapabilities(req: ValidateVolumeCapabilitiesRequest) {
    checkId(req.volume_id, 'volume_id');
    if (!req.volume_capabilities || req.volume_capabilities.length === 0)
      throw invalid('volume_capabilities is required');
    const rec = await this.allocator.store.get(req.volume_id);
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
    const max = await this.allocator.capacity(segmentOf(req.accessible_topology), {
      replicaCount: params.replicaCount,
      spread: params.spread,
    });
    return { available_capacity: String(max), maximum_volume_size: { value: String(max) } };
  }

  async controllerGetCapabilities() {
    return {
      capabilities: [
        'CREATE_DELETE_VOLUME',
        'GET_CAPACITY',
        'EXPAND_VOLUME',
        'CREATE_DELETE_SNAPSHOT',
        'LIST_SNAPSHOTS',
        'CLONE_VOLUME',
      ].map((type) => ({
        rpc: { type },
      })),
    };
  }

  async controllerExpandVolume(req: ControllerExpandVolumeRequest, signal?: AbortSignal) {
    checkId(req.volume_id, 'volume_id');
    if (!req.capacity_range) throw invalid('capacity_range is required');
    if (req.volume_capability) checkCapabilities([req.volume_capability]);
    const size = sizeFor(req.capacity_range);
    const a = this.allocator;
    a.requireLeader();
    return a.perVolume.run(
      req.volume_id,
      async () => {
        const rec = await a.store.get(req.volume_id);
        if (!rec) throw notFound(`volume ${req.volume_id} does not exist`);
        const nodeExpansion = !req.volume_capability?.block;
        let sizeBytes = rec.sizeBytes;
        if (size > rec.sizeBytes) {
          // Grows in place, or moves a blocked member to a larger extent first (ADR 0009).
          const p = await advanceExpansion(a, rec.id, size);
          // ABORTED is CSI's "operation pending for volume": external-resizer takes it as not
          // final, keeps the claim's resize in progress and calls again with backoff.
          if (!p.done)
            throw new CsiError(
              status.ABORTED,
              `volume ${rec.id}: expansion to ${p.sizeBytes} bytes in progress: ${p.message}; retry`,
            );
          sizeBytes = p.sizeBytes;
        }
        return { capacity_bytes: String(sizeBytes), node_expansion_required: nodeExpansion };
      },
      signal,
    );
  }
}
