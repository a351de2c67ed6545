// Drives and partitions: drives are found in sysfs, their tables read with `sfdisk --json`, written
// with sgdisk (one write per batch), and the kernel's view kept in step with partx (a busy disk
// cannot be re-read whole).
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Extent } from '../../../placement/index.ts';
import { KeyedLock } from '../../../state/lock.ts';
import type { DriveCandidate } from '../../drive-selection.ts';
import { CancelledError, CommandError, HostError, InvalidArgumentError, NotFoundError } from '../errors.ts';
import { checkNewExtent } from '../geometry.ts';
import { partitionTableFromSfdisk, readDriveFacts, withPartitionTable } from '../linux-drive-candidates.ts';
import { checkOwner, PARTITION_TYPE, partitionName, partitionUuid } from '../names.ts';
import type { Drive, OpOptions, Owner, Partition, PartitionSpec } from '../types.ts';
import { check, exists, type LinuxContext, readRaw, readText, waitFor } from './context.ts';
import { type Devices, readNamespaces, Section } from './devices.ts';
import type { Arrays } from './md.ts';
import { type KernelPartitionFiles, kernelPartitions } from './parse/block-sysfs.ts';
import { localDriveId } from './parse/nvme-sysfs.ts';
import {
  type DriveLayout,
  driveLayout,
  parseSfdisk,
  partitionNumber,
  type SfdiskTable,
} from './parse/sfdisk.ts';

type RawDrive = Drive & DriveLayout & { sysName: string };

/**
 * One partition-table change per drive at a time, in this process (every LinuxHost in it: the
 * kernel tier runs several on one kernel). Each change reads the table, picks free entry numbers
 * and has sgdisk write the whole table back: two at once both picked entry 1 and the second write
 * dropped the first one's partition (seen in kernel scenario x: "sgdisk did not create partition
 * 1", the other volume's partition in its place).
 */
const TABLE_WRITES = new KeyedLock();

/** Runs one table change under the drive's lock; cancelled (before or while it waits): CancelledError. */
async function tableChange<T>(driveId: string, o: OpOptions | undefined, work: () => Promise<T>): Promise<T> {
  check(o);
  try {
    return await TABLE_WRITES.run(driveId, work, o?.signal);
  } catch (e) {
    if (o?.signal?.aborted && e === o.signal.reason)
      throw new CancelledError(`operation cancelled while drive ${driveId}'s partition table was busy`);
    throw e;
  }
}

export class Partitions extends Section {
  /** Which local drives this host manages, by stable id. */
  private readonly filter: (id: string) => boolean;
  /** The arrays' fence layers over partitions (a grown partition's follows it; leftovers go). */
  private readonly arrays: Pick<Arrays, 'followGrowth' | 'releaseLeftover'>;

  constructor(
    c: LinuxContext,
    devices: Devices,
    filter: (id: string) => boolean,
    arrays: Pick<Arrays, 'followGrowth' | 'releaseLeftover'>,
  ) {
    super(c, devices);
    this.filter = filter;
    this.arrays = arrays;
  }

  async listDrives(o?: OpOptions): Promise<Drive[]> {
    check(o);
    let raw = await this.rawDrives(o);
    // A partition in the table that the kernel has no device for: a process killed between
    // sgdisk's write and partx (nodes tier: an agent killed in a relocation's "adding" step; its
    // successor found the new member's partition listed and failed "no block device …p3" on
    // every pass). The table is the truth: the kernel is told, under the drive's table lock.
    const behind = [];
    for (const d of raw) if (await this.kernelBehind(d)) behind.push(d);
    if (behind.length > 0) {
      for (const d of behind) await tableChange(d.id, o, () => this.syncKernel(d.path, o));
      raw = await this.rawDrives(o);
    }
    return raw.map(({ sysName: _s, hasTable: _h, area: _a, ...d }) => d);
  }

  /** Whether the drive's table lists a partition the kernel has not been told of. */
  private async kernelBehind(d: RawDrive): Promise<boolean> {
    if (d.partitions.length === 0) return false;
    const known = kernelPartitions(await readKernelPartitions(d.sysName));
    return d.partitions.some((p) => !known.has(p.number));
  }

  /**
   * Every local (PCIe) NVMe drive as drive selection sees it, whatever the filter: ids from sysfs
   * and /dev/disk/by-id, the partition table from sfdisk, and a whole-drive signature from blkid
   * when there is no table. What the agent reads once at start to decide which drives it manages.
   */
  async candidates(o?: OpOptions): Promise<DriveCandidate[]> {
    check(o);
    const out: DriveCandidate[] = [];
    for (const facts of await readDriveFacts()) {
      if (facts.transport !== 'pcie') {
        out.push(withPartitionTable(facts, { partitionTableType: undefined, partitions: [] }));
        continue;
      }
      const path = `/dev/${facts.name}`;
      const r = await this.c.x('sfdisk', ['--json', path], o, { okCodes: [0, 1] });
      const table = partitionTableFromSfdisk(r.code === 0 ? r.stdout : '');
      const signature = table.partitionTableType ? undefined : (await this.devices.probe(path, o)).type;
      out.push(withPartitionTable(facts, table, signature));
    }
    return out;
  }

