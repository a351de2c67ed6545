// The agent's face to kubelet (served as the CSI Node service by csi/node.ts): stages a volume on
// this node through the Host (partitions, NVMe-oF connections to members on other nodes, MD RAID1,
// XFS, mount), publishes it to a pod's path (a bind of the staged filesystem, or of the array's
// device node for a raw block volume), reports usage and grows it. Staging records this node as
// the volume's attachment; the owners' agents (exports.ts) then export the other members to this
// node only. Every operation takes a signal (the call's cancellation or deadline): the Host's
// commands and every wait stop when it aborts.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReplicaInfo } from '../placement/model.ts';
import { KeyedLock } from '../state/lock.ts';
import { type PeerDirectory, updateRecord, type VolumeRecord, type VolumeStore } from '../state/store.ts';
import { VolumeRefusal } from './errors.ts';
import { ensurePartition } from './exports.ts';
import {
  CancelledError,
  CommandError,
  ConnectRefusedError,
  DeviceInUseError,
  ForeignSuperblockError,
  InvalidArgumentError,
  NotFoundError,
} from './host/errors.ts';
import { subsystemNqn } from './host/names.ts';
import { withSignal } from './host/signalled.ts';
import type { ArrayInfo, FsUsage, Host } from './host/types.ts';
import { MEMBER_FROM_ARRAY, writeMemberStates } from './members.ts';
import type { NodeKeys } from './node-keys.ts';
import { seedVolume } from './snapshots.ts';
import { remoteLegCtrlLossSec } from './write-right.ts';

/** Creates and removes publish targets (agent/mount-points.ts on a real node). */
export interface MountPoints {
  /** Creates the target when it is missing; an existing one is left as it is. */
  ensure(path: string, kind: 'file' | 'dir', signal?: AbortSignal): Promise<void>;
  /**
   * Deletes the target only if `ensure` made it (never anything recursively, never a file or
   * directory it did not make); gone is fine.
   */
  remove(path: string, signal?: AbortSignal): Promise<void>;
}

export interface NodeVolumesOptions {
  nodeName: string;
  host: Host;
  store: VolumeStore;
  /** Other nodes' NVMe-oF addresses and health; without it only volumes with all members here stage. */
  peers?: PeerDirectory | undefined;
  /** Shared with the agent's export reconciler, so a volume is never staged and re-exported at once. */
  locks?: KeyedLock | undefined;
  /** How long staging waits for remote members' exports before it is refused (default 30 s). */
  connectWaitMs?: number | undefined;
  /**
   * Creates and removes publish targets: the CO expects the driver to create the target (a
   * directory, or a file for a raw block volume) and to delete it on unpublish.
   */
  mountPoints: MountPoints;
  /**
   * What this node lacks to stage anything (kernel modules not loaded, say), as the message to show;
   * undefined when nothing is missing. Staging is refused (precondition) while it says something.
   */
  missingPrerequisites?: (() => string | undefined) | undefined;
  /** DH-HMAC-CHAP keys per node pair (ADR 0007): remote members are connected with them when given. */
  keys?: NodeKeys | undefined;
  /**
   * This node's right to acknowledge writes (ADR 0006, agent/write-right.ts WriteRight): staging is
   * refused while it does not hold it. Without it (a single-process setup, the unit tests of other
   * things) staging does not ask.
   */
  right?: { holds(): boolean; why(): string } | undefined;
  /**
   * How long this node must still wait before another node's right has ended (RightWatch): a volume
   * attached to another node is taken over only after that. Without it only the holder's heartbeat
   * (the peer directory) is asked, as before ADR 0006.
   */
  rightWatch?: { waitMs(node: string): Promise<number> } | undefined;
  /**
   * L of ADR 0006 for the remote legs staging connects: longer than the right to write, so a write
   * stalled on a leg when the node is cut off cannot complete on the local leg alone before the
   * node fenced itself. Undefined: the default lease's (write-right.ts remoteLegCtrlLossSec).
   */
  remoteCtrlLossTmoSec?: number | undefined;
}

/** What a staged volume is used as: a filesystem, or the raw block device. */
export type AccessType = 'mount' | 'block';

export type VolumeUsage =
  | { kind: 'device'; sizeBytes: number; degraded: string | undefined }
  | { kind: 'filesystem'; usage: FsUsage; degraded: string | undefined };

