import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DriveCandidate,
  DriveSelectorError,
  driveId,
  parseDriveSelector,
  parseDriveSelectors,
  selectDrives,
  selectorMatches,
} from '../drive-selection.ts';

// nvme<i>n1: WWN eui.00<i>
const ctrl = (name: string) => /^nvme(\d+)/.exec(name)?.[1] ?? '';
const drive = (name: string, over: Partial<DriveCandidate> = {}): DriveCandidate => ({
  name,
  serial: `S-${name}`,
  wwn: `eui.00${ctrl(name)}`,
  model: 'Samsung SSD 980 PRO 1TB',
  byIdNames: [`nvme-Samsung_SSD_980_PRO_1TB_S-${name}`, `nvme-eui.00${ctrl(name)}`],
  transport: 'pcie',
  partitions: [],
  ...over,
});
const osDrive = drive('nvme0n1', {
  serial: 'OS123',
  partitionTableType: 'gpt',
  partitions: [
    { name: 'nvme0n1p1', guid: 'aaaa', owned: false },
    { name: 'nvme0n1p2', guid: 'bbbb', owned: false },
  ],
});
const sel = (...t: string[]) => parseDriveSelectors(t);

describe('parseDriveSelector', () => {
  it('parses the four kinds and strips the by-id directory', () => {
    expect(parseDriveSelector('id:nvme-Samsung*')).toEqual({
      kind: 'id',
      value: 'nvme-Samsung*',
      text: 'id:nvme-Samsung*',
    });
    expect(parseDriveSelector('id:/dev/disk/by-id/nvme-eui.0011').value).toBe('nvme-eui.0011');
    expect(parseDriveSelector('serial:S4EWNX0R123').kind).toBe('serial');
    expect(parseDriveSelector('wwn:eui.0025388b71b2c5e5').kind).toBe('wwn');
    expect(parseDriveSelector('model:*980 PRO*').value).toBe('*980 PRO*');
  });

  it.each([
    ['nvme0n1', /missing "<kind>:"/],
    ['path:/dev/nvme0n1', /unknown kind "path"/],
    ['serial:', /the serial is empty/],
    ['id:/dev/disk/by-id/', /the id is empty/],
    ['serial: S1', /leading or trailing spaces/],
    ['serial:S*', /matched exactly: no glob/],
    ['wwn:eui.[01]', /matched exactly: no glob/],
    ['id:../nvme0n1', /no '\/'/],
    ['id:*', /matches every drive/],
    ['model:a\nb', /control characters/],
  ])('refuses %j', (text, why) => {
    expect(() => parseDriveSelector(text)).toThrow(DriveSelectorError);
    expect(() => parseDriveSelector(text)).toThrow(why);
  });

  it('reports every bad selector of a list at once', () => {
    expect(() => parseDriveSelectors(['serial:A', 'bogus', 'model:'])).toThrow(/"bogus".*; .*"model:"/);
  });

  it('round-trips any well-formed selector through its text', () => {
    const value = fc.stringMatching(/^[A-Za-z0-9._-][A-Za-z0-9 ._-]{0,20}[A-Za-z0-9._-]$/);
    fc.assert(
      fc.property(fc.constantFrom('serial', 'wwn', 'model', 'id'), value, (kind, v) => {
        const s = parseDriveSelector(`${kind}:${v}`);
        expect(parseDriveSelector(s.text)).toEqual(s);
        expect(s.value).toBe(v);
      }),
    );
  });
});

describe('selectorMatches', () => {
  const d = drive('nvme1n1', { serial: 'S1   ', wwn: 'EUI.00AB', model: 'INTEL SSDPE2KX010T8  ' });
  it.each([
    ['id:nvme-Samsung_SSD_980_PRO_1TB_S-nvme1n1', true],
    ['id:nvme-Samsung_*', true],
    ['id:nvme-samsung_*', false], // by-id names are file names: case matters
    ['id:nvme-eui.00?', true],
    ['serial:S1', true],
    ['serial:S', false],
    ['wwn:eui.00ab', true],
    ['wwn:eui.00a', false],
    ['model:intel*', true],
    ['model:*SSDPE2KX010T8', true],
    ['model:Samsung*', false],
  ])('%s -> %s', (text, want) => {
    expect(selectorMatches(parseDriveSelector(text), d)).toBe(want);
  });
  it('a glob character in a by-id name is literal where it is not * or ?', () => {
    const odd = drive('nvme2n1', { byIdNames: ['nvme-a.b+c'] });
    expect(selectorMatches(parseDriveSelector('id:nvme-a.b+c'), odd)).toBe(true);
    expect(selectorMatches(parseDriveSelector('id:nvme-aXb+c'), odd)).toBe(false);
  });
});

