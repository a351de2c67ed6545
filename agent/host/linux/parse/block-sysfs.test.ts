import { describe, expect, it } from 'vitest';
import { devOfRdev, type KernelPartitionFiles, kernelPartitions } from './block-sysfs.ts';
import { fixture, parsedRun } from './fixtures/load.ts';
import { parseSfdisk, partitionNumber } from './sfdisk.ts';

describe('block device sysfs', () => {
  it("the kernel's partitions match the table sfdisk read (512-byte sectors)", () => {
    const have = kernelPartitions(fixture<KernelPartitionFiles[]>('kernel-partitions'));
    const table = parsedRun('sfdisk-gpt-meshstor', parseSfdisk);
    const want = new Map(
      (table?.partitions ?? []).map((p) => [partitionNumber(p.node), { start: p.start, size: p.size }]),
    );
    expect(want.size).toBe(3);
    expect(have).toEqual(want);
  });

  it("a device node's rdev decodes to the major:minor sysfs gives", () => {
    const devs = fixture<{ path: string; rdev: string; sysfsDev: string }[]>('device-numbers');
    expect(devs).toHaveLength(3);
    for (const d of devs) expect(devOfRdev(BigInt(d.rdev)), d.path).toBe(d.sysfsDev.trim());
  });

  it('decodes minors above 255 and majors above 4095 (glibc dev_t layout)', () => {
    // major 259, minor 300: bits 0-7 minor low, 8-19 major low, 20-31 minor high
    const rdev = (259n << 8n) | (300n & 0xffn) | ((300n >> 8n) << 20n);
    expect(devOfRdev(rdev)).toBe('259:300');
    expect(devOfRdev((0x1000n << 32n) | (1n << 8n))).toBe(`${0x1001}:0`);
  });
});
