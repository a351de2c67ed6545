// Block devices in sysfs (/sys/block/<disk>/..., /sys/class/block/<name>/dev) and device numbers.
// The readers keep the files as they are (untrimmed).

/** A partition as the kernel has it now: /sys/block/<disk>/<part>/{partition,start,size}. */
export interface KernelPartitionFiles {
  partition: string;
  /** 512-byte sectors. */
  start: string;
  size: string;
}

/** The kernel's partitions by number, start and size in 512-byte sectors. */
export function kernelPartitions(
  files: KernelPartitionFiles[],
): Map<number, { start: number; size: number }> {
  return new Map(
    files.map((f) => [
      Number(f.partition.trim()),
      { start: Number(f.start.trim()), size: Number(f.size.trim()) },
    ]),
  );
}

/**
 * "major:minor" from a stat() rdev, decoded as glibc's gnu_dev_major/minor do: the high parts are
 * masked to 32 bits (the unsigned int masks of glibc), so major bits never leak into the minor.
 */
export function devOfRdev(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return `${major}:${minor}`;
}
