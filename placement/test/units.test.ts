import { describe, expect, it } from 'vitest';
import { largestVolumeFor, replicaExtentBytes, usableRange } from '../geometry.ts';
import { formatBytes, GiB, MiB, parseBytes, TiB } from '../units.ts';

describe('parseBytes', () => {
  it('reads decimal and binary units', () => {
    expect(parseBytes('3.84TB')).toBe(3_840_000_000_000);
    expect(parseBytes('100GiB')).toBe(100 * GiB);
    expect(parseBytes('512Mi')).toBe(512 * MiB);
    expect(parseBytes('1 TiB')).toBe(TiB);
    expect(parseBytes(4096)).toBe(4096);
  });
  it('names the text it cannot read', () => {
    expect(() => parseBytes('12 bananas')).toThrow(/cannot read size "12 bananas"/);
    expect(() => parseBytes(-1)).toThrow(/non-negative/);
  });
  it('formats', () => {
    expect(formatBytes(1.5 * TiB)).toBe('1.50 TiB');
    expect(formatBytes(10 * GiB)).toBe('10.0 GiB');
  });
});

describe('GPT geometry', () => {
  it('keeps the first MiB and the backup table out, 1 MiB aligned', () => {
    const r = usableRange(100 * GiB, 512, 128);
    expect(r.start).toBe(MiB);
    expect(r.end).toBe(100 * GiB - MiB); // backup entries + header round the tail down a whole MiB
    expect(r.end % MiB).toBe(0);
  });
  it('accounts for 4K sectors', () => {
    const r = usableRange(100 * GiB + 3 * 4096, 4096, 128);
    expect(r.start).toBe(MiB);
    expect(r.end).toBeLessThanOrEqual(100 * GiB + 3 * 4096 - 5 * 4096);
  });
  it('a bigger entry array pushes the start past 1 MiB', () => {
    const r = usableRange(100 * GiB, 512, 16384); // 2 MiB of entries
    expect(r.start).toBe(3 * MiB);
  });
});

describe('replica sizing', () => {
  it('adds md headroom: 128 MiB on large volumes, less on small ones', () => {
    expect(replicaExtentBytes(500 * GiB)).toBe(500 * GiB + 129 * MiB);
    expect(replicaExtentBytes(1 * GiB)).toBe(GiB + 2 * MiB);
  });
  it('largestVolumeFor inverts replicaExtentBytes', () => {
    for (const gib of [1, 7, 100, 333, 2000]) {
      const ext = replicaExtentBytes(gib * GiB);
      expect(largestVolumeFor(ext)).toBe(gib * GiB);
      expect(replicaExtentBytes(largestVolumeFor(ext - MiB))).toBeLessThanOrEqual(ext - MiB);
    }
    expect(largestVolumeFor(MiB)).toBe(0);
  });
});
