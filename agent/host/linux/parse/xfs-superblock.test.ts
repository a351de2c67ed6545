import { describe, expect, it } from 'vitest';
import { fixture } from './fixtures/load.ts';
import { parseXfsSuperblock, XFS_SUPERBLOCK_READ_BYTES } from './xfs-superblock.ts';

const sectors = fixture<{ complete: string; cutShort: string }>('xfs-superblock');
const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

describe('parseXfsSuperblock', () => {
  it('reads a finished mkfs.xfs as complete', () => {
    expect(parseXfsSuperblock(bytes(sectors.complete))).toEqual({ inProgress: false });
  });

  it('reads the superblock of an mkfs.xfs that did not finish as in progress', () => {
    expect(parseXfsSuperblock(bytes(sectors.cutShort))).toEqual({ inProgress: true });
  });

  it('needs only the bytes up to sb_inprogress', () => {
    const head = bytes(sectors.cutShort).subarray(0, XFS_SUPERBLOCK_READ_BYTES);
    expect(parseXfsSuperblock(head)).toEqual({ inProgress: true });
    expect(parseXfsSuperblock(head.subarray(0, XFS_SUPERBLOCK_READ_BYTES - 1))).toBeUndefined();
  });

  it('finds no XFS superblock in other bytes', () => {
    expect(parseXfsSuperblock(new Uint8Array(512))).toBeUndefined();
    const ext4ish = bytes(sectors.complete);
    ext4ish[0] = 0x53;
    expect(parseXfsSuperblock(ext4ish)).toBeUndefined();
  });
});
