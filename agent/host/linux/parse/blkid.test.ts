import { describe, expect, it } from 'vitest';
import { parseBlkidProbe } from './blkid.ts';
import { fixture, parsedRun, type ToolRun } from './fixtures/load.ts';

const probe = (name: string) => parsedRun(name, parseBlkidProbe);

describe('blkid --probe --output export', () => {
  it('finds nothing on a blank disk or partition (exit 2)', () => {
    expect(fixture<ToolRun>('blkid-blank-disk').code).toBe(2);
    expect(probe('blkid-blank-disk')).toEqual({ type: undefined, ptType: undefined });
    expect(probe('blkid-blank-partition')).toEqual({ type: undefined, ptType: undefined });
  });

  it('names a partition table as PTTYPE', () => {
    expect(probe('blkid-gpt-disk')).toEqual({ type: undefined, ptType: 'gpt' });
    expect(probe('blkid-dos-disk')).toEqual({ type: undefined, ptType: 'dos' });
  });

  it('names a RAID member and a filesystem as TYPE', () => {
    expect(probe('blkid-raid-member').type).toBe('linux_raid_member');
    expect(probe('blkid-xfs').type).toBe('xfs');
  });
});
