// The CSI Node service: stages a volume on this node through the Host interface (partitions,
// NVMe-oF connections to members on other nodes, MD RAID1, XFS, mount), publishes it to the pod's
// path (a bind of the staged filesystem, or of the array's device node for a raw block volume),
// reports usage and grows it. Staging records this node as the volume's attachment; the owners'
// agents (agent/exports.ts) then export the other members to this node only.
import { ensurePartition } from '../agent/exports.ts';
import {
  CommandError,
  ConnectRefusedError,
  DeviceInUseError,
  ForeignSuperblockError,
  InvalidArgumentError,
  NotFoundError,
} from '../agent/host/errors.ts';
import { subsystemNqn } from '../agent/host/names.ts';
import type { ArrayInfo, Host } from '../agent/host/types.ts';
import { MEMBER_FROM_ARRAY, writeMemberStates } from '../agent/members.ts';
import type { ReplicaInfo } from '../placement/model.ts';
import { KeyedLock } from '../state/lock.ts';
import { type PeerDirectory, updateRecord, type VolumeRecord, type VolumeStore } from '../state/store.ts';
import { capabilityProblem } from './controller.ts';
import { alreadyExists, failedPrecondition, invalid, notFound, unavailable } from './errors.ts';
import { NODE_KEY, ZONE_KEY } from './topology.ts';
import type { StringMap, VolumeCapability } from './types.ts';

export interface NodeServiceOptions {
  nodeName: string;
  zone?: string | undefined;
  host: Host;
  store: VolumeStore;
  /** Other nodes' NVMe-oF addresses and health; without it only volumes with all members here stage. */
  peers?: PeerDirectory | undefined;
  /** Shared with the agent's export reconciler, so a volume is never staged and re-exported at once. */
  locks?: KeyedLock | undefined;
  /** How long NodeStage waits for remote members' exports before answering UNAVAILABLE (default 30 s). */
  connectWaitMs?: number | undefined;
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
  private readonly perVolume: KeyedLock;

