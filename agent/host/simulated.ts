// SimulatedHost: the Host contract in memory, for unit tests, the control-plane tier and
// simulations. Same semantics and same refusals as LinuxHost (one contract suite proves both).
// Exports and connections go through a Fabric (sim-fabric.ts): SimFabric plays the NVMe/TCP network
// between hosts of one process; NetworkSimFabric (sim-network.ts) is real TCP, so hosts in different
// processes (one `meshstor agent` per node) reach each other. Remote namespaces are pulled before a
// method reads their metadata and pushed before it returns.
import { alignUp, type Extent, MiB } from '../../placement/index.ts';
import { checkKeys, type DhchapKeys } from './dhchap.ts';
import {
  CancelledError,
  ConnectRefusedError,
  DeviceInUseError,
  ForeignSuperblockError,
  HostError,
  InvalidArgumentError,
  LastInSyncMemberError,
  NotFoundError,
  ReAddRefusedError,
} from './errors.ts';
import { MIN_FILESYSTEM_BYTES } from './filesystem-minimums.ts';
import { checkNewExtent, freeExtents, usableArea } from './geometry.ts';
import { checkMountFlags, PER_MOUNT_FLAGS } from './mount-flags.ts';
import {
  arrayName,
  checkCtrlLoss,
  checkNqn,
  checkOwner,
  ownerFromName,
  partitionName,
  partitionUuid,
  subsystemNqn,
} from './names.ts';
import {
  type Fabric,
  listenKey as key,
  noSubsystem,
  SimFabric,
  type SimNamespace,
  type SimTarget,
  type Store,
} from './sim-fabric.ts';
import type {
  ArrayCreateSpec,
  ArrayInfo,
  ArrayMember,
  BindOptions,
  BitmapInfo,
  ConnectSpec,
  Drive,
  ExportInfo,
  ExportSpec,
  FsUsage,
  Host,
  HostAccess,
  ListenAddress,
  MountInfo,
  MountOptions,
  OpOptions,
  Owner,
  Partition,
  PartitionSpec,
} from './types.ts';

interface SimPartition {
  number: number;
  start: number;
  end: number;
  name: string;
  partUuid: string;
  store: Store;
}

interface SimDrive {
  id: string;
  index: number;
  sizeBytes: number;
  lbs: number;
  gpt: boolean;
  partitions: SimPartition[];
}

interface SimExport {
  nqn: string;
  devicePath: string;
  store: Store;
  listen: ListenAddress;
  allowed: Set<string>;
}

interface SimMember {
  devicePath: string;
  store: Store;
  slot: number | undefined;
  state: ArrayMember['state'];
  writeMostly: boolean;
  /** A local member whose fence layer was cut (cutLocalLegs): it takes no IO until re-assembled. */
  cut?: boolean;
}

interface SimArray {
  name: string;
  uuid: string;
  minor: number;
  raidDevices: number;
  members: SimMember[];
  store: Store;
  mismatch: number;
  /** The superblocks' event count: raised by every change of the members. */
  events: number;
  /** Bitmap chunks written while a slot had no in-sync member (the only write modelled: mkfs). */
  dirty: number;
  /** Fenced (fenceArray): every member failed, writes refused until the array is stopped. */
  fenced?: boolean;
  /** md's sync_speed_max for this array (KiB/s); undefined: the system's. */
  resyncSpeedLimit?: number | undefined;
}

interface SimMount {
  devicePath: string;
  store: Store;
  kind: MountInfo['kind'];
  readonly: boolean;
  /** The mount flags it was made with (a bind: its source's, as the kernel copies them). */
  flags: string[];
}

/**
 * The per-mount options mountinfo lists for a filesystem mounted with these flags, as LinuxHost
 * reads them: the kernel's order (fs/proc_namespace.c show_mnt_opts), and relatime unless
 * noatime or strictatime was asked (its default, fs/namespace.c path_mount). The other allowed
 * flags are the filesystem's own and show among its superblock options instead.
 */
function perMountOptions(flags: readonly string[], readonly: boolean): string[] {
  const has = (f: string) => flags.includes(f);
  return [
    readonly ? 'ro' : 'rw',
    ...PER_MOUNT_FLAGS.filter(has),
    ...(has('noatime') || has('strictatime') ? [] : ['relatime']),
  ];
}

export interface SimDriveSpec {
  id: string;
  sizeBytes: number;
  logicalBlockSize?: number;
  /** Foreign (OS) partitions already on the drive; they are treated as mounted. */
  partitions?: { start: number; end: number; name: string }[];
}

export { SimFabric };

interface SimRemote {
  nqn: string;
  devicePath: string;
  ns: SimNamespace;
  /** The keys the controller holds (what a re-authentication would prove). */
  keys: DhchapKeys;
}

const MD_OVERHEAD = MiB; // data offset the simulation reserves for the 1.2 superblock + bitmap
const BITMAP_CHUNK = 64 * MiB; // mdadm's internal bitmap chunk for arrays of this size
/** A Store's `fs` after an mkfs.xfs that did not finish (blkid: xfs; the kernel: not mountable). */
const XFS_MKFS_CUT_SHORT = 'xfs (mkfs cut short)';