/** Waits `ms`, or throws CancelledError at once when the call is cancelled. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    throw new CancelledError('the call was cancelled while waiting');
  }
}

const refuse = (kind: VolumeRefusal['kind'], message: string) => new VolumeRefusal(kind, message);

export class NodeVolumes {
  private readonly o: NodeVolumesOptions;
  private readonly perVolume: KeyedLock;

  constructor(o: NodeVolumesOptions) {
    this.o = o;
    this.perVolume = o.locks ?? new KeyedLock();
  }

  get nodeName(): string {
    return this.o.nodeName;
  }

  /** Runs `work` holding the volume's lock; waiting for it, and the answer, end when `signal` aborts. */
  private locked<T>(volumeId: string, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    return this.perVolume.run(volumeId, work, signal);
  }

  private async record(volumeId: string): Promise<VolumeRecord> {
    const rec = await this.o.store.get(volumeId);
    // a snapshot's record is never staged (ADR 0010): its member only ever leaves the source
    if (!rec || rec.phase === 'Deleting' || rec.snapshot)
      throw refuse('not-found', `volume ${volumeId} does not exist`);
    return rec;
  }

  /**
   * Claims the volume for this node. While another node whose agent is alive holds it, this waits
   * (unavailable, kubelet retries): taking it over would fence a running pod. A holder whose agent
   * stopped reporting is taken over; the exports' fencing cuts it off its remote members.
   */
  private async attach(host: Host, rec: VolumeRecord): Promise<VolumeRecord> {
    const me = { node: this.o.nodeName, hostNqn: host.hostNqn };
    const holder = rec.attachment;
    if (holder && holder.node !== me.node) {
      const peer = await this.o.peers?.peer(holder.node);
      if (peer?.ready) {
        throw refuse(
          'unavailable',
          `volume ${rec.id} is staged on node ${holder.node}; waiting for it to be unstaged there`,
        );
      }
    }
    if (holder && holder.node !== me.node && this.o.rightWatch) {
      // the old holder fences itself when its right lapses; assembling before that ended could
      // leave writes it acknowledged on a copy this node does not use
      const wait = await this.o.rightWatch.waitMs(holder.node);
      if (wait > 0) {
        throw refuse(
          'unavailable',
          `volume ${rec.id} is attached to node ${holder.node}; its right to write ends in at most ${Math.ceil(wait / 1000)} s (ADR 0006)`,
        );
      }
    }
    const written = await updateRecord(this.o.store, rec.id, (r) => {
      if (r.attachment?.node === me.node && r.attachment.hostNqn === me.hostNqn) return false;
      r.attachment = me;
      return true;
    });
    if (!written || written.phase === 'Deleting')
      throw refuse('not-found', `volume ${rec.id} does not exist`);
    return written;
  }

  /** This node's partition of a member, created at the recorded extent if the disk has none yet. */
  private async localMember(host: Host, rec: VolumeRecord, r: ReplicaInfo): Promise<string> {
    // Exported to the volume's previous node: dropping the export fences that node off it.
    await host.unexport(subsystemNqn({ volumeId: rec.id, replicaId: r.id }));
    try {
      return (await ensurePartition(host, rec, r)).path;
    } catch (e) {
      if (e instanceof CancelledError) throw e;
      throw refuse(
        'precondition',
        `replica ${rec.id}/${r.id} on ${this.o.nodeName}: ${(e as Error).message}`,
      );
    }
  }

  /**
   * A member on another node, connected over NVMe-oF. Its owner's agent exports it to this node's
   * host NQN once it sees the attachment; until then the target refuses us and we retry.
   * Undefined when the owner's agent is down: the member is missing.
   */
  private async remoteMember(
    host: Host,
    rec: VolumeRecord,
    r: ReplicaInfo,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const peers = this.o.peers;
    if (!peers) {
      throw refuse(
        'precondition',
        `volume ${rec.id} has a member on ${r.node}, and this agent runs without cluster state (--state memory)`,
      );
    }
    const subsystem = subsystemNqn({ volumeId: rec.id, replicaId: r.id });
    const have = await host.findDeviceByNqn(subsystem);
    if (have) return have;
    const deadline = Date.now() + (this.o.connectWaitMs ?? 30_000);
    let last = '';
    for (;;) {
      const peer = await peers.peer(r.node);
      if (!peer?.ready) return undefined;
      try {
        // with keys, a pair the target has not created yet is the same as no export yet
        const keys = await this.o.keys?.forConnect(r.node);
        if (this.o.keys && !keys)
          throw new ConnectRefusedError(`node ${r.node} has no DH-HMAC-CHAP keys for this node yet`);
        const dev = await host.connect({
          subsystemNqn: subsystem,
          target: peer.address,
          ...keys?.keys,
          ctrlLossTmoSec: remoteLegCtrlLossSec(this.o),
        });
        await keys?.taken();
        return dev;
      } catch (e) {
        if (!(e instanceof ConnectRefusedError || e instanceof CommandError)) throw e;
        if (e instanceof CommandError && signal?.aborted) throw e; // killed by the cancel: stop
        last = e.message;
      }
      if (Date.now() >= deadline) {
        throw refuse(
          'unavailable',
          `waiting for node ${r.node} to export replica ${rec.id}/${r.id} to ${this.o.nodeName}: ${last}`,
        );
      }
      await pause(250, signal);
    }
  }

  /** Assembles the volume's array, creating it only the first time, and records member states. */
  private async ensureArray(host: Host, rec: VolumeRecord, signal: AbortSignal | undefined): Promise<string> {
    const running = await host.getArray(rec.id);
    if (running) return running.devicePath;
    // Once the array exists, a Pending member is one a relocation has not added yet: the relocation
    // adds it to the running array (relocation.ts); assembling with it would find no superblock.
    const live = rec.replicas.filter(
      (r) => r.state !== 'Faulty' && r.state !== 'Removed' && !(rec.arrayUuid && r.state === 'Pending'),
    );
    const found = await Promise.all(
      live.map(async (r) => ({
        r,
        device:
          r.node === this.o.nodeName
            ? await this.localMember(host, rec, r)
            : await this.remoteMember(host, rec, r, signal),
      })),
    );
    const present = found.filter((f): f is { r: ReplicaInfo; device: string } => f.device !== undefined);
    const missing = found.filter((f) => f.device === undefined).map((f) => f.r);
    if (missing.length > 0) {
      const nodes = missing.map((r) => r.node).join(', ');
      // A new array is made with every member; an old one runs degraded only from a copy known good.
      if (!rec.arrayUuid)
        throw refuse(
          'unavailable',
          `volume ${rec.id}: the agent on ${nodes} is not ready; the array is created with every member`,
        );
      if (!present.some((f) => f.r.state === 'InSync'))
        throw refuse(
          'unavailable',
          `volume ${rec.id}: no in-sync copy is reachable (the agent on ${nodes} is not ready)`,
        );
    }
    const spec = { volumeId: rec.id, devices: present.map((f) => f.device) };
    let info: ArrayInfo;
    if (rec.arrayUuid) info = await host.assembleArray(spec);
    else {
      try {
        info = await host.createArray(spec);
      } catch (e) {
        // A crash after create and before the record was updated: the superblock is ours, assemble.
        if (!(e instanceof ForeignSuperblockError)) throw e;
        info = await host.assembleArray(spec);
      }
    }
    const stateOf = new Map(info.members.map((m) => [m.devicePath, m.state]));
    const memberState = new Map<string, ReplicaInfo['state']>();
    for (const f of present) memberState.set(f.r.id, MEMBER_FROM_ARRAY[stateOf.get(f.device) ?? 'faulty']);
    for (const r of missing) memberState.set(r.id, 'Faulty');
    await writeMemberStates(this.o.store, rec.id, memberState, info.uuid);
    return info.devicePath;
  }

  /**
   * Attaches the volume here, assembles (or first creates) its array, and for a mount volume mounts
   * XFS with `mountFlags` (the CSI edge checked them against the allow-list; a publish binds this
   * mount and so carries them). Staged already: the mount is kept as it is, never remounted.
   */
  async stage(
    req: { volumeId: string; stagingPath: string; access: AccessType; mountFlags?: readonly string[] },
    signal?: AbortSignal,
  ): Promise<void> {
    const missing = this.o.missingPrerequisites?.();
    if (missing) throw refuse('precondition', `node ${this.o.nodeName} cannot stage volumes: ${missing}`);
    if (this.o.right && !this.o.right.holds())
      throw refuse(
        'unavailable',
        `node ${this.o.nodeName} holds no right to write now: ${this.o.right.why()}`,
      );
    const host = withSignal(this.o.host, signal);
    await this.locked(req.volumeId, signal, async () => {
      let rec = await this.record(req.volumeId);
      rec = await this.attach(host, rec);
      const md = await this.ensureArray(host, rec, signal);
      // a restore: the snapshot's data goes onto the array before anything reads it (ADR 0010)
      await seedVolume({ ...this.o, host }, rec, md, { ms: this.o.connectWaitMs ?? 30_000, signal });
      if (this.o.right && !this.o.right.holds()) {
        // lapsed while assembling: the lapse's fence may have run before this array existed
        await host.fenceArray(rec.id);
        throw refuse('unavailable', `node ${this.o.nodeName} lost its right to write: ${this.o.right.why()}`);
      }
      if (req.access === 'mount') {
        await host.makeFilesystem(md);
        await host.mount(md, req.stagingPath, { flags: req.mountFlags });
        // a restore larger than its snapshot: the copied filesystem takes the whole array (at
        // every stage of a restored volume, so a kill before it is made good; xfs_growfs is a no-op then)
        if (rec.seed) await host.growFilesystem(req.stagingPath);
      }
    });
  }

  /** Unmounts, stops the array, disconnects remote members and clears the attachment. */
  async unstage(req: { volumeId: string; stagingPath: string }, signal?: AbortSignal): Promise<void> {
    const host = withSignal(this.o.host, signal);
    await this.locked(req.volumeId, signal, async () => {
      await host.unmount(req.stagingPath);
      try {
        await host.stopArray(req.volumeId);
      } catch (e) {
        // still published (a pod's bind holds the array): the CO unpublishes first
        if (e instanceof DeviceInUseError) throw refuse('precondition', e.message);
        throw e;
      }
      const rec = await this.o.store.get(req.volumeId);
      if (!rec) return;
      for (const r of rec.replicas.filter((x) => x.node !== this.o.nodeName))
        await host.disconnect(subsystemNqn({ volumeId: rec.id, replicaId: r.id }));
      // Detached: the owners drop their exports to this node.
      await updateRecord(this.o.store, rec.id, (r) => {
        if (r.attachment?.node !== this.o.nodeName) return false;
        r.attachment = undefined;
        return true;
      });
    });
  }

  /** Binds the staged volume onto the pod's target (created here), read-only on request. */
  async publish(
    req: { volumeId: string; stagingPath: string; targetPath: string; access: AccessType; readonly: boolean },
    signal?: AbortSignal,
  ): Promise<void> {
    const host = withSignal(this.o.host, signal);
    await this.locked(req.volumeId, signal, async () => {
      await this.record(req.volumeId);
      const array = await host.getArray(req.volumeId);
      if (!array) throw refuse('precondition', `volume ${req.volumeId} is not staged on ${this.o.nodeName}`);
      const bind = { readonly: req.readonly };
      try {
        if (req.access === 'block') {
          await this.o.mountPoints.ensure(req.targetPath, 'file', signal);
          await host.bindDevice(array.devicePath, req.targetPath, bind);
        } else {
          // a bind of the staged mount, not a second mount of the device: a read-only publish is
          // then a read-only view of the one filesystem the volume has on this node
          await this.o.mountPoints.ensure(req.targetPath, 'dir', signal);
          await host.bindMount(req.stagingPath, req.targetPath, bind);
        }
      } catch (e) {
        if (e instanceof NotFoundError)
          throw refuse('precondition', `volume ${req.volumeId} is not staged at ${req.stagingPath}`);
        if (e instanceof DeviceInUseError) throw refuse('exists', e.message);
        if (e instanceof InvalidArgumentError) throw refuse('invalid', e.message);
        throw e;
      }
    });
  }

  /**
   * Undoes a publish and removes the target if the publish created it. What is mounted at the
   * target must be this volume's (its array's device, bound or as the staged filesystem): another
   * volume's publish, or anything else mounted there, is refused and left mounted.
   */
  async unpublish(req: { volumeId: string; targetPath: string }, signal?: AbortSignal): Promise<void> {
    const host = withSignal(this.o.host, signal);
    await this.locked(req.volumeId, signal, async () => {
      const at = await host.getMount(req.targetPath);
      if (at) {
        const array = await host.getArray(req.volumeId);
        if (at.devicePath !== array?.devicePath)
          throw refuse(
            'precondition',
            `${req.targetPath} holds ${at.devicePath}, not volume ${req.volumeId}; leaving it mounted`,
          );
        await host.unmount(req.targetPath);
      }
      await this.o.mountPoints.remove(req.targetPath, signal);
    });
  }

  /** Usage of the volume mounted (or bound) at `volumePath`, and whether its array is degraded. */
  async usage(req: { volumeId: string; volumePath: string }, signal?: AbortSignal): Promise<VolumeUsage> {
    const host = withSignal(this.o.host, signal);
    await this.record(req.volumeId);
    const array = await host.getArray(req.volumeId);
    const at = await host.getMount(req.volumePath);
    if (!array || at?.devicePath !== array.devicePath)
      throw refuse('not-found', `volume ${req.volumeId} is not mounted at ${req.volumePath}`);
    const degraded = array.degraded ? `array ${array.name} is degraded` : undefined;
    // a raw block volume has no filesystem to count
    if (at.kind === 'device') return { kind: 'device', sizeBytes: array.sizeBytes, degraded };
    return { kind: 'filesystem', usage: await host.filesystemUsage(req.volumePath), degraded };
  }

  /**
   * Grows this node's partitions to the recorded extents, then the array once every owner grew
   * theirs, then XFS for a mount volume. Returns the array's size.
   */
  async expand(
    req: { volumeId: string; volumePath: string; requiredBytes?: number; limitBytes?: number },
    signal?: AbortSignal,
  ): Promise<number> {
    const host = withSignal(this.o.host, signal);
    return this.locked(req.volumeId, signal, async () => {
      const rec = await this.record(req.volumeId);
      // The node grows the volume to what the controller recorded, never further: a larger
      // required size has not been allocated (ControllerExpandVolume first), a limit below the
      // recorded size cannot be met (volumes do not shrink).
      const required = req.requiredBytes ?? 0;
      const limit = req.limitBytes ?? 0;
      if (required > rec.sizeBytes)
        throw refuse(
          'out-of-range',
          `volume ${rec.id} is ${rec.sizeBytes} bytes; required_bytes ${required} is more than the controller expanded it to`,
        );
      if (limit > 0 && rec.sizeBytes > limit)
        throw refuse(
          'out-of-range',
          `volume ${rec.id} is ${rec.sizeBytes} bytes, above limit_bytes ${limit} (volumes do not shrink)`,
        );
      const array = await host.getArray(rec.id);
      if (!array) throw refuse('precondition', `volume ${rec.id} is not staged on ${this.o.nodeName}`);
      // what is at volume_path must be this volume: never grow another filesystem mounted there
      const at = await host.getMount(req.volumePath);
      if (!at || at.devicePath !== array.devicePath)
        throw refuse('not-found', `volume ${rec.id} is not mounted at ${req.volumePath}`);
      // The controller recorded the larger extents: grow each local partition to match; the owners'
      // agents grow the remote ones. md grows to its smallest member, so wait for them.
      for (const r of rec.replicas.filter((x) => x.node === this.o.nodeName && x.state !== 'Faulty'))
        await ensurePartition(host, rec, r);
      const deadline = Date.now() + (this.o.connectWaitMs ?? 30_000);
      for (;;) {
        const grown = await host.growArray(rec.id);
        if (grown.sizeBytes >= rec.sizeBytes) break;
        if (Date.now() >= deadline) {
          const remote = rec.replicas.filter((x) => x.node !== this.o.nodeName).map((x) => x.node);
          throw refuse(
            'unavailable',
            `volume ${rec.id}: the array is ${grown.sizeBytes} bytes, below ${rec.sizeBytes}; waiting for the members on ${remote.join(', ') || 'this node'} to grow`,
          );
        }
        await pause(250, signal);
      }
      // a raw block volume is grown once its device is: the pod's bind is the same device node
      if (at.kind === 'filesystem') await host.growFilesystem(req.volumePath);
      return (await host.getArray(rec.id))?.sizeBytes ?? rec.sizeBytes;
    });
  }
}