describe('selectDrives', () => {
  it('default: takes empty PCIe drives, skips the OS drive saying how to opt in, ignores fabrics', () => {
    const r = selectDrives([
      osDrive,
      drive('nvme1n1'),
      drive('nvme2n1', { partitionTableType: 'gpt' }),
      drive('nvme3n1', { transport: 'tcp', serial: 'remote' }),
      drive('nvme4n1', { transport: 'loop', serial: 'loop' }),
    ]);
    expect(r.managed.map((m) => [m.name, m.use, m.reason])).toEqual([
      ['nvme1n1', 'whole', 'default: an NVMe drive; no partition table'],
      ['nvme2n1', 'whole', 'default: an NVMe drive; an empty GPT'],
    ]);
    expect(r.skipped).toEqual([
      {
        id: 'OS123',
        name: 'nvme0n1',
        reason:
          'has partitions MeshStor did not create (nvme0n1p1, nvme0n1p2); to use its free space, name it in --os-drive-tail',
      },
    ]);
    expect(r.unmatched).toEqual([]);
  });

  it('a drive with only MeshStor partitions is already ours', () => {
    const ours = drive('nvme1n1', {
      partitionTableType: 'gpt',
      partitions: [{ name: 'ms/pvc-1/r0', guid: 'cccc', owned: true }],
    });
    const r = selectDrives([ours]);
    expect(r.managed).toEqual([
      {
        id: 'S-nvme1n1',
        name: 'nvme1n1',
        use: 'whole',
        keptPartitions: [],
        reason: 'default: an NVMe drive; only MeshStor partitions',
      },
    ]);
  });

  it('--os-drive-tail takes the free space of the OS drive and keeps its partitions', () => {
    const mixed = {
      ...osDrive,
      partitions: [...osDrive.partitions, { name: 'ms/v1/r0', guid: 'dddd', owned: true }],
    };
    const r = selectDrives([mixed, drive('nvme1n1')], { osDriveTail: sel('serial:OS123') });
    expect(r.managed[0]).toEqual({
      id: 'OS123',
      name: 'nvme0n1',
      use: 'free-space',
      keptPartitions: ['nvme0n1p1', 'nvme0n1p2'],
      reason: 'selected by serial:OS123: only its free space is used; nvme0n1p1, nvme0n1p2 stay as they are',
    });
    expect(r.managed[1]?.name).toBe('nvme1n1');
    expect(r.skipped).toEqual([]);
  });

  it('--drive takes only the drives it names; --os-drive-tail adds the OS drive', () => {
    const r = selectDrives([osDrive, drive('nvme1n1'), drive('nvme2n1')], {
      drives: sel('id:nvme-eui.002', 'serial:nope'),
      osDriveTail: sel('model:samsung*'),
    });
    expect(r.managed.map((m) => m.name)).toEqual(['nvme0n1', 'nvme1n1', 'nvme2n1']);
    const r2 = selectDrives([osDrive, drive('nvme1n1'), drive('nvme2n1')], {
      drives: sel('id:nvme-eui.002', 'serial:nope'),
    });
    expect(r2.managed.map((m) => [m.name, m.reason])).toEqual([
      ['nvme2n1', 'selected by id:nvme-eui.002; no partition table'],
    ]);
    expect(r2.skipped.map((s) => [s.name, s.reason])).toEqual([
      ['nvme0n1', 'matches no --drive selector'],
      ['nvme1n1', 'matches no --drive selector'],
    ]);
    expect(r2.unmatched).toEqual(['serial:nope']);
  });

  it('never adds to an MBR disk, never takes a whole-drive signature, even when selected', () => {
    const r = selectDrives(
      [
        drive('nvme1n1', { partitionTableType: 'dos', partitions: [{ name: 'nvme1n1p1', owned: false }] }),
        drive('nvme2n1', { partitionTableType: 'dos' }),
        drive('nvme3n1', { signature: 'LVM2_member' }),
      ],
      { osDriveTail: sel('model:*') },
    );
    expect(r.managed).toEqual([]);
    expect(r.skipped.map((s) => s.reason)).toEqual([
      'has an MBR (dos) partition table with nvme1n1p1; MeshStor adds partitions to GPT only',
      'has an empty MBR (dos) partition table; MeshStor uses GPT: clear it (wipefs -a) to let MeshStor take the drive',
      'holds a LVM2_member signature on the whole drive (no partition table); MeshStor never overwrites it',
    ]);
  });

  it('two namespaces of one controller share a serial: the first is used, the other reported', () => {
    const r = selectDrives([drive('nvme1n2', { serial: 'X' }), drive('nvme1n1', { serial: 'X' })]);
    expect(r.managed.map((m) => m.name)).toEqual(['nvme1n1']);
    expect(r.skipped).toEqual([
      {
        id: 'X',
        name: 'nvme1n2',
        reason: 'same id X as nvme1n1 (another namespace of one controller); only nvme1n1 is used',
      },
    ]);
  });

  it('a long list of partitions is cut in the reason, never in keptPartitions', () => {
    const parts = Array.from({ length: 12 }, (_, i) => ({ name: `nvme0n1p${i + 1}`, owned: false }));
    const r = selectDrives([{ ...osDrive, partitions: parts }], { osDriveTail: sel('serial:OS123') });
    expect(r.managed[0]?.keptPartitions).toHaveLength(12);
    expect(r.managed[0]?.reason).toMatch(/nvme0n1p8 and 4 more stay as they are$/);
  });

  it('a drive without serial is known by its WWN', () => {
    expect(driveId({ name: 'nvme1n1', serial: '  ', wwn: 'eui.01' })).toBe('eui.01');
  });

  it('a non-fabrics transport that is not PCIe is reported, not taken', () => {
    const r = selectDrives([drive('nvme1n1', { transport: '' })], { drives: sel('serial:S-nvme1n1') });
    expect(r.skipped[0]?.reason).toBe('transport "" is not a local PCIe NVMe drive');
  });
});

