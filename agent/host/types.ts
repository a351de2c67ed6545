// The Host interface: everything the agent does to a machine. Two implementations pass one
// contract suite (agent/host/test/contract.ts): LinuxHost (real commands and configfs) and
// SimulatedHost (in memory). Every operation observes state first and does nothing when its
// result already holds (idempotent), takes an optional AbortSignal, and refuses unsafe requests
// with the typed errors of errors.ts before changing anything.
import type { Extent } from '../../placement/index.ts';
import type { DhchapKeys } from './dhchap.ts';

export interface OpOptions {
  signal?: AbortSignal | undefined;
}

export interface Owner {
  volumeId: string;
  replicaId: string;
}

export interface Partition extends Extent {
  number: number;
  /** GPT partition name (MeshStor's: `ms/<volume>/<replica>`, see names.ts). */
  name: string;
  /** GPT partition GUID, lowercase. MeshStor's are derived from volume + replica. */
  partUuid: string;
  /** Block device path (may change across reboots: never store it, look it up). */
  path: string;
  /** Set when the partition's name or GUID says it holds a MeshStor replica. */
  owner?: Owner | undefined;
}

export interface Drive {
  /** Stable id: the NVMe serial (or WWN when there is no serial). */
  id: string;
  path: string;
  sizeBytes: number;
  logicalBlockSize: number;
  /** Entries the GPT holds (0 when the drive has no GPT yet). */
  gptSlots: number;
  partitions: Partition[];
  /** Unallocated byte ranges inside the usable area, 1 MiB aligned, largest first is NOT implied. */
  free: Extent[];
}

export interface PartitionSpec extends Owner {
  extent: Extent;
}

/**
 * Who may connect, and the DH-HMAC-CHAP keys it must prove (`dhchapSecret`; none = no
 * authentication) and the controller proves back (`dhchapCtrlSecret`). nvmet keeps keys per host
 * NQN, not per subsystem: granting a host new keys changes them for every subsystem of this target
 * it is allowed on. Live controllers stay connected; the next (re-)authentication uses the new keys.
 */
export interface HostAccess extends DhchapKeys {
  hostNqn: string;
}

export interface ListenAddress {
  address: string;
  port: number;
}

export interface ExportSpec extends Owner {
  /** The partition to export (path as listDrives reports it). */
  devicePath: string;
  listen: ListenAddress;
}

export interface ExportInfo {
  nqn: string;
  devicePath: string;
  listen: ListenAddress[];
  allowedHosts: string[];
}

/**
 * A connection. Keys are handed to the kernel, never to a command line. Connecting again to a
 * subsystem already connected with other keys re-authenticates the live controller with the
 * given ones (key rotation: no disconnect, I/O goes on).
 */
export interface ConnectSpec extends DhchapKeys {
  subsystemNqn: string;
  target: ListenAddress;
  /** Seconds before a lost controller is given up and its I/O failed (bounded; kernel default 600). */
  ctrlLossTmoSec: number;
}

/**
 * A member's state in md's own words (md sysfs state files, `mdadm --detail`). The agent translates
 * it once (agent/members.ts MEMBER_FROM_ARRAY) into the one vocabulary records and CRDs use
 * (placement/model.ts MemberState).
 */
export type MdMemberState = 'in_sync' | 'spare' | 'rebuilding' | 'faulty';

export interface ArrayMember {
  devicePath: string;
  /** Slot in the array; undefined for spares. */
  slot: number | undefined;
  state: MdMemberState;
  /** md reads from it only when no other member can serve (sysfs state `write_mostly`). */
  writeMostly: boolean;
}

/**
 * An array's write-intent bitmap (`mdadm --examine-bitmap` of an in-sync member): md marks a chunk
 * dirty before writing to it and keeps it dirty while a member is missing, so the dirty chunks are
 * what a returning member resyncs.
 */
export interface BitmapInfo {
  chunkBytes: number;
  chunks: number;
  dirtyChunks: number;
}

export interface ArrayInfo {
  /** Array name (from the volume, names.ts arrayName). */
  name: string;
  uuid: string;
  /** /dev/mdN as the kernel named it now. */
  devicePath: string;
  raidDevices: number;
  members: ArrayMember[];
  degraded: boolean;
  /** 'idle', 'resync', 'recover', 'check', ... */
  syncAction: string;
  /** 0..1 while syncing, undefined when idle. */
  syncProgress: number | undefined;
  mismatchCount: number;
  sizeBytes: number;
}

export interface ArrayCreateSpec {
  volumeId: string;
  devices: string[];
}

export interface FsUsage {
  sizeBytes: number;
  usedBytes: number;
  freeBytes: number;
  inodes: number;
  inodesFree: number;
}

