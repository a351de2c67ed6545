// `blkid --probe --output export <device>` (exit codes 0 and 2 allowed): the signature on a device,
// read from the device itself (--probe: not blkid's cache). Exit 2 means nothing was found.
import { parseExportLines } from './export-format.ts';

export interface Signature {
  /** A filesystem or RAID superblock (TYPE: xfs, linux_raid_member, ...). */
  type: string | undefined;
  /** A partition table (PTTYPE: gpt, dos). */
  ptType: string | undefined;
}

export function parseBlkidProbe(code: number, stdout: string): Signature {
  if (code !== 0) return { type: undefined, ptType: undefined };
  const e = parseExportLines(stdout);
  return { type: e.TYPE, ptType: e.PTTYPE };
}
