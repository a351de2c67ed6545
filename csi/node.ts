// The CSI Node service: stages a volume on this node through the Host interface (partition,
// MD RAID1, XFS, mount), publishes it to the pod's path (a bind of the staged filesystem, or of
// the array's device node for a raw block volume), reports usage and grows it.
// Members on other nodes come over NVMe-oF once the agent's reconciler exports them; until that
// exists this service stages volumes whose members are all local and says so otherwise.
import {
  DeviceInUseError,
  ForeignSuperblockError,
  InvalidArgumentError,
  NotFoundError,
} from '../agent/host/errors.ts';
import type { Host } from '../agent/host/types.ts';
import { capabilityProblem } from './controller.ts';
import { alreadyExists, failedPrecondition, invalid, notFound } from './errors.ts';
import { KeyedLock } from './lock.ts';
import type { VolumeRecord, VolumeStore } from './state.ts';
import { NODE_KEY, ZONE_KEY } from './topology.ts';
import type { StringMap, VolumeCapability } from './types.ts';

export interface NodeServiceOptions {
  nodeName: string;
  zone?: string | undefined;
  host: Host;
  store: VolumeStore;
  /**
   * Creates and removes publish targets: the CO expects the driver to create the target (a
   * directory, or a file for a raw block volume) and to delete it on unpublish.
   */
  mountPoints: {
    ensure(path: string, kind: 'file' | 'dir'): Promise<void>;
    /** Deletes the file or the empty directory at path (never anything recursively); gone is fine. */
    remove(path: string): Promise<void>;
  };
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

export class NodeService {
  private readonly o: NodeServiceOptions;
  private readonly perVolume = new KeyedLock();

  constructor(o: NodeServiceOptions) {
    this.o = o;
  }

