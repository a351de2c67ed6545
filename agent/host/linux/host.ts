// LinuxHost: the Host contract on a real machine, one section per part of the interface
// (partitions.ts, nvmet.ts, initiator.ts, md.ts, filesystems.ts) over shared context.ts and
// devices.ts. Commands go through the one exec wrapper (exec.ts); state is read from sysfs,
// configfs, /proc and the tools' machine-readable output, parsed by the pure functions of parse/.
// Every operation observes first and does nothing when its result already holds, so it can be
// re-run after a crash at any point.

import type { DriveCandidate } from '../../drive-selection.ts';
import { exec as defaultExec, type Exec } from '../exec.ts';
import { checkNqn } from '../names.ts';
import type {
  ArrayCreateSpec,
  ArrayInfo,
  BindOptions,
  BitmapInfo,
  ConnectSpec,
  Drive,
  ExportInfo,
  ExportSpec,
  FsUsage,
  Host,
  HostAccess,
  MountInfo,
  MountOptions,
  OpOptions,
  Owner,
  Partition,
  PartitionSpec,
} from '../types.ts';
import { LinuxContext } from './context.ts';
import { Devices } from './devices.ts';
import { Filesystems } from './filesystems.ts';
import { hostIdFor, Initiator } from './initiator.ts';
import { Arrays } from './md.ts';
import { Target } from './nvmet.ts';
import { Partitions } from './partitions.ts';
import { SnapshotSteps } from './snapshots.ts';

export interface LinuxHostOptions {
  hostNqn: string;
  /** Which local NVMe drives this host manages, by stable id (default: every PCIe NVMe drive). */
  driveFilter?: (id: string) => boolean;
  exec?: Exec;
  /** nvmet configfs root (default /sys/kernel/config/nvmet). */
  configfs?: string;
}

export class LinuxHost implements Host {
  readonly hostNqn: string;
  private readonly partitions: Partitions;
  private readonly target: Target;
  private readonly initiator: Initiator;
  private readonly arrays: Arrays;
  private readonly filesystems: Filesystems;
  private readonly snapshots: SnapshotSteps;

  constructor(opts: LinuxHostOptions) {
    checkNqn(opts.hostNqn);
    this.hostNqn = opts.hostNqn;
    const c = new LinuxContext(
      opts.hostNqn,
      hostIdFor(opts.hostNqn),
      opts.configfs ?? '/sys/kernel/config/nvmet',
      opts.exec ?? defaultExec,
    );
    const devices = new Devices(c);
    this.arrays = new Arrays(c, devices);
    this.partitions = new Partitions(c, devices, opts.driveFilter ?? (() => true), this.arrays);
    this.target = new Target(c, devices);
    this.initiator = new Initiator(c, devices);
    this.filesystems = new Filesystems(c, devices);
    this.snapshots = new SnapshotSteps(c, devices);
  }

  // Drives and partitions
  listDrives(o?: OpOptions): Promise<Drive[]> {
    return this.partitions.listDrives(o);
  }

  /** Every local NVMe drive, managed or not, as drive selection sees it (agent/drive-selection.ts). */
  driveCandidates(o?: OpOptions): Promise<DriveCandidate[]> {
    return this.partitions.candidates(o);
  }
  createPartitions(driveId: string, specs: PartitionSpec[], o?: OpOptions): Promise<Partition[]> {
    return this.partitions.createPartitions(driveId, specs, o);
  }
  deletePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void> {
    return this.partitions.deletePartition(driveId, owner, o);
  }
  wipePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void> {
    return this.partitions.wipePartition(driveId, owner, o);
  }
  growPartition(driveId: string, owner: Owner, newEnd: number, o?: OpOptions): Promise<Partition> {
    return this.partitions.growPartition(driveId, owner, newEnd, o);
  }

  // NVMe-oF target
  exportReplica(spec: ExportSpec, o?: OpOptions): Promise<ExportInfo> {
    return this.target.exportReplica(spec, o);
  }
  grantHost(nqn: string, access: HostAccess, o?: OpOptions): Promise<void> {
    return this.target.grantHost(nqn, access, o);
  }
  revokeHost(nqn: string, hostNqn: string, o?: OpOptions): Promise<void> {
    return this.target.revokeHost(nqn, hostNqn, o);
  }
  unexport(nqn: string, o?: OpOptions): Promise<void> {
    return this.target.unexport(nqn, o);
  }
  listExports(o?: OpOptions): Promise<ExportInfo[]> {
    return this.target.listExports(o);
  }

