import { describe, expect, it } from 'vitest';
import { MiB } from '../../../../placement/index.ts';
import { parsedRun } from './fixtures/load.ts';
import { parseExamineBitmap } from './mdadm-bitmap.ts';

describe('mdadm --examine-bitmap', () => {
  it('reads the chunk size and the chunks of a 320 MiB array (mdadm chose 64 MiB chunks)', () => {
    const b = parsedRun('mdadm-examine-bitmap-clean', parseExamineBitmap);
    expect(b?.chunkBytes).toBe(64 * MiB);
    expect(b?.chunks).toBe(5);
    // md clears bits a few daemon periods after the last write: right after the first resync
    // they are all still set
    expect(b?.dirtyChunks).toBe(5);
  });

  it('counts the chunks written while a member was away', () => {
    const b = parsedRun('mdadm-examine-bitmap-dirty', parseExamineBitmap);
    expect(b).toEqual({ chunkBytes: 64 * MiB, chunks: 5, dirtyChunks: 2 });
  });

  it('no bitmap in what a failed run printed', () => {
    expect(parseExamineBitmap(1, '')).toBeUndefined();
    expect(parseExamineBitmap(0, '        Filename : /dev/x\n')).toBeUndefined();
  });

  it('reads the other chunk units mdadm prints', () => {
    const out = (chunk: string) =>
      `       Chunksize : ${chunk}\n          Bitmap : 8 bits (chunks), 1 dirty (12.5%)\n`;
    expect(parseExamineBitmap(0, out('512 KB'))?.chunkBytes).toBe(512 * 1024);
    expect(parseExamineBitmap(0, out('1 GB'))?.chunkBytes).toBe(1024 * MiB);
  });
});