export class SimulatedHost implements Host, SimTarget {
  readonly hostNqn: string;
  private readonly fabric: Fabric;
  private readonly drives: SimDrive[];
  private readonly exports = new Map<string, SimExport>();
  /** DH-HMAC-CHAP keys per host NQN, for every subsystem of this target (as nvmet keeps them). */
  private readonly hostKeys = new Map<string, DhchapKeys>();
  private readonly remote = new Map<string, SimRemote>();
  private readonly arrays = new Map<string, SimArray>();
  private readonly mounts = new Map<string, SimMount>();
  private readonly busy = new Set<Store>();
  private nextDev: number;
  private nextMd = 127;
  private uuidSeq = 0;

  /** `fabric`: the network to export and connect through (default: a SimFabric of its own). */
  constructor(opts: { hostNqn: string; fabric?: Fabric; drives: SimDriveSpec[] }) {
    checkNqn(opts.hostNqn);
    this.hostNqn = opts.hostNqn;
    this.fabric = opts.fabric ?? new SimFabric();
    this.drives = opts.drives.map((d, index) => ({
      id: d.id,
      index,
      sizeBytes: d.sizeBytes,
      lbs: d.logicalBlockSize ?? 512,
      gpt: (d.partitions ?? []).length > 0,
      partitions: (d.partitions ?? []).map((p, i) => {
        const store: Store = { sizeBytes: p.end - p.start, fs: 'ext4' };
        this.busy.add(store);
        return {
          number: i + 1,
          ...p,
          partUuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
          store,
        };
      }),
    }));
    this.nextDev = this.drives.length;
  }

  /** A "reboot": arrays stop, connections and exports vanish (initiators lose them), device names change. */
  async reboot(): Promise<void> {
    for (const a of this.arrays.values()) {
      this.superblockRaidDevices.set(a.uuid, a.raidDevices);
      this.arrayStores.set(a.uuid, a.store);
    }
    this.arrays.clear();
    this.mounts.clear();
    for (const r of this.remote.values()) r.ns.close();
    this.remote.clear();
    const gone = [...this.exports.values()];
    this.exports.clear();
    for (const e of gone) this.dropListener(e);
    await Promise.all(gone.map((e) => this.fabric.dropSubsystem(this, e.nqn)));
    this.nextDev += 3;
    this.drives.reverse();
    this.drives.forEach((d, i) => {
      d.index = this.nextDev + i;
    });
    this.nextDev += this.drives.length;
  }

  // --- drives and partitions -------------------------------------------------------------------

  async listDrives(o?: OpOptions): Promise<Drive[]> {
    check(o);
    return this.drives.map((d) => this.driveView(d));
  }

  async createPartitions(driveId: string, specs: PartitionSpec[], o?: OpOptions): Promise<Partition[]> {
    check(o);
    const d = this.drive(driveId);
    const area = usableArea(d.sizeBytes, d.lbs);
    const planned: SimPartition[] = [];
    const taken: (Extent & { name: string })[] = d.partitions.map((p) => ({ ...p }));
    const result: SimPartition[] = [];
    for (const s of specs) {
      checkOwner(s);
      const uuid = partitionUuid(s);
      const have = d.partitions.find((p) => p.partUuid === uuid);
      if (have) {
        if (have.start !== s.extent.start || have.end !== s.extent.end) {
          throw new InvalidArgumentError(
            `drive ${driveId}: ${have.name} already exists at [${have.start}, ${have.end}), not at [${s.extent.start}, ${s.extent.end})`,
          );
        }
        result.push(have);
        continue;
      }
      checkNewExtent(driveId, d.lbs, area, taken, s.extent);
      const used = new Set([...d.partitions, ...planned].map((p) => p.number));
      let number = 1;
      while (used.has(number)) number++;
      if (number > 128) throw new InvalidArgumentError(`drive ${driveId}: all 128 GPT entries are used`);
      const p: SimPartition = {
        number,
        start: s.extent.start,
        end: s.extent.end,
        name: partitionName(s),
        partUuid: uuid,
        store: { sizeBytes: s.extent.end - s.extent.start },
      };
      planned.push(p);
      taken.push(p);
      result.push(p);
    }
    d.gpt = true;
    d.partitions.push(...planned);
    return result.map((p) => this.partView(d, p));
  }

  async deletePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void> {
    check(o);
    const d = this.drive(driveId);
    const p = this.findPartition(d, owner);
    if (!p) return;
    this.refuseInUse(d, p, 'delete');
    d.partitions = d.partitions.filter((x) => x !== p);
  }

  async wipePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void> {
    check(o);
    const d = this.drive(driveId);
    const p = this.findPartition(d, owner);
    if (!p) throw new NotFoundError(`drive ${driveId} has no partition for ${partitionName(owner)}`);
    this.refuseInUse(d, p, 'wipe');
    p.store.md = undefined;
    p.store.fs = undefined;
  }

  async growPartition(driveId: string, owner: Owner, newEnd: number, o?: OpOptions): Promise<Partition> {
    check(o);
    const d = this.drive(driveId);
    const p = this.findPartition(d, owner);
    if (!p) throw new NotFoundError(`drive ${driveId} has no partition for ${partitionName(owner)}`);
    if (newEnd === p.end) return this.partView(d, p);
    if (newEnd < p.end)
      throw new InvalidArgumentError(`partition ${p.name} cannot shrink (${p.end} -> ${newEnd})`);
    const others = d.partitions.filter((x) => x !== p);
    checkNewExtent(driveId, d.lbs, usableArea(d.sizeBytes, d.lbs), others, { start: p.end, end: newEnd });
    p.end = newEnd;
    p.store.sizeBytes = newEnd - p.start;
    return this.partView(d, p);
  }