  constructor(o: NodeServiceOptions) {
    this.o = o;
    this.perVolume = o.locks ?? new KeyedLock();
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

  /**
   * Claims the volume for this node. While another node whose agent is alive holds it, this waits
   * (UNAVAILABLE, kubelet retries): taking it over would fence a running pod. A holder whose agent
   * stopped reporting is taken over; the exports' fencing cuts it off its remote members.
   */
  private async attach(rec: VolumeRecord): Promise<VolumeRecord> {
    const me = { node: this.o.nodeName, hostNqn: this.o.host.hostNqn };
    const holder = rec.attachment;
    if (holder && holder.node !== me.node) {
      const peer = await this.o.peers?.peer(holder.node);
      if (peer?.ready) {
        throw unavailable(
          `volume ${rec.id} is staged on node ${holder.node}; waiting for it to be unstaged there`,
        );
      }
    }
    const written = await updateRecord(this.o.store, rec.id, (r) => {
      if (r.attachment?.node === me.node && r.attachment.hostNqn === me.hostNqn) return false;
      r.attachment = me;
      return true;
    });
    if (!written || written.phase === 'Deleting') throw notFound(`volume ${rec.id} does not exist`);
    return written;
  }

  /** This node's partition of a member, created at the recorded extent if the disk has none yet. */
  private async localMember(rec: VolumeRecord, r: ReplicaInfo): Promise<string> {
    // Exported to the volume's previous node: dropping the export fences that node off it.
    await this.o.host.unexport(subsystemNqn({ volumeId: rec.id, replicaId: r.id }));
    try {
      return (await ensurePartition(this.o.host, rec, r)).path;
    } catch (e) {
      throw failedPrecondition(`replica ${rec.id}/${r.id} on ${this.o.nodeName}: ${(e as Error).message}`);
    }
  }

  /**
   * A member on another node, connected over NVMe-oF. Its owner's agent exports it to this node's
   * host NQN once it sees the attachment; until then the target refuses us and we retry.
   * Undefined when the owner's agent is down: the member is missing.
   */
  private async remoteMember(rec: VolumeRecord, r: ReplicaInfo): Promise<string | undefined> {
    const peers = this.o.peers;
    if (!peers) {
      throw failedPrecondition(
        `volume ${rec.id} has a member on ${r.node}, and this agent runs without cluster state (--state memory)`,
      );
    }
    const subsystem = subsystemNqn({ volumeId: rec.id, replicaId: r.id });
    const have = await this.o.host.findDeviceByNqn(subsystem);
    if (have) return have;
    const deadline = Date.now() + (this.o.connectWaitMs ?? 30_000);
    let last = '';
    for (;;) {
      const peer = await peers.peer(r.node);
      if (!peer?.ready) return undefined;
      try {
        return await this.o.host.connect({
          subsystemNqn: subsystem,
          target: peer.address,
          ctrlLossTmoSec: 30,
        });
      } catch (e) {
        if (!(e instanceof ConnectRefusedError || e instanceof CommandError)) throw e;
        last = e.message;
      }
      if (Date.now() >= deadline) {
        throw unavailable(
          `waiting for node ${r.node} to export replica ${rec.id}/${r.id} to ${this.o.nodeName}: ${last}`,
        );
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  }

  /** Assembles the volume's array, creating it only the first time, and records member states. */
  private async ensureArray(rec: VolumeRecord): Promise<string> {
    const running = await this.o.host.getArray(rec.id);
    if (running) return running.devicePath;
    // Once the array exists, a Pending member is one a relocation has not added yet: the relocation
    // adds it to the running array (agent/relocation.ts); assembling with it would find no superblock.
    const live = rec.replicas.filter(
      (r) => r.state !== 'Faulty' && r.state !== 'Removed' && !(rec.arrayUuid && r.state === 'Pending'),
    );
    const found = await Promise.all(
      live.map(async (r) => ({
        r,
        device: r.node === this.o.nodeName ? await this.localMember(rec, r) : await this.remoteMember(rec, r),
      })),
    );
    const present = found.filter((f): f is { r: ReplicaInfo; device: string } => f.device !== undefined);
    const missing = found.filter((f) => f.device === undefined).map((f) => f.r);
    if (missing.length > 0) {
      const nodes = missing.map((r) => r.node).join(', ');
      // A new array is made with every member; an old one runs degraded only from a copy known good.
      if (!rec.arrayUuid)
        throw unavailable(
          `volume ${rec.id}: the agent on ${nodes} is not ready; the array is created with every member`,
        );
      if (!present.some((f) => f.r.state === 'InSync'))
        throw unavailable(
          `volume ${rec.id}: no in-sync copy is reachable (the agent on ${nodes} is not ready)`,
        );
    }
    const spec = { volumeId: rec.id, devices: present.map((f) => f.device) };
    let info: ArrayInfo;
    if (rec.arrayUuid) info = await this.o.host.assembleArray(spec);
    else {
      try {
        info = await this.o.host.createArray(spec);
      } catch (e) {
        // A crash after create and before the record was updated: the superblock is ours, assemble.
        if (!(e instanceof ForeignSuperblockError)) throw e;
        info = await this.o.host.assembleArray(spec);
      }
    }
    const stateOf = new Map(info.members.map((m) => [m.devicePath, m.state]));
    const memberState = new Map<string, ReplicaInfo['state']>();
    for (const f of present) memberState.set(f.r.id, MEMBER_FROM_ARRAY[stateOf.get(f.device) ?? 'faulty']);
    for (const r of missing) memberState.set(r.id, 'Faulty');
    await writeMemberStates(this.o.store, rec.id, memberState, info.uuid);
    return info.devicePath;
  }

  async nodeStageVolume(req: StageRequest) {
    if (!req.volume_id) throw invalid('volume_id is required');
    if (!req.staging_target_path) throw invalid('staging_target_path is required');
    if (!req.volume_capability) throw invalid('volume_capability is required');
    const problem = capabilityProblem(req.volume_capability);
    if (problem) throw invalid(problem);
    return this.perVolume.run(req.volume_id, async () => {
      let rec = await this.record(req.volume_id);
      rec = await this.attach(rec);
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
      const rec = await this.o.store.get(req.volume_id);
      if (!rec) return {};
      for (const r of rec.replicas.filter((x) => x.node !== this.o.nodeName))
        await this.o.host.disconnect(subsystemNqn({ volumeId: rec.id, replicaId: r.id }));
      // Detached: the owners drop their exports to this node.
      await updateRecord(this.o.store, rec.id, (r) => {
        if (r.attachment?.node !== this.o.nodeName) return false;
        r.attachment = undefined;
        return true;
      });
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
      // The controller recorded the larger extents: grow each local partition to match; the owners'
      // agents grow the remote ones. md grows to its smallest member, so wait for them.
      for (const r of rec.replicas.filter((x) => x.node === this.o.nodeName && x.state !== 'Faulty'))
        await ensurePartition(this.o.host, rec, r);
      const deadline = Date.now() + (this.o.connectWaitMs ?? 30_000);
      for (;;) {
        const grown = await this.o.host.growArray(rec.id);
        if (grown.sizeBytes >= rec.sizeBytes) break;
        if (Date.now() >= deadline) {
          const remote = rec.replicas.filter((x) => x.node !== this.o.nodeName).map((x) => x.node);
          throw unavailable(
            `volume ${rec.id}: the array is ${grown.sizeBytes} bytes, below ${rec.sizeBytes}; waiting for the members on ${remote.join(', ') || 'this node'} to grow`,
          );
        }
        await new Promise((res) => setTimeout(res, 250));
      }
      const at = await this.o.host.getMount(req.volume_path);
      if (!at) throw notFound(`nothing of volume ${rec.id} is mounted at ${req.volume_path}`);
      // a raw block volume is grown once its device is: the pod's bind is the same device node
      if (at.kind === 'filesystem') await this.o.host.growFilesystem(req.volume_path);
      return { capacity_bytes: String((await this.o.host.getArray(rec.id))?.sizeBytes ?? rec.sizeBytes) };
    });
  }
}
