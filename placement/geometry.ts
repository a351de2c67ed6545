// Where partitions may live on a GPT drive, and the space a replica needs for its data.

import type { Extent } from './model.ts';
import { ALIGN, alignDown, alignUp, MiB } from './units.ts';

/** One GPT partition entry is 128 bytes. */
const GPT_ENTRY_BYTES = 128;

/**
 * The byte range partitions may use: after the protective MBR, primary header and entry array,
 * before the backup entry array and header at the drive's end, rounded inward to 1 MiB.
 */
export function usableRange(sizeBytes: number, logicalBlockSize: number, gptSlots: number): Extent {
  const entryBlocks = Math.ceil((gptSlots * GPT_ENTRY_BYTES) / logicalBlockSize);
  const head = (2 + entryBlocks) * logicalBlockSize; // MBR + header + entries
  const tail = (1 + entryBlocks) * logicalBlockSize; // entries + backup header
  const start = alignUp(Math.max(head, ALIGN));
  const end = alignDown(sizeBytes - tail);
  return { start, end: Math.max(start, end) };
}

/**
 * Bytes a RAID1 member partition must have so the array offers `volumeBytes` to the user.
 * mdadm's 1.2 superblock sits at 4 KiB and data starts after a headroom that is 128 MiB on large
 * devices and halves while it exceeds a thousandth of the device (mdadm super1.c); the internal
 * bitmap lives in that headroom. We reserve the same headroom plus 1 MiB, so the partition is
 * never short however mdadm rounds.
 */
export function replicaExtentBytes(volumeBytes: number): number {
  let headroom = 128 * MiB;
  while (headroom > MiB && headroom * 1024 > volumeBytes) headroom /= 2;
  return alignUp(volumeBytes) + headroom + MiB;
}

/** The largest volume whose replica fits in `extentBytes` (inverse of replicaExtentBytes). */
export function largestVolumeFor(extentBytes: number): number {
  if (extentBytes < replicaExtentBytes(MiB)) return 0;
  // replicaExtentBytes is monotone: search over whole MiB.
  let lo = 1;
  let hi = Math.floor(extentBytes / MiB);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (replicaExtentBytes(mid * MiB) <= extentBytes) lo = mid;
    else hi = mid - 1;
  }
  return lo * MiB;
}