export interface BindOptions extends OpOptions {
  /**
   * A read-only bind: the mount carries `ro`. Writes into a bound directory fail (EROFS); the
   * kernel does not apply a mount's `ro` to a device node's I/O (fs/open.c skips the mount write
   * check for special files), so on a bound device it only marks the target: the CO enforces a
   * read-only block volume (kubelet grants the container the device with permission "r").
   */
  readonly?: boolean | undefined;
}

export interface MountOptions extends OpOptions {
  /**
   * Mount flags from MeshStor's allow-list (`mount-flags.ts`: noatime, nodev, discard, …), applied
   * after `nouuid`, which is always set; anything else is InvalidArgumentError. They take effect
   * when the mount is made: a mount of the same device already at the target is kept as it is.
   */
  flags?: readonly string[] | undefined;
}

/** What is mounted or bound at a path (the topmost mount there). */
export interface MountInfo {
  /** 'filesystem': a filesystem on a directory (mounted, or bound from a mount point); 'device': a device node bound onto a file. */
  kind: 'filesystem' | 'device';
  /** The block device behind it (/dev/mdN as the kernel names it now). */
  devicePath: string;
  readonly: boolean;
  /**
   * A filesystem's per-mount options as mountinfo lists them, in the kernel's order: `rw`/`ro`,
   * then nosuid, nodev, noexec, noatime, nodiratime, relatime (the default atime unless noatime or
   * strictatime was asked). The filesystem's own options (discard, largeio, lazytime, sync, …) are
   * not per mount and not here. Absent for a bound device node: its mount's flags are /dev's.
   */
  options?: string[];
}

export interface Host {
  /** This node's NVMe host NQN (what targets allow-list). */
  readonly hostNqn: string;

  // Drives and partitions
  listDrives(o?: OpOptions): Promise<Drive[]>;
  /** Creates all specs on one drive in one table write (idempotent per spec); the kernel sees them. */
  createPartitions(driveId: string, specs: PartitionSpec[], o?: OpOptions): Promise<Partition[]>;
  /** Deletes the replica's partition; refused while it is an array member, exported or mounted. */
  deletePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void>;
  /** Erases superblocks and signatures on the replica's partition; same refusals as delete. */
  wipePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void>;
  /** Moves the partition's end to newEnd (same start, same GUID), online; the next range must be free. */
  growPartition(driveId: string, owner: Owner, newEnd: number, o?: OpOptions): Promise<Partition>;

  // NVMe-oF target
  /** Subsystem per replica, namespace on the partition, listening on `listen`; nobody allowed yet. */
  exportReplica(spec: ExportSpec, o?: OpOptions): Promise<ExportInfo>;
  grantHost(nqn: string, access: HostAccess, o?: OpOptions): Promise<void>;
  revokeHost(nqn: string, hostNqn: string, o?: OpOptions): Promise<void>;
  /** Removes the subsystem (all hosts, namespace, port links). */
  unexport(nqn: string, o?: OpOptions): Promise<void>;
  listExports(o?: OpOptions): Promise<ExportInfo[]>;

  // NVMe-oF initiator
  /** Connects with this host's NQN; returns the namespace's block device (found by NQN in sysfs). */
  connect(spec: ConnectSpec, o?: OpOptions): Promise<string>;
  disconnect(subsystemNqn: string, o?: OpOptions): Promise<void>;
  /** Block device of a connected subsystem's namespace, or undefined. */
  findDeviceByNqn(subsystemNqn: string, o?: OpOptions): Promise<string | undefined>;