  // --- NVMe-oF target ------------------------------------------------------------------------

  async exportReplica(spec: ExportSpec, o?: OpOptions): Promise<ExportInfo> {
    check(o);
    const nqn = subsystemNqn(spec);
    const have = this.exports.get(nqn);
    if (have) return sameExport(have, spec);
    const store = this.localStore(spec.devicePath);
    if (!store) throw new NotFoundError(`no block device ${spec.devicePath}`);
    await this.fabric.listen(this, spec.listen);
    const raced = this.exports.get(nqn);
    if (raced) return sameExport(raced, spec);
    const e: SimExport = { nqn, devicePath: spec.devicePath, store, listen: spec.listen, allowed: new Set() };
    this.exports.set(nqn, e);
    return exportView(e);
  }

  async grantHost(nqn: string, access: HostAccess, o?: OpOptions): Promise<void> {
    check(o);
    checkNqn(access.hostNqn);
    checkKeys(access);
    const e = this.export(nqn);
    if (access.dhchapSecret !== undefined) {
      const had = this.hostKeys.get(access.hostNqn);
      this.hostKeys.set(access.hostNqn, {
        dhchapSecret: access.dhchapSecret,
        dhchapCtrlSecret: access.dhchapCtrlSecret ?? had?.dhchapCtrlSecret,
      });
    }
    e.allowed.add(access.hostNqn);
  }

  async revokeHost(nqn: string, hostNqn: string, o?: OpOptions): Promise<void> {
    check(o);
    this.exports.get(nqn)?.allowed.delete(hostNqn);
  }

  async unexport(nqn: string, o?: OpOptions): Promise<void> {
    check(o);
    const e = this.exports.get(nqn);
    if (!e) return;
    this.exports.delete(nqn);
    this.dropListener(e);
    await this.fabric.dropSubsystem(this, nqn);
  }

  async listExports(o?: OpOptions): Promise<ExportInfo[]> {
    check(o);
    return [...this.exports.values()].map(exportView);
  }

  // --- NVMe-oF initiator ---------------------------------------------------------------------

  async connect(spec: ConnectSpec, o?: OpOptions): Promise<string> {
    check(o);
    checkNqn(spec.subsystemNqn);
    checkKeys(spec);
    checkCtrlLoss(spec.ctrlLossTmoSec);
    const have = this.remote.get(spec.subsystemNqn);
    if (have) {
      rotateKeys(have, spec);
      return have.devicePath;
    }
    let mine: SimRemote | undefined;
    const ns = await this.fabric.connect(this.hostNqn, spec, () => {
      if (mine && this.remote.get(spec.subsystemNqn) === mine) this.targetGone(spec.subsystemNqn);
    });
    const raced = this.remote.get(spec.subsystemNqn);
    if (raced) {
      ns.close();
      return raced.devicePath;
    }
    mine = {
      nqn: spec.subsystemNqn,
      devicePath: `/dev/nvme${this.nextDev++}n1`,
      ns,
      keys: { dhchapSecret: spec.dhchapSecret, dhchapCtrlSecret: spec.dhchapCtrlSecret },
    };
    this.remote.set(spec.subsystemNqn, mine);
    return mine.devicePath;
  }

  /** The target side of a connect (called by the fabric): nvmet's checks, in its order. */
  admit(at: ListenAddress, subsystemNqn: string, hostNqn: string, presented: DhchapKeys): Store {
    const e = this.exports.get(subsystemNqn);
    if (!e || key(e.listen) !== key(at)) throw noSubsystem(subsystemNqn, at);
    if (!e.allowed.has(hostNqn)) {
      throw new ConnectRefusedError(`${subsystemNqn} does not allow host ${hostNqn}`);
    }
    const keys = this.hostKeys.get(hostNqn);
    if (keys?.dhchapSecret !== undefined && keys.dhchapSecret !== presented.dhchapSecret) {
      throw new ConnectRefusedError(`DH-HMAC-CHAP authentication of ${hostNqn} to ${subsystemNqn} failed`);
    }
    // bidirectional: a host that asks the controller to prove itself refuses a wrong or missing answer
    if (presented.dhchapCtrlSecret !== undefined && keys?.dhchapCtrlSecret !== presented.dhchapCtrlSecret) {
      throw new ConnectRefusedError(`${subsystemNqn} failed to authenticate itself to ${hostNqn}`);
    }
    return e.store;
  }

  async disconnect(subsystemNqn: string, o?: OpOptions): Promise<void> {
    check(o);
    const r = this.remote.get(subsystemNqn);
    if (!r) return;
    const user = [...this.arrays.values()].find((a) => a.members.some((m) => m.devicePath === r.devicePath));
    if (user)
      throw new DeviceInUseError(`${r.devicePath} (${subsystemNqn}) is a member of array ${user.name}`);
    this.remote.delete(subsystemNqn);
    r.ns.close();
  }