  private async table(path: string, o?: OpOptions): Promise<SfdiskTable | undefined> {
    const r = await this.c.x('sfdisk', ['--json', path], o, { okCodes: [0, 1] });
    return parseSfdisk(r.code, r.stdout);
  }

  private async rawDrives(o?: OpOptions): Promise<RawDrive[]> {
    const out: RawDrive[] = [];
    // only PCIe drives are this node's own; fabrics namespaces (tcp, loop) are remote replicas
    for (const ns of await readNamespaces()) {
      const id = localDriveId(ns);
      if (!id || !this.filter(id)) continue;
      out.push(await this.readDrive(ns.block, id, o));
    }
    return out;
  }

  private async readDrive(sysName: string, id: string, o?: OpOptions): Promise<RawDrive> {
    const path = `/dev/${sysName}`;
    const sizeBytes = Number(await readText(`/sys/block/${sysName}/size`)) * 512;
    const lbs = Number(await readText(`/sys/block/${sysName}/queue/logical_block_size`));
    const layout = driveLayout(await this.table(path, o), sizeBytes, lbs);
    return { id, path, sysName, sizeBytes, logicalBlockSize: lbs, ...layout };
  }

  private async drive(id: string, o?: OpOptions): Promise<RawDrive> {
    const d = (await this.rawDrives(o)).find((x) => x.id === id);
    if (!d) throw new NotFoundError(`no drive with id ${JSON.stringify(id)}`);
    return d;
  }

  private async partition(driveId: string, owner: Owner, o?: OpOptions) {
    const d = await this.drive(driveId, o);
    const uuid = partitionUuid(owner);
    return { d, p: d.partitions.find((p) => p.partUuid === uuid) };
  }

  createPartitions(driveId: string, specs: PartitionSpec[], o?: OpOptions): Promise<Partition[]> {
    return tableChange(driveId, o, () => this.createLocked(driveId, specs, o));
  }

  private async createLocked(driveId: string, specs: PartitionSpec[], o?: OpOptions): Promise<Partition[]> {
    check(o);
    for (const s of specs) checkOwner(s);
    const d = await this.drive(driveId, o);
    if (d.hasTable && d.gptSlots === 0)
      throw new InvalidArgumentError(`drive ${driveId} has a non-GPT partition table`);
    if (!d.hasTable) await this.devices.refuseSignature(d.path, o);
    const taken: (Extent & { name: string })[] = [...d.partitions];
    const used = new Set(d.partitions.map((p) => p.number));
    const args: string[] = [];
    const wanted: { uuid: string; number: number }[] = [];
    for (const s of specs) {
      const uuid = partitionUuid(s);
      const have = d.partitions.find((p) => p.partUuid === uuid);
      if (have) {
        if (have.start !== s.extent.start || have.end !== s.extent.end) {
          throw new InvalidArgumentError(
            `drive ${driveId}: ${have.name} already exists at [${have.start}, ${have.end}), not at [${s.extent.start}, ${s.extent.end})`,
          );
        }
        wanted.push({ uuid, number: have.number });
        continue;
      }
      checkNewExtent(driveId, d.logicalBlockSize, d.area, taken, s.extent);
      let n = 1;
      while (used.has(n)) n++;
      if (n > 128) throw new InvalidArgumentError(`drive ${driveId}: all 128 GPT entries are used`);
      used.add(n);
      taken.push({ ...s.extent, name: partitionName(s) });
      const ss = d.logicalBlockSize;
      args.push(
        `--new=${n}:${s.extent.start / ss}:${s.extent.end / ss - 1}`,
        `--typecode=${n}:${PARTITION_TYPE}`,
        `--change-name=${n}:${partitionName(s)}`,
        `--partition-guid=${n}:${uuid}`,
      );
      wanted.push({ uuid, number: n });
    }
    if (args.length > 0) {
      // one sgdisk write per batch (each costs ~1 s); -a 1: the extents are already aligned
      await this.c.x('sgdisk', [...(d.hasTable ? [] : ['--clear']), '--set-alignment=1', ...args, d.path], o);
    }
    await this.syncKernel(d.path, o);
    const after = await this.drive(driveId, o);
    return wanted.map((w) => {
      const p = after.partitions.find((x) => x.partUuid === w.uuid);
      if (!p) throw new HostError(`sgdisk did not create partition ${w.number} on ${d.path}`);
      return p;
    });
  }