// ---------------------------------------------------------------------------- properties --

const arbPartition = fc.record({
  name: fc.stringMatching(/^p[0-9]{1,2}$/),
  owned: fc.boolean(),
});
const arbCandidate = (i: number) =>
  fc.record({
    name: fc.constant(`nvme${i}n1`),
    serial: fc.constantFrom(`S${i}`, `S${i}`, `S${i}`, 'SHARED'),
    wwn: fc.option(fc.constant(`eui.${i}`), { nil: undefined }),
    model: fc.constantFrom('Samsung 980', 'INTEL P4510', undefined),
    byIdNames: fc.constant([`nvme-X_S${i}`]),
    transport: fc.constantFrom('pcie', 'pcie', 'pcie', 'tcp', 'loop', 'rdma'),
    partitionTableType: fc.constantFrom('gpt', 'dos', undefined),
    partitions: fc.array(arbPartition, { maxLength: 3 }),
    signature: fc.constantFrom(undefined, undefined, 'xfs'),
  }) as fc.Arbitrary<DriveCandidate>;
const arbCandidates = fc
  .integer({ min: 0, max: 6 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbCandidate(i))));
const arbSelectorText = fc.oneof(
  fc.integer({ min: 0, max: 7 }).map((i) => `serial:S${i}`),
  fc.integer({ min: 0, max: 7 }).map((i) => `wwn:EUI.${i}`),
  fc.integer({ min: 0, max: 7 }).map((i) => `id:nvme-X_S${i}`),
  fc.constantFrom('model:samsung*', 'model:*P4510', 'id:nvme-X_*'),
);
const arbRules = fc.record({
  drives: fc.array(arbSelectorText, { maxLength: 3 }).map((t) => parseDriveSelectors(t)),
  osDriveTail: fc.array(arbSelectorText, { maxLength: 2 }).map((t) => parseDriveSelectors(t)),
});

describe('selectDrives properties', () => {
  it('every local drive is decided exactly once; fabrics namespaces never appear', () => {
    fc.assert(
      fc.property(arbCandidates, arbRules, (cs, rules) => {
        const r = selectDrives(cs, rules);
        const decided = [...r.managed.map((m) => m.name), ...r.skipped.map((s) => s.name)].sort();
        const local = cs
          .filter((c) => !['tcp', 'rdma', 'fc', 'loop'].includes(c.transport))
          .map((c) => c.name);
        expect(decided).toEqual(local.sort());
        for (const s of r.skipped) expect(s.reason.length).toBeGreaterThan(0);
      }),
    );
  });

  it('never takes a drive with partitions it did not create unless opted in, and then keeps them all', () => {
    fc.assert(
      fc.property(arbCandidates, arbRules, (cs, rules) => {
        const r = selectDrives(cs, rules);
        for (const m of r.managed) {
          const c = cs.find((x) => x.name === m.name) as DriveCandidate;
          const foreign = c.partitions.filter((p) => !p.owned).map((p) => p.name);
          expect(c.transport).toBe('pcie');
          expect(c.partitionTableType).not.toBe('dos');
          if (c.partitionTableType === undefined) expect(c.signature).toBeUndefined();
          expect(m.keptPartitions).toEqual(foreign);
          expect(m.use).toBe(foreign.length > 0 ? 'free-space' : 'whole');
          if (foreign.length > 0) expect(rules.osDriveTail.some((s) => selectorMatches(s, c))).toBe(true);
          if (rules.drives.length > 0)
            expect([...rules.drives, ...rules.osDriveTail].some((s) => selectorMatches(s, c))).toBe(true);
        }
        // ids of managed drives are unique: LinuxHost finds a drive by it
        expect(new Set(r.managed.map((m) => m.id)).size).toBe(r.managed.length);
      }),
    );
  });

  it('does not depend on the order of the candidates', () => {
    fc.assert(
      fc.property(
        arbCandidates.chain((cs) =>
          fc.tuple(fc.constant(cs), fc.shuffledSubarray(cs, { minLength: cs.length })),
        ),
        arbRules,
        ([cs, shuffled], rules) => {
          expect(selectDrives(shuffled, rules)).toEqual(selectDrives(cs, rules));
        },
      ),
    );
  });
});
