// `sfdisk --json <disk>`: the partition table as the kernel tools read it from the disk. The
// numbers are in sectors of `sectorsize` bytes; MeshStor's Host speaks bytes.
import type { Extent } from '../../../../placement/index.ts';
import { freeExtents, usableArea } from '../../geometry.ts';
import { ownerFromName } from '../../names.ts';
import type { Partition } from '../../types.ts';

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
}

export interface SfdiskTable {
  /** 'gpt', 'dos', ... */
  label: string;
  firstlba?: number;
  lastlba?: number;
  sectorsize?: number;
  partitions?: SfdiskPartition[];
}

/**
 * The table from `sfdisk --json` run with exit codes 0 and 1 allowed: a disk without a table
 * makes sfdisk exit 1 with nothing on stdout (undefined here).
 */
export function parseSfdisk(code: number, stdout: string): SfdiskTable | undefined {
  if (code !== 0 || !stdout.trim()) return undefined;
  return (JSON.parse(stdout) as { partitiontable: SfdiskTable }).partitiontable;
}

/** The partition number at the end of a node name (/dev/nvme0n1p3 -> 3). */
export const partitionNumber = (node: string): number => Number(/(\d+)$/.exec(node)?.[1]);

export interface DriveLayout {
  /** The GPT's usable area in bytes (first to last usable LBA), or the default one without a GPT. */
  area: Extent;
  /** Sorted by start, in bytes. */
  partitions: Partition[];
  gptSlots: number;
  free: Extent[];
  hasTable: boolean;
}

/** A drive's layout in bytes from its table (undefined: no table) and the kernel's sizes. */
export function driveLayout(table: SfdiskTable | undefined, sizeBytes: number, lbs: number): DriveLayout {
  const gpt = table?.label === 'gpt';
  const ss = table?.sectorsize ?? lbs;
  const area =
    gpt && table?.firstlba !== undefined && table.lastlba !== undefined
      ? { start: table.firstlba * ss, end: (table.lastlba + 1) * ss }
      : usableArea(sizeBytes, lbs);
  const partitions: Partition[] = (table?.partitions ?? []).map((p) => {
    const name = p.name ?? '';
    return {
      number: partitionNumber(p.node),
      start: p.start * ss,
      end: (p.start + p.size) * ss,
      name,
      partUuid: (p.uuid ?? '').toLowerCase(),
      path: p.node,
      owner: ownerFromName(name),
    };
  });
  partitions.sort((a, b) => a.start - b.start);
  return {
    area,
    partitions,
    gptSlots: gpt ? 128 : 0,
    // a non-GPT table (MBR) is not ours to add to: nothing is free there
    free: table && !gpt ? [] : freeExtents(area, partitions),
    hasTable: table !== undefined,
  };
}
