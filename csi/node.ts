// The CSI Node service's handlers: they check requests as the spec asks and hand the work to the
// agent (agent/node-volumes.ts), with the call's signal, so a cancelled call or a passed deadline
// stops the host commands it started.
import { NodeVolumes, type NodeVolumesOptions } from '../agent/node-volumes.ts';
import { capabilityProblem, mountFlagsOf } from './capabilities.ts';
import { invalid, notFound } from './errors.ts';
import { NODE_KEY, ZONE_KEY } from './topology.ts';
import type { CapacityRange, StringMap, VolumeCapability } from './types.ts';
import { checkId, checkPath, checkRange, kubeletRoot } from './validate.ts';

export interface NodeServiceOptions extends NodeVolumesOptions {
  zone?: string | undefined;
  /**
   * kubelet's directory (`--kubelet-dir`, default /var/lib/kubelet): every staging, target and
   * volume path must be absolute, normalised and under it, so a careless or hostile caller cannot
   * make the driver create, mount or remove anything elsewhere. Always checked.
   */
  kubeletDir: string;
}

interface StageRequest {
  volume_id: string;
  staging_target_path: string;
  volume_capability: VolumeCapability | null;
  volume_context: StringMap;
}

interface PublishRequest extends StageRequest {
  target_path: string;
  readonly: boolean;
}

/** The access type of a checked capability. */
function accessOf(c: VolumeCapability | null): 'mount' | 'block' {
  if (!c) throw invalid('volume_capability is required');
  const problem = capabilityProblem(c);
  if (problem) throw invalid(problem);
  return c.block ? 'block' : 'mount';
}

export class NodeService {
  private readonly zone: string | undefined;
  private readonly kubeletRoot: string;
  readonly volumes: NodeVolumes;

  constructor(o: NodeServiceOptions) {
    this.zone = o.zone;
    this.kubeletRoot = kubeletRoot(o.kubeletDir);
    this.volumes = new NodeVolumes(o);
  }

  /** A staging, target or volume path, checked against kubelet's directory. */
  private path(value: string | undefined, field: string): string {
    return checkPath(value, field, this.kubeletRoot);
  }

  /**
   * The path NodeGetVolumeStats and NodeExpandVolume read a volume at: required, and a path that is
   * not a kubelet path cannot be where the volume is, which the spec answers NOT_FOUND ("volume not
   * accessible at volume_path"). Only read, never created or removed; the work below checks that
   * what is mounted there is this volume.
   */
  private volumePath(volumeId: string, value: string | undefined): string {
    if (!value) throw invalid('volume_path is required');
    try {
      return this.path(value, 'volume_path');
    } catch (e) {
      throw notFound(`volume ${volumeId} is not accessible there: ${(e as Error).message}`);
    }
  }

  async nodeGetInfo() {
    const segments: StringMap = { [NODE_KEY]: this.volumes.nodeName };
    if (this.zone) segments[ZONE_KEY] = this.zone;
    return { node_id: this.volumes.nodeName, max_volumes_per_node: '0', accessible_topology: { segments } };
  }

  // No capability for read-only publishing: the spec's PUBLISH_READONLY is a
  // ControllerServiceCapability about ControllerPublishVolume.readonly (MeshStor has no
  // ControllerPublish), and NodeServiceCapability has no counterpart: NodePublishVolume's
  // `readonly` is always honoured.
  async nodeGetCapabilities() {
    return {
      capabilities: ['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'EXPAND_VOLUME'].map((type) => ({
        rpc: { type },
      })),
    };
  }

  async nodeStageVolume(req: StageRequest, signal?: AbortSignal) {
    const volumeId = checkId(req.volume_id, 'volume_id');
    const stagingPath = this.path(req.staging_target_path, 'staging_target_path');
    const access = accessOf(req.volume_capability);
    await this.volumes.stage(
      { volumeId, stagingPath, access, mountFlags: mountFlagsOf(req.volume_capability) },
      signal,
    );
    return {};
  }

  async nodeUnstageVolume(req: { volume_id: string; staging_target_path: string }, signal?: AbortSignal) {
    const volumeId = checkId(req.volume_id, 'volume_id');
    const stagingPath = this.path(req.staging_target_path, 'staging_target_path');
    await this.volumes.unstage({ volumeId, stagingPath }, signal);
    return {};
  }

  async nodePublishVolume(req: PublishRequest, signal?: AbortSignal) {
    const volumeId = checkId(req.volume_id, 'volume_id');
    const stagingPath = this.path(req.staging_target_path, 'staging_target_path');
    const targetPath = this.path(req.target_path, 'target_path');
    // the flags are checked (accessOf) but not applied: the publish binds the staged mount, and a
    // bind carries its source's per-mount flags (nosuid, nodev, noexec, atime)
    const access = accessOf(req.volume_capability);
    await this.volumes.publish({ volumeId, stagingPath, targetPath, access, readonly: req.readonly }, signal);
    return {};
  }

  async nodeUnpublishVolume(req: { volume_id: string; target_path: string }, signal?: AbortSignal) {
    const volumeId = checkId(req.volume_id, 'volume_id');
    const targetPath = this.path(req.target_path, 'target_path');
    await this.volumes.unpublish({ volumeId, targetPath }, signal);
    return {};
  }

  async nodeGetVolumeStats(req: { volume_id: string; volume_path: string }, signal?: AbortSignal) {
    const volumeId = checkId(req.volume_id, 'volume_id');
    const volumePath = this.volumePath(volumeId, req.volume_path);
    const u = await this.volumes.usage({ volumeId, volumePath }, signal);
    const volume_condition = u.degraded
      ? { abnormal: true, message: u.degraded }
      : { abnormal: false, message: '' };
    // a raw block volume has no filesystem to count: the spec allows total bytes alone
    if (u.kind === 'device')
      return { usage: [{ unit: 'BYTES', total: String(u.sizeBytes) }], volume_condition };
    const fs = u.usage;
    return {
      usage: [
        {
          unit: 'BYTES',
          total: String(fs.sizeBytes),
          used: String(fs.usedBytes),
          available: String(fs.freeBytes),
        },
        {
          unit: 'INODES',
          total: String(fs.inodes),
          used: String(fs.inodes - fs.inodesFree),
          available: String(fs.inodesFree),
        },
      ],
      volume_condition,
    };
  }

  async nodeExpandVolume(
    req: {
      volume_id: string;
      volume_path: string;
      capacity_range: CapacityRange | null;
      staging_target_path?: string;
      volume_capability?: VolumeCapability | null;
    },
    signal?: AbortSignal,
  ) {
    const volumeId = checkId(req.volume_id, 'volume_id');
    const volumePath = this.volumePath(volumeId, req.volume_path);
    if (req.staging_target_path) this.path(req.staging_target_path, 'staging_target_path');
    if (req.volume_capability) accessOf(req.volume_capability);
    const { required, limit } = checkRange(req.capacity_range);
    const size = await this.volumes.expand(
      { volumeId, volumePath, requiredBytes: required, limitBytes: limit },
      signal,
    );
    return { capacity_bytes: String(size) };
  }
}
