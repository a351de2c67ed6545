// The first sector of an XFS filesystem: the on-disk superblock (struct xfs_dsb in the kernel's
// xfs_format.h). Only what MeshStor needs is read: the magic "XFSB" at byte 0 and sb_inprogress at
// byte 126. mkfs.xfs writes its superblock with sb_inprogress set and clears it last, and the
// kernel refuses to mount a filesystem that still has it set ("Offline file system operation in
// progress!"), so a set flag on a volume means an mkfs that was cut short (killed with the call
// that ran it, or by a crash) and a filesystem nothing was ever written through.

/** Bytes of the superblock that are read: up to and including sb_inprogress. */
export const XFS_SUPERBLOCK_READ_BYTES = 128;

const MAGIC = [0x58, 0x46, 0x53, 0x42]; // "XFSB"
const INPROGRESS_OFFSET = 126;

export interface XfsSuperblock {
  /** mkfs.xfs has not finished: the kernel will not mount it. */
  inProgress: boolean;
}

/** The superblock in the first bytes of a device, or undefined when they hold no XFS superblock. */
export function parseXfsSuperblock(head: Uint8Array): XfsSuperblock | undefined {
  if (head.length < XFS_SUPERBLOCK_READ_BYTES) return undefined;
  if (MAGIC.some((b, i) => head[i] !== b)) return undefined;
  return { inProgress: head[INPROGRESS_OFFSET] !== 0 };
}
