// Small builders for tests: a node with drives, an OS drive with a used head.
import type { DriveInfo, NodeInfo, PartitionInfo } from '../model.ts';
import { GiB, MiB } from '../units.ts';

export function drive(id: string, sizeGiB: number, opts: Partial<DriveInfo> = {}): DriveInfo {
  return { id, sizeBytes: sizeGiB * GiB, logicalBlockSize: 512, gptSlots: 128, partitions: [], ...opts };
}

/** An OS drive: EFI + root partitions at the front, the rest free. */
export function osDrive(id: string, sizeGiB: number, usedGiB: number): DriveInfo {
  const parts: PartitionInfo[] = [
    { start: MiB, end: 513 * MiB, label: 'EFI' },
    { start: 513 * MiB, end: 513 * MiB + usedGiB * GiB, label: 'root' },
  ];
  return drive(id, sizeGiB, { partitions: parts });
}

export function node(
  name: string,
  zone: string,
  drives: DriveInfo[],
  opts: Partial<NodeInfo> = {},
): NodeInfo {
  return { name, labels: { zone }, schedulable: true, agentHealthy: true, drives, ...opts };
}

/** n nodes spread round-robin over the zones, each with the given drive sizes (GiB). */
export function cluster(n: number, zones: string[], driveGiB: number[]): NodeInfo[] {
  return Array.from({ length: n }, (_, i) =>
    node(
      `node-${i}`,
      zones[i % zones.length] as string,
      driveGiB.map((s, j) => drive(`d${j}`, s)),
    ),
  );
}
