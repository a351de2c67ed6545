import { describe, expect, it } from 'vitest';
import { errorTable, linearTable, parseGuardTable } from './dm.ts';

describe('fence layer tables (dmsetup table)', () => {
  it('reads a passing layer and a cut one, as dmsetup prints them', () => {
    expect(parseGuardTable('0 196608 linear 259:3 0\n')).toEqual({
      kind: 'linear',
      sectors: 196608,
      dev: '259:3',
      offset: 0,
    });
    expect(parseGuardTable('0 196608 error\n')).toEqual({ kind: 'error', sectors: 196608 });
  });

  it('reads back what it writes', () => {
    expect(parseGuardTable(linearTable(2048, '8:17'))).toEqual({
      kind: 'linear',
      sectors: 2048,
      dev: '8:17',
      offset: 0,
    });
    expect(parseGuardTable(errorTable(2048))).toEqual({ kind: 'error', sectors: 2048 });
  });

  it('takes anything else for a device it did not make', () => {
    for (const t of [
      '',
      '0 100 linear 259:3 0\n100 100 linear 259:4 0\n', // two segments
      '8 100 linear 259:3 0', // not from sector 0
      '0 100 striped 2 128 259:3 0 259:4 0',
      '0 100 linear /dev/nvme0n1p1 0', // a path, not major:minor
      '0 0 error',
      '0 100 error extra',
    ]) {
      expect(parseGuardTable(t), t).toBeUndefined();
    }
  });
});