  async findDeviceByNqn(subsystemNqn: string, o?: OpOptions): Promise<string | undefined> {
    check(o);
    return this.remote.get(subsystemNqn)?.devicePath;
  }

  /** The fabric lost the controller (the target removed the subsystem or went away). */
  private targetGone(nqn: string): void {
    const r = this.remote.get(nqn);
    if (!r) return;
    this.remote.delete(nqn);
    for (const a of this.arrays.values()) {
      const lost = a.members.filter((m) => m.devicePath === r.devicePath);
      for (const m of lost) m.state = 'faulty';
      // md records the failure on the members that stay (their writes reach their targets later)
      if (lost.length) void this.bump(a).catch(() => undefined);
    }
  }

  // --- MD RAID1 ------------------------------------------------------------------------------

  async createArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const name = arrayName(spec.volumeId);
    if (spec.devices.length < 1) throw new InvalidArgumentError('an array needs at least one device');
    const stores = await this.fresh(spec.devices);
    const running = this.arrays.get(name);
    if (running) {
      const same = spec.devices.every((p) => running.members.some((m) => m.devicePath === p));
      if (same) return arrayView(running);
      throw new ForeignSuperblockError(`array ${name} is already running with other members`);
    }
    spec.devices.forEach((p, i) => {
      const s = stores[i] as Store;
      this.refuseBusyStore(p, s);
      if (s.md) {
        throw new ForeignSuperblockError(
          `${p} carries an MD superblock of array ${s.md.name} (${s.md.uuid}); not creating over it`,
        );
      }
      if (s.fs) throw new ForeignSuperblockError(`${p} carries a ${s.fs} filesystem; not creating over it`);
    });
    const uuid = `5a5a5a5a:00000000:00000000:${(++this.uuidSeq).toString(16).padStart(8, '0')}`;
    for (const s of stores) s.md = { uuid, name };
    await this.push(stores);
    const a: SimArray = {
      name,
      uuid,
      minor: this.nextMd--,
      raidDevices: spec.devices.length,
      members: spec.devices.map((p, i) => ({
        devicePath: p,
        store: stores[i] as Store,
        slot: i,
        state: 'in_sync',
        writeMostly: false,
      })),
      store: { sizeBytes: 0 },
      mismatch: 0,
      events: 0,
      dirty: 0,
    };
    resize(a);
    this.arrays.set(name, a);
    await this.bump(a);
    return arrayView(a);
  }

  async assembleArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const name = arrayName(spec.volumeId);
    const running = this.arrays.get(name);
    if (running) return arrayView(running);
    const stores = await this.fresh(spec.devices);
    const uuids = new Set(stores.map((s) => s.md?.uuid));
    spec.devices.forEach((p, i) => {
      const md = stores[i]?.md;
      if (!md || md.name !== name) {
        throw new ForeignSuperblockError(
          `${p} has no superblock of array ${name} (found ${md?.name ?? 'none'})`,
        );
      }
    });
    if (uuids.size !== 1) throw new ForeignSuperblockError(`devices of ${name} carry different array UUIDs`);
    const uuid = stores[0]?.md?.uuid as string;
    const prior = this.superblockRaidDevices.get(uuid) ?? spec.devices.length;
    const a: SimArray = {
      name,
      uuid,
      minor: this.nextMd--,
      raidDevices: prior,
      members: spec.devices.map((p, i) => ({
        devicePath: p,
        store: stores[i] as Store,
        slot: i,
        state: 'in_sync',
        writeMostly: false,
      })),
      store: this.arrayStores.get(uuid) ?? { sizeBytes: 0 },
      mismatch: 0,
      events: Math.max(...stores.map((s) => s.md?.events ?? 0)),
      dirty: 0,
    };
    resize(a);
    this.arrays.set(name, a);
    await this.bump(a);
    return arrayView(a);
  }

  /** raid-devices and the array's contents per array UUID, as its superblocks would keep them. */
  private readonly superblockRaidDevices = new Map<string, number>();
  private readonly arrayStores = new Map<string, Store>();

  async getArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo | undefined> {
    check(o);
    const a = this.arrays.get(arrayName(volumeId));
    return a ? arrayView(a) : undefined;
  }

  async addMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = this.array(volumeId);
    if (a.members.some((m) => m.devicePath === devicePath)) return arrayView(a);
    const [s] = (await this.fresh([devicePath])) as [Store];
    if (s.md && s.md.uuid !== a.uuid) {
      throw new ForeignSuperblockError(`${devicePath} carries an MD superblock of array ${s.md.name}`);
    }
    this.refuseBusyStore(devicePath, s);
    s.md = { uuid: a.uuid, name: a.name };
    await this.push([s]);
    const used = new Set(a.members.map((m) => m.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    const free = slot < a.raidDevices;
    a.members.push({
      devicePath,
      store: s,
      slot: free ? slot : undefined,
      state: free ? 'in_sync' : 'spare',
      writeMostly: false,
    });
    resize(a);
    await this.bump(a);
    return arrayView(a);
  }

  async removeMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = this.array(volumeId);
    const m = a.members.find((x) => x.devicePath === devicePath);
    if (!m) return arrayView(a);
    const inSync = a.members.filter((x) => x.state === 'in_sync');
    if (m.state === 'in_sync' && inSync.length <= 1) {
      throw new LastInSyncMemberError(
        `${devicePath} is the last in-sync member of ${a.name}; not removing it`,
      );
    }
    a.members = a.members.filter((x) => x !== m);
    // an in-sync copy leaves with the array's contents (what a snapshot restores)
    if (m.state === 'in_sync') m.store.data = a.store.fs;
    await this.bump(a);
    return arrayView(a);
  }

  async reAddMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = this.array(volumeId);
    const have = a.members.find((m) => m.devicePath === devicePath);
    if (have && have.state !== 'faulty') return arrayView(a);
    if (have) a.members = a.members.filter((m) => m !== have); // a failed copy holds nothing needed
    const [s] = (await this.fresh([devicePath])) as [Store];
    this.refuseBusyStore(devicePath, s);
    if (!s.md)
      throw new ReAddRefusedError(`${devicePath} carries no MD superblock: only a full rebuild can use it`);
    if (s.md.uuid !== a.uuid)
      throw new ForeignSuperblockError(`${devicePath} carries an MD superblock of array ${s.md.name}`);
    const mine = s.md.events ?? 0;
    if (mine > a.events) {
      throw new ReAddRefusedError(
        `${devicePath} is ahead of ${a.name} (events ${mine} > ${a.events}): written elsewhere after it left; only a full rebuild can use it`,
      );
    }
    const used = new Set(a.members.map((m) => m.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    if (slot >= a.raidDevices) throw new ReAddRefusedError(`${a.name} has no free slot for ${devicePath}`);
    // the simulation resyncs the dirty chunks at once
    a.members.push({ devicePath, store: s, slot, state: 'in_sync', writeMostly: false });
    if (!arrayView(a).degraded) a.dirty = 0;
    await this.bump(a);
    return arrayView(a);
  }

  async readBitmap(volumeId: string, o?: OpOptions): Promise<BitmapInfo> {
    check(o);
    const a = this.array(volumeId);
    if (!a.members.some((m) => m.state === 'in_sync'))
      throw new NotFoundError(`array ${a.name} has no in-sync member`);
    return {
      chunkBytes: BITMAP_CHUNK,
      chunks: Math.ceil(a.store.sizeBytes / BITMAP_CHUNK),
      dirtyChunks: a.dirty,
    };
  }

  /** The array's resync speed limit as setResyncSpeedLimit left it (tests read it; md shows it in sysfs). */
  resyncSpeedLimitOf(volumeId: string): number | undefined {
    return this.array(volumeId).resyncSpeedLimit;
  }

  async setResyncSpeedLimit(volumeId: string, kibPerSec: number | undefined, o?: OpOptions): Promise<void> {
    check(o);
    if (kibPerSec !== undefined && !(Number.isInteger(kibPerSec) && kibPerSec > 0))
      throw new InvalidArgumentError(
        `resync speed limit ${kibPerSec} KiB/s: a positive whole number, please`,
      );
    this.array(volumeId).resyncSpeedLimit = kibPerSec;
  }

  async setWriteMostly(volumeId: string, devicePath: string, on: boolean, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = this.array(volumeId);
    const m = a.members.find((x) => x.devicePath === devicePath);
    if (!m) throw new NotFoundError(`${devicePath} is not a member of ${a.name}`);
    m.writeMostly = on;
    return arrayView(a);
  }

  /** A change of the array: its event count goes up on the superblocks of the members still in it. */
  private async bump(a: SimArray): Promise<void> {
    a.events++;
    const current = a.members.filter((m) => m.state !== 'faulty').map((m) => m.store);
    for (const s of current) if (s.md) s.md.events = a.events;
    await this.push(current);
  }

  async setRaidDevices(volumeId: string, count: number, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = this.array(volumeId);
    if (!Number.isInteger(count) || count < 1)
      throw new InvalidArgumentError(`raid-devices ${count} is not >= 1`);
    const slotted = a.members.filter((m) => m.slot !== undefined);
    if (count < slotted.length) {
      throw new InvalidArgumentError(
        `${a.name} has ${slotted.length} active members: remove some before setting raid-devices to ${count}`,
      );
    }
    a.raidDevices = count;
    for (const m of a.members) {
      if (m.slot !== undefined) continue;
      const used = new Set(a.members.map((x) => x.slot));
      let slot = 0;
      while (used.has(slot)) slot++;
      if (slot >= count) break;
      m.slot = slot;
      m.state = 'in_sync';
    }
    this.superblockRaidDevices.set(a.uuid, count);
    await this.bump(a);
    return arrayView(a);
  }

  async growArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = this.array(volumeId);
    await this.pull(a.members.filter((m) => m.state !== 'faulty').map((m) => m.store));
    resize(a, true);
    return arrayView(a);
  }

  async cutLocalLegs(volumeId: string, o?: OpOptions): Promise<string[]> {
    check(o);
    const a = this.arrays.get(arrayName(volumeId));
    if (!a) return [];
    const local = a.members.filter((m) => this.localStore(m.devicePath) !== undefined);
    for (const m of local) m.cut = true;
    return local.map((m) => m.devicePath);
  }

  async fenceArray(volumeId: string, o?: OpOptions): Promise<boolean> {
    check(o);
    const a = this.arrays.get(arrayName(volumeId));
    if (!a || a.fenced) return false;
    await this.cutLocalLegs(volumeId, o);
    a.fenced = true;
    // as md: local members first; the last in-sync one stays (the array is broken instead)
    const own = (m: SimMember) => Number(this.localStore(m.devicePath) !== undefined);
    const ordered = [...a.members].sort((x, y) => own(y) - own(x));
    for (const m of ordered) {
      const inSync = a.members.filter((x) => x.state === 'in_sync');
      if (m.state === 'in_sync' && inSync.length === 1) continue;
      m.state = 'faulty';
    }
    return true;
  }

  async stopArray(volumeId: string, o?: OpOptions): Promise<void> {
    check(o);
    const a = this.arrays.get(arrayName(volumeId));
    if (!a) return;
    const dev = `/dev/md${a.minor}`;
    for (const [t, m] of this.mounts) {
      if (m.store === a.store) throw new DeviceInUseError(`${dev} (${a.name}) is mounted on ${t}`);
    }
    this.superblockRaidDevices.set(a.uuid, a.raidDevices);
    this.arrayStores.set(a.uuid, a.store);
    this.arrays.delete(a.name);
  }

  // --- filesystem ----------------------------------------------------------------------------

  async makeFilesystem(devicePath: string, o?: OpOptions): Promise<void> {
    check(o);
    const [s] = (await this.fresh([devicePath])) as [Store];
    if (s.fs === 'xfs') return;
    if (s.fs === XFS_MKFS_CUT_SHORT) {
      // what LinuxHost does: nothing was ever written through it, so it is made again
      s.fs = 'xfs';
      await this.push([s]);
      return;
    }
    if (s.fs || s.md) {
      throw new ForeignSuperblockError(
        `${devicePath} carries ${s.fs ?? 'an MD superblock'}; not formatting it`,
      );
    }
    if (s.sizeBytes < MIN_FILESYSTEM_BYTES.xfs)
      throw new InvalidArgumentError(
        `${devicePath} is too small for XFS (< ${MIN_FILESYSTEM_BYTES.xfs} bytes)`,
      );
    s.fs = 'xfs';
    // written while a slot is missing: the bitmap keeps the chunk dirty for the member's return
    const a = [...this.arrays.values()].find((x) => x.store === s);
    if (a && arrayView(a).degraded) a.dirty = Math.min(a.dirty + 1, Math.ceil(s.sizeBytes / BITMAP_CHUNK));
    await this.push([s]);
  }

  async mount(devicePath: string, target: string, o?: MountOptions): Promise<void> {
    check(o);
    const flags = checkMountFlags(o?.flags);
    const [s] = (await this.fresh([devicePath])) as [Store];
    const have = this.mounts.get(target);
    if (have) {
      if (have.kind === 'filesystem' && have.store === s) return;
      throw new DeviceInUseError(`${target} already has ${have.devicePath} mounted`);
    }
    if (s.fs === XFS_MKFS_CUT_SHORT)
      throw new HostError(`${devicePath}: its mkfs.xfs did not finish; the kernel refuses to mount it`);
    if (s.fs !== 'xfs') throw new InvalidArgumentError(`${devicePath} has no XFS filesystem`);
    this.mounts.set(target, { devicePath, store: s, kind: 'filesystem', readonly: false, flags });
  }

  /**
   * Test hook: leaves on the device what an mkfs.xfs killed midway leaves on Linux, a superblock
   * blkid calls XFS and the kernel will not mount (sb_inprogress still set).
   */
  async cutMkfsShort(devicePath: string): Promise<void> {
    const [s] = (await this.fresh([devicePath])) as [Store];
    if (s.fs !== 'xfs') throw new InvalidArgumentError(`${devicePath} has no XFS filesystem to cut short`);
    s.fs = XFS_MKFS_CUT_SHORT;
    await this.push([s]);
  }

  async bindMount(mountPoint: string, target: string, o: BindOptions = {}): Promise<void> {
    check(o);
    const src = this.filesystemAt(mountPoint);
    if (mountPoint === target) throw new InvalidArgumentError(`not binding ${mountPoint} onto itself`);
    this.bind(target, { ...src, readonly: o.readonly === true });
  }

  async bindDevice(devicePath: string, target: string, o: BindOptions = {}): Promise<void> {
    check(o);
    const store = this.device(devicePath);
    this.bind(target, { devicePath, store, kind: 'device', readonly: o.readonly === true, flags: [] });
  }

  /** The idempotency and refusals both binds share (see Host). */
  private bind(target: string, want: SimMount): void {
    const have = this.mounts.get(target);
    if (!have) {
      this.mounts.set(target, want);
      return;
    }
    if (have.store !== want.store || have.kind !== want.kind)
      throw new DeviceInUseError(
        `${target} already has ${have.devicePath} ${have.kind === 'device' ? 'bound' : 'mounted'}`,
      );
    if (have.readonly && !want.readonly)
      throw new DeviceInUseError(`${target} is bound read-only; not making it writable`);
    have.readonly = want.readonly;
  }

  async getMount(target: string, o?: OpOptions): Promise<MountInfo | undefined> {
    check(o);
    const m = this.mounts.get(target);
    if (!m) return undefined;
    const a = [...this.arrays.values()].find((x) => x.store === m.store);
    return {
      kind: m.kind,
      devicePath: a ? `/dev/md${a.minor}` : m.devicePath,
      readonly: m.readonly,
      ...(m.kind === 'filesystem' ? { options: perMountOptions(m.flags, m.readonly) } : {}),
    };
  }

  /** The mount flags the mount at target was made with (a bind: its source's); tests read it. */
  mountFlagsAt(target: string): string[] | undefined {
    return this.mounts.get(target)?.flags;
  }

  /**
   * Whether a write through `path` would succeed: a file in a directory on a read-only mount is
   * refused; a bound device node takes writes either way, as on Linux (a mount's ro is not applied
   * to device I/O). The simulation holds no data; this is the write the kernel tier makes for real.
   */
  canWrite(path: string): boolean {
    // as md: a write fails when no member that is not faulty can take it (fenced: all failed;
    // a cut local leg fails every IO below md)
    const refuses = (a: SimArray) => a.fenced || a.members.every((m) => m.state === 'faulty' || m.cut);
    const fenced = (store: Store) => [...this.arrays.values()].some((a) => refuses(a) && a.store === store);
    const dev = /^\/dev\/md(\d+)$/.exec(path);
    if (dev) return ![...this.arrays.values()].some((a) => refuses(a) && a.minor === Number(dev[1]));
    // a connected namespace: its target takes the write
    if ([...this.remote.values()].some((r) => r.devicePath === path)) return true;
    const m = this.mounts.get(path);
    if (m && fenced(m.store)) return false;
    if (m?.kind === 'device') return true;
    return !this.filesystemAt(path).readonly;
  }

  async unmount(target: string, o?: OpOptions): Promise<void> {
    check(o);
    this.mounts.delete(target);
  }

  async growFilesystem(target: string, o?: OpOptions): Promise<void> {
    check(o);
    this.filesystemAt(target);
  }

  async filesystemUsage(target: string, o?: OpOptions): Promise<FsUsage> {
    check(o);
    const size = this.filesystemAt(target).store.sizeBytes;
    return { sizeBytes: size, usedBytes: 0, freeBytes: size, inodes: 1024, inodesFree: 1021 };
  }

  // --- snapshots -----------------------------------------------------------------------------

  /** Filesystems frozen now (by the store they live on). */
  private readonly frozen = new Set<Store>();

  async freezeFilesystem(devicePath: string, o?: OpOptions): Promise<boolean> {
    check(o);
    const s = this.device(devicePath);
    if (![...this.mounts.values()].some((m) => m.kind === 'filesystem' && m.store === s)) return false;
    this.frozen.add(s);
    return true;
  }

  async thawFilesystem(devicePath: string, o?: OpOptions): Promise<void> {
    check(o);
    this.frozen.delete(this.device(devicePath));
  }

  /** Whether the filesystem on the device is frozen (tests: a step killed while frozen must thaw). */
  isFrozen(devicePath: string): boolean {
    return this.frozen.has(this.device(devicePath));
  }

  async copyMemberData(source: string, target: string, o?: OpOptions): Promise<void> {
    check(o);
    const [src, dst] = (await this.fresh([source, target])) as [Store, Store];
    if (!src.md) throw new InvalidArgumentError(`${source} carries no MD superblock: not a detached member`);
    if (arrayBytesOf(src.sizeBytes) > dst.sizeBytes)
      throw new InvalidArgumentError(`${target} is smaller than the array ${source} left`);
    dst.fs = src.data;
    await this.push([dst]);
  }

  private filesystemAt(target: string): SimMount {
    const m = this.mounts.get(target);
    if (m?.kind !== 'filesystem') throw new NotFoundError(`no filesystem is mounted on ${target}`);
    return m;
  }

  // --- internals -----------------------------------------------------------------------------

  private drive(id: string): SimDrive {
    const d = this.drives.find((x) => x.id === id);
    if (!d) throw new NotFoundError(`no drive with id ${JSON.stringify(id)}`);
    return d;
  }

  private findPartition(d: SimDrive, owner: Owner): SimPartition | undefined {
    const uuid = partitionUuid(owner);
    return d.partitions.find((p) => p.partUuid === uuid);
  }

  private partPath(d: SimDrive, p: SimPartition): string {
    return `/dev/nvme${d.index}n1p${p.number}`;
  }

  private partView(d: SimDrive, p: SimPartition): Partition {
    return {
      number: p.number,
      start: p.start,
      end: p.end,
      name: p.name,
      partUuid: p.partUuid,
      path: this.partPath(d, p),
      owner: ownerFromName(p.name),
    };
  }

  private driveView(d: SimDrive): Drive {
    const parts = d.partitions.map((p) => this.partView(d, p)).sort((a, b) => a.start - b.start);
    return {
      id: d.id,
      path: `/dev/nvme${d.index}n1`,
      sizeBytes: d.sizeBytes,
      logicalBlockSize: d.lbs,
      gptSlots: d.gpt ? 128 : 0,
      partitions: parts,
      free: freeExtents(usableArea(d.sizeBytes, d.lbs), parts),
    };
  }

  private localStore(path: string): Store | undefined {
    for (const d of this.drives) {
      for (const p of d.partitions) if (this.partPath(d, p) === path) return p.store;
    }
    return undefined;
  }

  private device(path: string): Store {
    const s =
      this.localStore(path) ??
      [...this.remote.values()].find((r) => r.devicePath === path)?.ns.store ??
      [...this.arrays.values()].find((a) => `/dev/md${a.minor}` === path)?.store;
    if (!s) throw new NotFoundError(`no block device ${path}`);
    return s;
  }

  /** The devices' stores, remote ones refreshed from their targets. */
  private async fresh(paths: string[]): Promise<Store[]> {
    const stores = paths.map((p) => this.device(p));
    await this.pull(stores);
    return stores;
  }

  private async pull(stores: Store[]): Promise<void> {
    await Promise.all(this.namespaces(stores).map((ns) => ns.pull()));
  }

  /** Writes the stores' metadata through to their targets before the calling method returns. */
  private async push(stores: Store[]): Promise<void> {
    await Promise.all(this.namespaces(stores).map((ns) => ns.push()));
  }

  private namespaces(stores: Store[]): SimNamespace[] {
    return [...this.remote.values()].filter((r) => stores.includes(r.ns.store)).map((r) => r.ns);
  }

  private export(nqn: string): SimExport {
    const e = this.exports.get(nqn);
    if (!e) throw new NotFoundError(`no exported subsystem ${nqn}`);
    return e;
  }

  private array(volumeId: string): SimArray {
    const name = arrayName(volumeId);
    const a = this.arrays.get(name);
    if (!a) throw new NotFoundError(`array ${name} is not assembled`);
    return a;
  }

  private dropListener(e: SimExport): void {
    const k = key(e.listen);
    const still = [...this.exports.values()].some((x) => key(x.listen) === k);
    if (!still) this.fabric.unlisten(this, e.listen);
  }

  private refuseBusyStore(path: string, s: Store): void {
    if (this.busy.has(s)) throw new DeviceInUseError(`${path} is in use by the operating system`);
    for (const a of this.arrays.values()) {
      if (a.members.some((m) => m.store === s))
        throw new DeviceInUseError(`${path} is a member of ${a.name}`);
    }
    for (const [t, m] of this.mounts)
      if (m.store === s) throw new DeviceInUseError(`${path} is mounted on ${t}`);
  }

  private refuseInUse(d: SimDrive, p: SimPartition, what: string): void {
    const path = this.partPath(d, p);
    try {
      this.refuseBusyStore(path, p.store);
    } catch (e) {
      throw new DeviceInUseError(`not going to ${what} ${path}: ${(e as Error).message}`);
    }
    for (const e of this.exports.values()) {
      if (e.store === p.store)
        throw new DeviceInUseError(`not going to ${what} ${path}: exported as ${e.nqn}`);
    }
  }
}

