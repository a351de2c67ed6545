// The facts drive selection (agent/drive-selection.ts) decides on, read from a Linux machine:
// every NVMe namespace in /sys/block with its transport, serial, WWID and model, and the names
// /dev/disk/by-id gives it. Each source has a pure parser; the reader takes the file functions as a
// parameter so tests give fakes. Partition tables are joined in afterwards (withPartitionTable):
// they come from `sfdisk --json`, which only a Host runs.
import { readdir as fsReaddir, readFile as fsReadFile, readlink as fsReadlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type { CandidatePartition, DriveCandidate } from '../drive-selection.ts';
import { PARTITION_TYPE } from './names.ts';

/** A candidate before its partition table is known. */
export type DriveFacts = Omit<DriveCandidate, 'partitionTableType' | 'partitions' | 'signature'>;

export interface PartitionTable {
  partitionTableType: 'gpt' | 'dos' | undefined;
  partitions: CandidatePartition[];
}

/** The file functions the reader needs (node:fs/promises by default). */
export interface DriveFs {
  readdir(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
  /** Resolves undefined when the file does not exist or cannot be read. */
  readFile(path: string): Promise<string | undefined>;
}

export const nodeDriveFs: DriveFs = {
  readdir: (p) => fsReaddir(p),
  readlink: (p) => fsReadlink(p),
  readFile: (p) => fsReadFile(p, 'utf8').catch(() => undefined),
};

/** A sysfs attribute: one value, newline terminated, serial and model space padded. Empty is absent. */
export function sysfsValue(text: string | undefined): string | undefined {
  const v = text?.trim();
  return v ? v : undefined;
}

/** nvme<ctrl>n<ns>: a namespace's block device (not nvme0c0n1, a hidden path, nor nvme0n1p1). */
export const isNamespaceDevice = (name: string): boolean => /^nvme\d+n\d+$/.test(name);

/** by-id links (name -> link target, e.g. ../../nvme0n1) grouped by the kernel name they point at. */
export function parseByIdLinks(links: readonly { name: string; target: string }[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { name, target } of links) {
    const dev = basename(target);
    if (!isNamespaceDevice(dev)) continue; // partitions (-part1) and other kinds of disk
    const names = out.get(dev) ?? [];
    names.push(name);
    out.set(dev, names);
  }
  for (const names of out.values()) names.sort();
  return out;
}

export interface SysfsNamespace {
  name: string;
  transport: string | undefined;
  serial: string | undefined;
  wwid: string | undefined;
  model: string | undefined;
}

/** One namespace's facts; undefined when it has neither serial nor WWID (nothing stable to name it by). */
export function driveFacts(ns: SysfsNamespace, byId: ReadonlyMap<string, string[]>): DriveFacts | undefined {
  const serial = sysfsValue(ns.serial);
  const wwn = sysfsValue(ns.wwid);
  if (!serial && !wwn) return undefined;
  return {
    name: ns.name,
    serial: serial ?? '',
    wwn,
    model: sysfsValue(ns.model),
    byIdNames: byId.get(ns.name) ?? [],
    transport: sysfsValue(ns.transport) ?? '',
  };
}

interface SfdiskJson {
  partitiontable?: {
    label?: string;
    partitions?: { node: string; type?: string; uuid?: string; name?: string }[];
  };
}

/**
 * A drive's partition table from `sfdisk --json <dev>` output (empty output: no table). A
 * partition is MeshStor's when both its type and its name are what MeshStor writes; the Host
 * still checks each partition's GUID against the records before it changes anything.
 */
export function partitionTableFromSfdisk(stdout: string): PartitionTable {
  if (!stdout.trim()) return { partitionTableType: undefined, partitions: [] };
  const t = (JSON.parse(stdout) as SfdiskJson).partitiontable;
  const label = t?.label;
  if (label !== 'gpt' && label !== 'dos')
    throw new Error(`sfdisk reports a ${JSON.stringify(label)} partition table: only gpt and dos are known`);
  return {
    partitionTableType: label,
    partitions: (t?.partitions ?? []).map((p) => ({
      name: basename(p.node),
      guid: p.uuid?.toLowerCase(),
      owned: label === 'gpt' && p.type?.toLowerCase() === PARTITION_TYPE && (p.name ?? '').startsWith('ms/'),
    })),
  };
}

/** The seam where the partition table (and a whole-drive signature, blkid TYPE) joins the sysfs facts. */
export function withPartitionTable(
  facts: DriveFacts,
  table: PartitionTable,
  signature?: string,
): DriveCandidate {
  return { ...facts, ...table, signature };
}

/**
 * The transport of a namespace. Its `device` is the controller (which has `transport`) or, for a
 * multipath head, the NVMe subsystem, whose controllers (nvme0, nvme1 ...) are listed inside it.
 */
async function transportOf(fs: DriveFs, device: string): Promise<string | undefined> {
  const own = await fs.readFile(`${device}/transport`);
  if (own !== undefined) return own;
  const ctrls = (await fs.readdir(device).catch(() => [] as string[]))
    .filter((e) => /^nvme\d+$/.test(e))
    .sort();
  for (const c of ctrls) {
    const t = await fs.readFile(`${device}/${c}/transport`);
    if (t !== undefined) return t;
  }
  return undefined;
}

/** Every NVMe namespace of the machine, with its by-id names, sorted by kernel name. */
export async function readDriveFacts(fs: DriveFs = nodeDriveFs, root = ''): Promise<DriveFacts[]> {
  const byIdDir = `${root}/dev/disk/by-id`;
  const links: { name: string; target: string }[] = [];
  // No by-id directory (no udev in a minimal container): selectors by id then match nothing.
  for (const name of await fs.readdir(byIdDir).catch(() => [] as string[])) {
    const target = await fs.readlink(`${byIdDir}/${name}`).catch(() => undefined);
    if (target !== undefined) links.push({ name, target });
  }
  const byId = parseByIdLinks(links);
  const out: DriveFacts[] = [];
  for (const name of (await fs.readdir(`${root}/sys/block`)).filter(isNamespaceDevice).sort()) {
    const block = `${root}/sys/block/${name}`;
    const facts = driveFacts(
      {
        name,
        transport: await transportOf(fs, `${block}/device`),
        serial: await fs.readFile(`${block}/device/serial`),
        wwid: await fs.readFile(`${block}/wwid`),
        model: await fs.readFile(`${block}/device/model`),
      },
      byId,
    );
    if (facts) out.push(facts);
  }
  return out;
}
