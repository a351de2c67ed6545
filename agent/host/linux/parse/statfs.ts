// statfs(2) of a mounted filesystem (Node's fs.statfs) as the Host's FsUsage.
import type { FsUsage } from '../../types.ts';

export interface StatFsNumbers {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

export function usageFrom(s: StatFsNumbers): FsUsage {
  return {
    sizeBytes: s.blocks * s.bsize,
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    freeBytes: s.bavail * s.bsize,
    inodes: s.files,
    inodesFree: s.ffree,
  };
}