function check(o: OpOptions | undefined): void {
  if (o?.signal?.aborted) throw new CancelledError('operation cancelled before it started');
}

function resize(a: SimArray, grow = false): void {
  const live = a.members.filter((m) => m.state !== 'faulty');
  const min = Math.min(...live.map((m) => m.store.sizeBytes));
  if (a.store.sizeBytes === 0 || grow) a.store.sizeBytes = Math.max(a.store.sizeBytes, arrayBytesOf(min));
}

/** The size of an array on members of this size: less the superblock's and bitmap's room. */
function arrayBytesOf(memberBytes: number): number {
  return alignUp(memberBytes - MD_OVERHEAD, 4096) - 4096;
}

/** An export that already exists is the answer only if it exports the same device. */
function sameExport(have: SimExport, spec: ExportSpec): ExportInfo {
  if (have.devicePath !== spec.devicePath) {
    throw new InvalidArgumentError(`${have.nqn} already exports ${have.devicePath}, not ${spec.devicePath}`);
  }
  return exportView(have);
}

function exportView(e: SimExport): ExportInfo {
  return {
    nqn: e.nqn,
    devicePath: e.devicePath,
    listen: [e.listen],
    allowedHosts: [...e.allowed].sort(),
  };
}

function arrayView(a: SimArray): ArrayInfo {
  const inSync = a.members.filter((m) => m.state === 'in_sync' && m.slot !== undefined).length;
  return {
    name: a.name,
    uuid: a.uuid,
    devicePath: `/dev/md${a.minor}`,
    raidDevices: a.raidDevices,
    members: a.members.map((m) => ({
      devicePath: m.devicePath,
      slot: m.slot,
      state: m.state,
      writeMostly: m.writeMostly,
    })),
    degraded: inSync < a.raidDevices,
    syncAction: 'idle',
    syncProgress: undefined,
    mismatchCount: a.mismatch,
    sizeBytes: a.store.sizeBytes,
  };
}

/**
 * New keys for a live controller, as LinuxHost writes them to sysfs: kept for the next
 * re-authentication (the simulation does not run one; the target's keys are checked at connect).
 */
function rotateKeys(r: SimRemote, spec: ConnectSpec): void {
  if (spec.dhchapSecret === undefined) return;
  if (r.keys.dhchapSecret === undefined) {
    throw new HostError(
      `${r.devicePath} (${r.nqn}) is connected without dhchap_secret; the kernel cannot add one to a live controller: disconnect it first`,
    );
  }
  r.keys = {
    dhchapSecret: spec.dhchapSecret,
    dhchapCtrlSecret: spec.dhchapCtrlSecret ?? r.keys.dhchapCtrlSecret,
  };
}
