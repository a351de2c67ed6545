import { describe, expect, it } from 'vitest';
import { arrayName } from '../../names.ts';
import { fixture, parsedRun, type ToolRun } from './fixtures/load.ts';
import { parseExamine, parseExamineEvents, parseMdDevname, parseMdIdentity } from './mdadm.ts';

describe('mdadm --export', () => {
  it('--detail of a running array: its name without the homehost and its UUID', () => {
    const id = parseMdIdentity(fixture<ToolRun>('mdadm-detail').stdout);
    // --homehost=any still stores a homehost part: `any:`
    expect(id?.fullName).toBe(`any:${arrayName('vol-cap')}`);
    expect(id?.name).toBe(arrayName('vol-cap'));
    expect(id?.uuid).toMatch(/^[0-9a-f]{8}(:[0-9a-f]{8}){3}$/);
  });

  it("--examine of a member names the same array as the array's --detail", () => {
    expect(parsedRun('mdadm-examine-member', parseExamine)).toEqual(
      parseMdIdentity(fixture<ToolRun>('mdadm-detail').stdout),
    );
  });

  it('--examine of a device without a superblock: none (exit 1)', () => {
    const r = fixture<ToolRun>('mdadm-examine-blank');
    expect(r.code).toBe(1);
    expect(parseExamine(r.code, r.stdout)).toBeUndefined();
  });

  it('a homehost prefix is not part of the name', () => {
    expect(parseMdIdentity('MD_UUID=a:b:c:d\nMD_NAME=node1:ms-v1\n')).toEqual({
      uuid: 'a:b:c:d',
      fullName: 'node1:ms-v1',
      name: 'ms-v1',
    });
  });

  it('the event count of a member that left is below the members that stayed', () => {
    const stale = parsedRun('mdadm-examine-member-stale', parseExamineEvents);
    const current = parsedRun('mdadm-examine-member-current', parseExamineEvents);
    expect(stale).toBe(20);
    expect(current).toBe(24);
    expect(parseExamineEvents(1, '')).toBeUndefined();
  });

  it('an array whose members mdadm could not read is named from its map (MD_DEVNAME), and only then', () => {
    expect(parseMdDevname('MD_LEVEL=raid1\nMD_DEVICES=2\nMD_DEVNAME=ms-vol-sf\n')).toEqual({
      uuid: '',
      fullName: undefined,
      name: 'ms-vol-sf',
    });
    expect(parseMdDevname('MD_UUID=a:b:c:d\nMD_DEVNAME=md/ms-v1\n')?.name).toBe('ms-v1');
    expect(parseMdDevname(fixture<ToolRun>('mdadm-detail').stdout)).toBeUndefined();
    expect(parseMdDevname('MD_LEVEL=raid1\n')).toBeUndefined();
  });
});