  /**
   * Makes the kernel's view of a disk's partitions match its table. sgdisk asks for a re-read
   * (BLKRRPART), which fails while any partition is open, and exits 0 anyway: partx adds,
   * resizes and deletes single partitions on a busy disk.
   */
  private async syncKernel(diskPath: string, o?: OpOptions): Promise<void> {
    const disk = basename(diskPath);
    const parts = (await this.table(diskPath, o))?.partitions ?? [];
    const want = new Map(parts.map((p) => [partitionNumber(p.node), p]));
    const have = kernelPartitions(await readKernelPartitions(disk));
    const ss = Number(await readText(`/sys/block/${disk}/queue/logical_block_size`)) / 512;
    for (const [n] of have)
      if (!want.has(n)) await this.c.x('partx', ['--delete', '--nr', `${n}`, diskPath], o);
    for (const [n, p] of want) {
      const h = have.get(n);
      if (!h) await this.c.x('partx', ['--add', '--nr', `${n}`, diskPath], o);
      else if (h.start !== p.start * ss || h.size !== p.size * ss) {
        await this.c.x('partx', ['--update', '--nr', `${n}`, diskPath], o);
      }
    }
    for (const p of parts) await waitFor(() => exists(p.node), `device node ${p.node}`);
  }

  deletePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void> {
    return tableChange(driveId, o, () => this.deleteLocked(driveId, owner, o));
  }

  private async deleteLocked(driveId: string, owner: Owner, o?: OpOptions): Promise<void> {
    check(o);
    checkOwner(owner);
    const { d, p } = await this.partition(driveId, owner, o);
    if (!p) return;
    await this.arrays.releaseLeftover(owner.volumeId, p.path, 'delete', o);
    await this.devices.refuseInUse(p.path, 'delete');
    await this.c.x('sgdisk', [`--delete=${p.number}`, d.path], o);
    await this.syncKernel(d.path, o);
  }

  async wipePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void> {
    check(o);
    checkOwner(owner);
    const { p } = await this.partition(driveId, owner, o);
    if (!p) throw new NotFoundError(`drive ${driveId} has no partition for ${partitionName(owner)}`);
    await this.arrays.releaseLeftover(owner.volumeId, p.path, 'wipe', o);
    await this.devices.refuseInUse(p.path, 'wipe');
    await this.c.x('wipefs', ['--all', '--quiet', p.path], o);
    // discard drops the old replica's data, so a reused extent never shows it; not every drive can
    await this.c.x('blkdiscard', ['--force', p.path], o).catch((e: unknown) => {
      if (!(e instanceof CommandError)) throw e;
    });
  }

  growPartition(driveId: string, owner: Owner, newEnd: number, o?: OpOptions): Promise<Partition> {
    return tableChange(driveId, o, () => this.growLocked(driveId, owner, newEnd, o));
  }

  private async growLocked(driveId: string, owner: Owner, newEnd: number, o?: OpOptions): Promise<Partition> {
    check(o);
    checkOwner(owner);
    const { d, p } = await this.partition(driveId, owner, o);
    if (!p) throw new NotFoundError(`drive ${driveId} has no partition for ${partitionName(owner)}`);
    if (newEnd < p.end)
      throw new InvalidArgumentError(`partition ${p.name} cannot shrink (${p.end} -> ${newEnd})`);
    if (newEnd > p.end) {
      const others = d.partitions.filter((x) => x.number !== p.number);
      checkNewExtent(driveId, d.logicalBlockSize, d.area, others, { start: p.end, end: newEnd });
      const ss = d.logicalBlockSize;
      const n = p.number;
      // same number, start, type, name and GUID: only the end moves (one table write)
      await this.c.x(
        'sgdisk',
        [
          '--set-alignment=1',
          `--delete=${n}`,
          `--new=${n}:${p.start / ss}:${newEnd / ss - 1}`,
          `--typecode=${n}:${PARTITION_TYPE}`,
          `--change-name=${n}:${p.name}`,
          `--partition-guid=${n}:${p.partUuid}`,
          d.path,
        ],
        o,
      );
    }
    await this.syncKernel(d.path, o);
    // md sees a local member through its fence layer, which keeps the old size until reloaded
    await this.arrays.followGrowth(owner.volumeId, p.path, o);
    // an exported namespace keeps its old size until the target re-reads it (then tells the host)
    for (const nqn of await this.devices.subsystemsOf(p.path)) {
      await writeFile(join(this.c.cfs, 'subsystems', nqn, 'namespaces', '1', 'revalidate_size'), '1');
    }
    const after = (await this.partition(driveId, owner, o)).p;
    if (!after || after.end !== newEnd) throw new HostError(`partition ${p.name} did not grow to ${newEnd}`);
    return after;
  }
}

/** The partitions the kernel has on a disk now: /sys/block/<disk>/<part>/{partition,start,size}. */
export async function readKernelPartitions(disk: string): Promise<KernelPartitionFiles[]> {
  const out: KernelPartitionFiles[] = [];
  for (const e of await readdir(`/sys/block/${disk}`)) {
    const partition = await readRaw(`/sys/block/${disk}/${e}/partition`);
    if (!partition?.trim()) continue;
    const start = await readFile(`/sys/block/${disk}/${e}/start`, 'utf8');
    const size = await readFile(`/sys/block/${disk}/${e}/size`, 'utf8');
    out.push({ partition, start, size });
  }
  return out;
}