  // MD RAID1
  /** Creates the volume's RAID1 (metadata 1.2, internal bitmap). Refuses another array's superblock. */
  createArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo>;
  /** Assembles the volume's array from exactly these devices (runs degraded if some are missing). */
  assembleArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo>;
  getArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo | undefined>;
  addMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo>;
  /**
   * Puts back a member that left the array (`mdadm --re-add`; a faulty entry of the same device is
   * removed first): md resyncs only the chunks the bitmap marked since it left. Refuses with
   * ReAddRefusedError what only a full rebuild can bring back (no superblock of this array, an event
   * count ahead of the array's, md refusing), with ForeignSuperblockError another array's member.
   */
  reAddMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo>;
  /** The array's write-intent bitmap as an in-sync member carries it. */
  readBitmap(volumeId: string, o?: OpOptions): Promise<BitmapInfo>;
  /**
   * Marks a member write-mostly (md reads from the others while they can serve) or clears it. Never
   * write-behind: that would acknowledge writes the member does not have yet.
   */
  setWriteMostly(volumeId: string, devicePath: string, on: boolean, o?: OpOptions): Promise<ArrayInfo>;
  /**
   * Caps this array's resync and recovery speed (md's `sync_speed_max`, KiB/s); undefined gives it
   * back to the system-wide limit. Idempotent. Rebuilds and relocations use it so one array's full
   * resync cannot take a node's whole bandwidth.
   */
  setResyncSpeedLimit(volumeId: string, kibPerSec: number | undefined, o?: OpOptions): Promise<void>;
  /** Fails and removes one member; refuses the last in-sync one. A vanished device: pass its old path. */
  removeMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo>;
  setRaidDevices(volumeId: string, count: number, o?: OpOptions): Promise<ArrayInfo>;
  /** Grows the array to the smallest member's size. */
  growArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo>;
  stopArray(volumeId: string, o?: OpOptions): Promise<void>;
  /**
   * Self-fencing, first step (ADR 0006): every IO to the volume's local members fails from now on,
   * below the array, at once. createArray, assembleArray, addMember and reAddMember put each local
   * partition on a layer of its own (LinuxHost: a device-mapper `linear` device named after the
   * volume and the partition, never shown in ArrayInfo: members are still named by their
   * partitions); this switches those layers to failing every IO. It does not go through the array
   * (md's reconfiguration path waits behind IO stalled on a cut remote leg), so it takes only what
   * the local disk's in-flight IO takes. Writes then complete only where a remote copy takes
   * them. Idempotent; the layers go away when the array is stopped (stopArray) or the member
   * removed. Resolves the partitions cut (none without an array or without local members).
   */
  cutLocalLegs(volumeId: string, o?: OpOptions): Promise<string[]>;
  /**
   * Self-fencing (ADR 0006): the running array stops acknowledging writes. Its local legs are cut
   * first (cutLocalLegs), then its members are failed,
   * local ones first (a remote copy still reachable records them as faulty); md keeps the last
   * in-sync one and marks the array broken instead, so every later write and cache flush fails
   * with EIO and no fsync can succeed on this node again. The array stays assembled (found,
   * reported, stopped as any other); it is not undone in place: it is stopped and assembled again.
   * Idempotent. Resolves false when there is no array or it is known to be fenced already (md does
   * not say whether an array is broken, so LinuxHost may answer true again for a fenced array).
   */
  fenceArray(volumeId: string, o?: OpOptions): Promise<boolean>;

  // Filesystem
  /** mkfs.xfs unless the device holds a finished XFS (one whose mkfs was cut short is made again); refuses any other signature. */
  makeFilesystem(devicePath: string, o?: OpOptions): Promise<void>;
  /** Mounts XFS from the device at target (a directory, created if missing), with `o.flags`. */
  mount(devicePath: string, target: string, o?: MountOptions): Promise<void>;
  // Both binds: the same source already there is a no-op; another source there, or a read-write
  // request on a read-only bind, is DeviceInUseError. A read-only request finding the same source
  // bound read-write finishes the bind (a `ro` bind is a bind and then a remount: a crash between
  // the two leaves it read-write).
  /**
   * Binds the filesystem mounted at `mountPoint` onto `target` (a directory, created if missing).
   * Refuses a source that is not a mount point (binding it would publish an empty directory).
   */
  bindMount(mountPoint: string, target: string, o?: BindOptions): Promise<void>;
  /** Binds a block device node onto `target` (a file, created if missing): a raw block publish. */
  bindDevice(devicePath: string, target: string, o?: BindOptions): Promise<void>;
  getMount(target: string, o?: OpOptions): Promise<MountInfo | undefined>;
  /** Undoes mount, bindMount or bindDevice; the target path itself stays (its creator removes it). */
  unmount(target: string, o?: OpOptions): Promise<void>;
  growFilesystem(target: string, o?: OpOptions): Promise<void>;
  filesystemUsage(target: string, o?: OpOptions): Promise<FsUsage>;

  // Snapshots (docs/adr/0010-snapshots.md)
  /**
   * Freezes the filesystem mounted from the device (new writes wait, the log is flushed), so a
   * member detached now holds a clean filesystem. Frozen already is fine. Resolves false when
   * nothing is mounted from it (a raw block volume: nothing to freeze).
   */
  freezeFilesystem(devicePath: string, o?: OpOptions): Promise<boolean>;
  /** Thaws it; not frozen, or nothing mounted, is fine (a resumed step thaws before anything else). */
  thawFilesystem(devicePath: string, o?: OpOptions): Promise<void>;
  /**
   * Copies a detached member's contents (the array it left, as large as that array was: its
   * filesystem spans all of it) from after its MD data offset onto `target`, reading the source
   * only. Refuses (InvalidArgumentError) a source with no MD superblock or a smaller target.
   */
  copyMemberData(source: string, target: string, o?: OpOptions): Promise<void>;
}