  // NVMe-oF initiator
  connect(spec: ConnectSpec, o?: OpOptions): Promise<string> {
    return this.initiator.connect(spec, o);
  }
  disconnect(subsystemNqn: string, o?: OpOptions): Promise<void> {
    return this.initiator.disconnect(subsystemNqn, o);
  }
  findDeviceByNqn(subsystemNqn: string, o?: OpOptions): Promise<string | undefined> {
    return this.initiator.findDeviceByNqn(subsystemNqn, o);
  }

  // MD RAID1
  createArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo> {
    return this.arrays.createArray(spec, o);
  }
  assembleArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo> {
    return this.arrays.assembleArray(spec, o);
  }
  getArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo | undefined> {
    return this.arrays.getArray(volumeId, o);
  }
  addMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    return this.arrays.addMember(volumeId, devicePath, o);
  }
  removeMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    return this.arrays.removeMember(volumeId, devicePath, o);
  }
  reAddMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    return this.arrays.reAddMember(volumeId, devicePath, o);
  }
  readBitmap(volumeId: string, o?: OpOptions): Promise<BitmapInfo> {
    return this.arrays.readBitmap(volumeId, o);
  }
  setResyncSpeedLimit(volumeId: string, kibPerSec: number | undefined, o?: OpOptions): Promise<void> {
    return this.arrays.setResyncSpeedLimit(volumeId, kibPerSec, o);
  }
  setWriteMostly(volumeId: string, devicePath: string, on: boolean, o?: OpOptions): Promise<ArrayInfo> {
    return this.arrays.setWriteMostly(volumeId, devicePath, on, o);
  }
  setRaidDevices(volumeId: string, count: number, o?: OpOptions): Promise<ArrayInfo> {
    return this.arrays.setRaidDevices(volumeId, count, o);
  }
  growArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo> {
    return this.arrays.growArray(volumeId, o);
  }
  stopArray(volumeId: string, o?: OpOptions): Promise<void> {
    return this.arrays.stopArray(volumeId, o);
  }
  cutLocalLegs(volumeId: string, o?: OpOptions): Promise<string[]> {
    return this.arrays.cutLocalLegs(volumeId, o);
  }
  fenceArray(volumeId: string, o?: OpOptions): Promise<boolean> {
    return this.arrays.fenceArray(volumeId, o);
  }

  // Filesystem
  makeFilesystem(devicePath: string, o?: OpOptions): Promise<void> {
    return this.filesystems.makeFilesystem(devicePath, o);
  }
  mount(devicePath: string, target: string, o?: MountOptions): Promise<void> {
    return this.filesystems.mount(devicePath, target, o);
  }
  bindMount(mountPoint: string, target: string, o?: BindOptions): Promise<void> {
    return this.filesystems.bindMount(mountPoint, target, o);
  }
  bindDevice(devicePath: string, target: string, o?: BindOptions): Promise<void> {
    return this.filesystems.bindDevice(devicePath, target, o);
  }
  getMount(target: string, o?: OpOptions): Promise<MountInfo | undefined> {
    return this.filesystems.getMount(target, o);
  }
  unmount(target: string, o?: OpOptions): Promise<void> {
    return this.filesystems.unmount(target, o);
  }
  growFilesystem(target: string, o?: OpOptions): Promise<void> {
    return this.filesystems.growFilesystem(target, o);
  }
  filesystemUsage(target: string, o?: OpOptions): Promise<FsUsage> {
    return this.filesystems.filesystemUsage(target, o);
  }

  // Snapshots
  freezeFilesystem(devicePath: string, o?: OpOptions): Promise<boolean> {
    return this.snapshots.freezeFilesystem(devicePath, o);
  }
  thawFilesystem(devicePath: string, o?: OpOptions): Promise<void> {
    return this.snapshots.thawFilesystem(devicePath, o);
  }
  copyMemberData(source: string, target: string, o?: OpOptions): Promise<void> {
    return this.snapshots.copyMemberData(source, target, o);
  }
}
