import { describe, expect, it } from 'vitest';
import { memberData } from './mdadm-data-offset.ts';

// The lines around it as mdadm 4.2 prints a 1.2 member (the form of `mdadm --examine`'s text output).
const member = `/dev/nvme0n1p1:
          Magic : a92b4efc
        Version : 1.2
    Feature Map : 0x1
     Array UUID : 2773c0eb:15242409:37c9b6b9:c9b5883a
           Name : any:ms-vol-cap
   Raid Level : raid1
   Raid Devices : 2

 Avail Dev Size : 649216 sectors (317.00 MiB 332.40 MB)
     Array Size : 326656 KiB (319.00 MiB 334.50 MB)
  Used Dev Size : 653312 sectors (319.00 MiB 334.50 MB)
    Data Offset : 4096 sectors
   Super Offset : 8 sectors
`;

describe('memberData', () => {
  it('reads the data offset (512-byte sectors) and the array size (KiB)', () => {
    expect(memberData(member)).toEqual({ offsetBytes: 4096 * 512, arrayBytes: 326656 * 1024 });
  });
  it('is undefined for a device with no 1.x superblock', () => {
    expect(memberData('mdadm: No md superblock detected on /dev/nvme0n1p2.\n')).toBeUndefined();
  });
});
