// The smallest device each filesystem MeshStor makes can be created on. XFS: mkfs.xfs refuses a
// data section under 300 MiB ("Filesystem must be larger than 300MB", xfsprogs 5.19 and later;
// measured with xfsprogs 6.1 on a file: 299 MiB refused, 300 MiB made). The Hosts refuse below it
// before running mkfs, and CreateVolume rounds a mount volume up to it (csi/controller.ts).
import { MiB } from '../../placement/units.ts';

export const MIN_FILESYSTEM_BYTES = { xfs: 300 * MiB } as const;