  async nodeGetInfo() {
    const segments: StringMap = { [NODE_KEY]: this.o.nodeName };
    if (this.o.zone) segments[ZONE_KEY] = this.o.zone;
    return { node_id: this.o.nodeName, max_volumes_per_node: '0', accessible_topology: { segments } };
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

  private async record(volumeId: string): Promise<VolumeRecord> {
    const rec = await this.o.store.get(volumeId);
    if (!rec || rec.phase === 'Deleting') throw notFound(`volume ${volumeId} does not exist`);
    return rec;
  }

  /** The local partition of each member, created if the controller's layout has none on disk yet. */
  private async memberDevices(rec: VolumeRecord): Promise<string[]> {
    const live = rec.replicas.filter((r) => r.state !== 'Faulty' && r.state !== 'Removed');
    const remote = live.filter((r) => r.node !== this.o.nodeName);
    if (remote.length > 0) {
      throw failedPrecondition(
        `volume ${rec.id} has members on ${remote.map((r) => r.node).join(', ')}: remote members need the agent's NVMe-oF reconciler, which is not built yet`,
      );
    }
    const devices: string[] = [];
    for (const r of live) {
      const owner = { volumeId: rec.id, replicaId: r.id };
      const drive = (await this.o.host.listDrives()).find((d) => d.id === r.drive);
      if (!drive)
        throw failedPrecondition(`drive ${r.drive} of replica ${r.id} is not on node ${this.o.nodeName}`);
      let part = drive.partitions.find((p) => p.owner?.volumeId === rec.id && p.owner.replicaId === r.id);
      if (!part) [part] = await this.o.host.createPartitions(r.drive, [{ ...owner, extent: r.extent }]);
      if (!part) throw new Error(`internal: partition for ${rec.id}/${r.id} was not created`);
      devices.push(part.path);
    }
    return devices;
  }

  /** Assembles the volume's array, creating it only the first time. */
  private async ensureArray(rec: VolumeRecord): Promise<string> {
    const running = await this.o.host.getArray(rec.id);
    if (running) return running.devicePath;
    const devices = await this.memberDevices(rec);
    const spec = { volumeId: rec.id, devices };
    if (rec.arrayUuid) return (await this.o.host.assembleArray(spec)).devicePath;
    let info: Awaited<ReturnType<Host['createArray']>>;
    try {
      info = await this.o.host.createArray(spec);
    } catch (e) {
      // A crash after create and before the record was updated: the superblock is ours, assemble.
      if (!(e instanceof ForeignSuperblockError)) throw e;
      info = await this.o.host.assembleArray(spec);
    }
    rec.arrayUuid = info.uuid;
    for (const r of rec.replicas) if (r.state === 'Pending') r.state = 'InSync';
    await this.o.store.replace(rec);
    return info.devicePath;
  }

  async nodeStageVolume(req: StageRequest) {
    if (!req.volume_id) throw invalid('volume_id is required');
    if (!req.staging_target_path) throw invalid('staging_target_path is required');
    if (!req.volume_capability) throw invalid('volume_capability is required');
    const problem = capabilityProblem(req.volume_capability);
    if (problem) throw invalid(problem);
    return this.perVolume.run(req.volume_id, async () => {
      const rec = await this.record(req.volume_id);
      const md = await this.ensureArray(rec);
      if (req.volume_capability?.mount) {
        await this.o.host.makeFilesystem(md);
        await this.o.host.mount(md, req.staging_target_path);
      }
      return {};
    });
  }

  async nodeUnstageVolume(req: { volume_id: string; staging_target_path: string }) {
    if (!req.volume_id) throw invalid('volume_id is required');
    if (!req.staging_target_path) throw invalid('staging_target_path is required');
    return this.perVolume.run(req.volume_id, async () => {
      await this.o.host.unmount(req.staging_target_path);
      try {
        await this.o.host.stopArray(req.volume_id);
      } catch (e) {
        // still published (a pod's bind holds the array): the CO unpublishes first
        if (e instanceof DeviceInUseError) throw failedPrecondition(e.message);
        throw e;
      }
      return {};
    });
  }

  async nodePublishVolume(req: PublishRequest) {
    if (!req.volume_id) throw invalid('volume_id is required');
    if (!req.staging_target_path) throw invalid('staging_target_path is required');
    if (!req.target_path) throw invalid('target_path is required');
    if (!req.volume_capability) throw invalid('volume_capability is required');
    const problem = capabilityProblem(req.volume_capability);
    if (problem) throw invalid(problem);
    return this.perVolume.run(req.volume_id, async () => {
      await this.record(req.volume_id);
      const array = await this.o.host.getArray(req.volume_id);
      if (!array) throw failedPrecondition(`volume ${req.volume_id} is not staged on ${this.o.nodeName}`);
      const bind = { readonly: req.readonly };
      try {
        if (req.volume_capability?.block) {
          await this.o.mountPoints.ensure(req.target_path, 'file');
          await this.o.host.bindDevice(array.devicePath, req.target_path, bind);
        } else {
          // a bind of the staged mount, not a second mount of the device: a read-only publish is
          // then a read-only view of the one filesystem the volume has on this node
          await this.o.mountPoints.ensure(req.target_path, 'dir');
          await this.o.host.bindMount(req.staging_target_path, req.target_path, bind);
        }
      } catch (e) {
        if (e instanceof NotFoundError)
          throw failedPrecondition(`volume ${req.volume_id} is not staged at ${req.staging_target_path}`);
        if (e instanceof DeviceInUseError) throw alreadyExists(e.message);
        if (e instanceof InvalidArgumentError) throw invalid(e.message);
        throw e;
      }
      return {};
    });
  }

  async nodeUnpublishVolume(req: { volume_id: string; target_path: string }) {
    if (!req.volume_id) throw invalid('volume_id is required');
    if (!req.target_path) throw invalid('target_path is required');
    return this.perVolume.run(req.volume_id, async () => {
      await this.o.host.unmount(req.target_path);
      await this.o.mountPoints.remove(req.target_path);
      return {};
    });
  }

  async nodeGetVolumeStats(req: { volume_id: string; volume_path: string }) {
    if (!req.volume_id) throw invalid('volume_id is required');
    if (!req.volume_path) throw invalid('volume_path is required');
    await this.record(req.volume_id);
    const array = await this.o.host.getArray(req.volume_id);
    const at = await this.o.host.getMount(req.volume_path);
    if (!array || at?.devicePath !== array.devicePath)
      throw notFound(`volume ${req.volume_id} is not mounted at ${req.volume_path}`);
    const volume_condition = array.degraded
      ? { abnormal: true, message: `array ${array.name} is degraded` }
      : { abnormal: false, message: '' };
    // a raw block volume has no filesystem to count: the spec allows total bytes alone
    if (at.kind === 'device')
      return { usage: [{ unit: 'BYTES', total: String(array.sizeBytes) }], volume_condition };
    const u = await this.o.host.filesystemUsage(req.volume_path);
    return {
      usage: [
        {
          unit: 'BYTES',
          total: String(u.sizeBytes),
          used: String(u.usedBytes),
          available: String(u.freeBytes),
        },
        {
          unit: 'INODES',
          total: String(u.inodes),
          used: String(u.inodes - u.inodesFree),
          available: String(u.inodesFree),
        },
      ],
      volume_condition,
    };
  }

  async nodeExpandVolume(req: {
    volume_id: string;
    volume_path: string;
    capacity_range: { required_bytes: string } | null;
  }) {
    if (!req.volume_id) throw invalid('volume_id is required');
    if (!req.volume_path) throw invalid('volume_path is required');
    return this.perVolume.run(req.volume_id, async () => {
      const rec = await this.record(req.volume_id);
      const array = await this.o.host.getArray(rec.id);
      if (!array) throw failedPrecondition(`volume ${rec.id} is not staged on ${this.o.nodeName}`);
      // The controller recorded the larger extents; grow each local partition to match, then md.
      const drives = await this.o.host.listDrives();
      for (const r of rec.replicas.filter((x) => x.node === this.o.nodeName && x.state !== 'Faulty')) {
        const part = drives
          .find((d) => d.id === r.drive)
          ?.partitions.find((p) => p.owner?.volumeId === rec.id && p.owner.replicaId === r.id);
        if (part && part.end < r.extent.end) {
          await this.o.host.growPartition(r.drive, { volumeId: rec.id, replicaId: r.id }, r.extent.end);
        }
      }
      await this.o.host.growArray(rec.id);
      const at = await this.o.host.getMount(req.volume_path);
      if (!at) throw notFound(`nothing of volume ${rec.id} is mounted at ${req.volume_path}`);
      // a raw block volume is grown once its device is: the pod's bind is the same device node
      if (at.kind === 'filesystem') await this.o.host.growFilesystem(req.volume_path);
      return { capacity_bytes: String((await this.o.host.getArray(rec.id))?.sizeBytes ?? rec.sizeBytes) };
    });
  }
}
