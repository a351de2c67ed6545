import { describe, expect, it } from 'vitest';
import { MiB } from '../../../../placement/index.ts';
import { partitionUuid } from '../../names.ts';
import { fixture, parsedRun, type ToolRun } from './fixtures/load.ts';
import { driveLayout, parseSfdisk, partitionNumber } from './sfdisk.ts';

const GiB = 1024 * MiB;
const table = (name: string) => parsedRun(name, parseSfdisk);

describe('sfdisk --json', () => {
  it('a blank drive has no table (exit 1) and its whole usable area is free', () => {
    expect(fixture<ToolRun>('sfdisk-no-table').code).toBe(1);
    const t = table('sfdisk-no-table');
    expect(t).toBeUndefined();
    const l = driveLayout(t, GiB, 512);
    expect(l).toMatchObject({ hasTable: false, gptSlots: 0, partitions: [] });
    // a GPT will go there: its usable area, 1 MiB aligned at both ends
    expect(l.free).toEqual([{ start: MiB, end: GiB - MiB }]);
  });

  it("an installer's GPT: its partitions in bytes, no owner, free space after them", () => {
    const t = table('sfdisk-os-drive');
    expect(t?.label).toBe('gpt');
    const l = driveLayout(t, 2 * GiB, 512);
    expect(l.gptSlots).toBe(128);
    expect(l.partitions.map((p) => [p.number, p.name, p.start, p.end, p.owner])).toEqual([
      [1, 'EFI', 2048 * 512, 206848 * 512, undefined],
      [2, 'root', 206848 * 512, 2097152 * 512, undefined],
    ]);
    // the backup GPT at the end is not usable; everything between the root and it is free
    expect(l.free).toEqual([{ start: GiB, end: l.area.end - (l.area.end % MiB) }]);
    expect(l.area.end).toBe(((t?.lastlba ?? 0) + 1) * 512);
  });

  it("MeshStor's partitions: owners from the names, GUIDs lowercase as partitionUuid makes them", () => {
    const l = driveLayout(table('sfdisk-gpt-meshstor'), GiB, 512);
    const owners = [
      { volumeId: 'vol-cap', replicaId: 'r1' },
      { volumeId: 'vol-other', replicaId: 'r3' },
      { volumeId: 'vol-cap', replicaId: 'r4' },
    ];
    expect(l.partitions.map((p) => p.owner)).toEqual(owners);
    expect(l.partitions.map((p) => p.partUuid)).toEqual(owners.map(partitionUuid));
    expect(l.partitions.map((p) => [p.start, p.end])).toEqual([
      [MiB, 321 * MiB],
      [321 * MiB, 385 * MiB],
      [385 * MiB, 705 * MiB],
    ]);
    expect(l.partitions.map((p) => partitionNumber(p.path))).toEqual([1, 2, 3]);
    expect(l.free).toEqual([{ start: 705 * MiB, end: l.area.end - (l.area.end % MiB) }]);
  });

  it('an MBR table is not ours to add to: nothing free on it', () => {
    const t = table('sfdisk-dos');
    expect(t?.label).toBe('dos');
    const l = driveLayout(t, GiB, 512);
    expect(l).toMatchObject({ hasTable: true, gptSlots: 0, free: [] });
    expect(l.partitions).toHaveLength(1);
  });
});
