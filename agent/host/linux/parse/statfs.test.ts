import { describe, expect, it } from 'vitest';
import { fixture } from './fixtures/load.ts';
import { type StatFsNumbers, usageFrom } from './statfs.ts';

describe('statfs', () => {
  it('a fresh XFS on the 320 MiB array: its size, a little used, the rest free, in bytes', () => {
    const s = fixture<StatFsNumbers>('statfs');
    const u = usageFrom(s);
    // the array is 320 MiB less MD's superblock and bitmap; XFS keeps its log and metadata
    expect(u.sizeBytes).toBeGreaterThan(250e6);
    expect(u.sizeBytes).toBeLessThan(320 * 2 ** 20);
    expect(u.usedBytes).toBeGreaterThan(0);
    expect(u.usedBytes).toBeLessThan(u.sizeBytes / 10);
    expect(u.freeBytes).toBeLessThanOrEqual(u.sizeBytes - u.usedBytes);
    expect(u.inodesFree).toBeLessThan(u.inodes);
  });
});
