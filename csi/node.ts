// The CSI Node service: stages a volume on this node through the Host interface (partition,
// MD RAID1, XFS, mount), publishes it to the pod's path, reports usage and grows it.
// Members on other nodes come over NVMe-oF once the agent's reconciler exports them; until that
// exists this service stages volumes whose members are all local and says so otherwise.
import { ForeignSuperblockError, NotFoundError } from '../agent/host/errors.ts';
import type { Host } from '../agent/host/types.ts';
import { capabilityProblem } from './controller.ts';
import { failedPrecondition, invalid, notFound } from './errors.ts';
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
   * Creates and removes mount-point directories: the CO expects the driver to create the publish
   * target and to remove it on unpublish.
   */
  mountPoints: { ensure(path: string): Promise<void>; remove(path: string): Promise<void> };
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
      await this.o.host.stopArray(req.volume_id);
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
    if (req.readonly) throw invalid('read-only publishing is not supported (no PUBLISH_READONLY capability)');
    return this.perVolume.run(req.volume_id, async () => {
      await this.record(req.volume_id);
      const array = await this.o.host.getArray(req.volume_id);
      if (!array) throw failedPrecondition(`volume ${req.volume_id} is not staged on ${this.o.nodeName}`);
      if (req.volume_capability?.block) {
        throw failedPrecondition(
          'publishing a raw block device is not built yet (the Host has no device bind mount)',
        );
      }
      await this.o.mountPoints.ensure(req.target_path);
      await this.o.host.mount(array.devicePath, req.target_path);
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
    let u: Awaited<ReturnType<Host['filesystemUsage']>>;
    try {
      u = await this.o.host.filesystemUsage(req.volume_path);
    } catch (e) {
      if (e instanceof NotFoundError)
        throw notFound(`volume ${req.volume_id} is not mounted at ${req.volume_path}`);
      throw e;
    }
    const array = await this.o.host.getArray(req.volume_id);
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
      volume_condition: array?.degraded
        ? { abnormal: true, message: `array ${array.name} is degraded` }
        : { abnormal: false, message: '' },
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
      try {
        await this.o.host.growFilesystem(req.volume_path);
      } catch (e) {
        if (e instanceof NotFoundError)
          throw notFound(`nothing of volume ${rec.id} is mounted at ${req.volume_path}`);
        throw e;
      }
      return { capacity_bytes: String((await this.o.host.getArray(rec.id))?.sizeBytes ?? rec.sizeBytes) };
    });
  }
}
