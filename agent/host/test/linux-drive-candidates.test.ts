import { describe, expect, it } from 'vitest';
import { selectDrives } from '../../drive-selection.ts';
import {
  type DriveFs,
  driveFacts,
  isNamespaceDevice,
  parseByIdLinks,
  partitionTableFromSfdisk,
  readDriveFacts,
  sysfsValue,
  withPartitionTable,
} from '../linux-drive-candidates.ts';
import { PARTITION_TYPE } from '../names.ts';

/** A fake file tree: files hold text, links hold a target; a directory is any prefix of a path. */
function fakeFs(files: Record<string, string>, links: Record<string, string> = {}): DriveFs {
  const paths = [...Object.keys(files), ...Object.keys(links)];
  return {
    async readdir(dir) {
      const kids = new Set<string>();
      for (const p of paths)
        if (p.startsWith(`${dir}/`)) kids.add(p.slice(dir.length + 1).split('/')[0] as string);
      if (kids.size === 0) throw Object.assign(new Error(`ENOENT: ${dir}`), { code: 'ENOENT' });
      return [...kids];
    },
    async readlink(p) {
      const t = links[p];
      if (t === undefined) throw Object.assign(new Error(`EINVAL: ${p}`), { code: 'EINVAL' });
      return t;
    },
    async readFile(p) {
      return files[p];
    },
  };
}

describe('sysfs and by-id parsers', () => {
  it('sysfs values lose their newline and padding; empty is absent', () => {
    expect(sysfsValue('S4EWNX0R123456      \n')).toBe('S4EWNX0R123456');
    expect(sysfsValue('Samsung SSD 980 PRO 1TB                 \n')).toBe('Samsung SSD 980 PRO 1TB');
    expect(sysfsValue('  \n')).toBeUndefined();
    expect(sysfsValue(undefined)).toBeUndefined();
  });

  it('namespace devices only: not hidden multipath paths, not partitions', () => {
    expect(
      ['nvme0n1', 'nvme10n2', 'nvme0c0n1', 'nvme0n1p1', 'nvme0', 'sda'].filter(isNamespaceDevice),
    ).toEqual(['nvme0n1', 'nvme10n2']);
  });

  it('groups by-id links by namespace, leaving out partitions and other disks', () => {
    const m = parseByIdLinks([
      { name: 'nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R1', target: '../../nvme0n1' },
      { name: 'nvme-eui.002538b111111111', target: '../../nvme0n1' },
      { name: 'nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R1_1', target: '../../nvme0n1' },
      { name: 'nvme-eui.002538b111111111-part1', target: '../../nvme0n1p1' },
      { name: 'ata-QEMU_HARDDISK_QM00001', target: '../../sda' },
      { name: 'nvme-nvme.1b36-6d73-2d31-00000001', target: '../../nvme1n1' },
    ]);
    expect([...m.entries()]).toEqual([
      [
        'nvme0n1',
        [
          'nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R1',
          'nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R1_1',
          'nvme-eui.002538b111111111',
        ],
      ],
      ['nvme1n1', ['nvme-nvme.1b36-6d73-2d31-00000001']],
    ]);
  });

  it('a namespace with neither serial nor WWID has no stable id and is not a candidate', () => {
    const ns = { name: 'nvme0n1', transport: 'pcie\n', serial: '   \n', wwid: undefined, model: 'X\n' };
    expect(driveFacts(ns, new Map())).toBeUndefined();
    expect(driveFacts({ ...ns, wwid: 'eui.01\n' }, new Map())).toEqual({
      name: 'nvme0n1',
      serial: '',
      wwn: 'eui.01',
      model: 'X',
      byIdNames: [],
      transport: 'pcie',
    });
  });
});

describe('partitionTableFromSfdisk', () => {
  it('no output: no table', () => {
    expect(partitionTableFromSfdisk('')).toEqual({ partitionTableType: undefined, partitions: [] });
  });

  it('GPT: MeshStor partitions by type and name, the rest foreign', () => {
    const out = JSON.stringify({
      partitiontable: {
        label: 'gpt',
        id: 'C1A8F0D2-0000-4000-8000-000000000000',
        device: '/dev/nvme0n1',
        unit: 'sectors',
        firstlba: 2048,
        lastlba: 2000409230,
        sectorsize: 512,
        partitions: [
          {
            node: '/dev/nvme0n1p1',
            start: 2048,
            size: 1048576,
            type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
            uuid: 'AA-1',
            name: 'EFI',
          },
          {
            node: '/dev/nvme0n1p2',
            start: 1050624,
            size: 2097152,
            type: PARTITION_TYPE.toUpperCase(),
            uuid: 'BB-2',
            name: 'ms/pvc-1/r0',
          },
          {
            node: '/dev/nvme0n1p3',
            start: 3147776,
            size: 2097152,
            type: PARTITION_TYPE.toUpperCase(),
            uuid: 'CC-3',
            name: 'md0',
          },
        ],
      },
    });
    expect(partitionTableFromSfdisk(out)).toEqual({
      partitionTableType: 'gpt',
      partitions: [
        { name: 'nvme0n1p1', guid: 'aa-1', owned: false },
        { name: 'nvme0n1p2', guid: 'bb-2', owned: true },
        { name: 'nvme0n1p3', guid: 'cc-3', owned: false }, // Linux RAID, but somebody else's array
      ],
    });
  });

  it('MBR: nothing on it is MeshStor', () => {
    const out =
      '{"partitiontable":{"label":"dos","id":"0x1","device":"/dev/nvme1n1","unit":"sectors","sectorsize":512,"partitions":[{"node":"/dev/nvme1n1p1","start":2048,"size":4096,"type":"83"}]}}';
    expect(partitionTableFromSfdisk(out)).toEqual({
      partitionTableType: 'dos',
      partitions: [{ name: 'nvme1n1p1', guid: undefined, owned: false }],
    });
  });

  it('refuses a table kind it does not know', () => {
    expect(() => partitionTableFromSfdisk('{"partitiontable":{"label":"sun"}}')).toThrow(
      /"sun" partition table/,
    );
  });
});

describe('readDriveFacts', () => {
  const fs = fakeFs(
    {
      // a local PCIe drive
      '/sys/block/nvme0n1/device/transport': 'pcie\n',
      '/sys/block/nvme0n1/device/serial': 'S5GXNF0R1           \n',
      '/sys/block/nvme0n1/device/model': 'Samsung SSD 980 PRO 1TB                 \n',
      '/sys/block/nvme0n1/wwid': 'eui.002538b111111111\n',
      // a fabrics namespace behind a multipath head: the transport is on its controller
      '/sys/block/nvme1n1/device/serial': 'a1b2c3d4e5f60708\n',
      '/sys/block/nvme1n1/device/model': 'Linux\n',
      '/sys/block/nvme1n1/device/nvme1/transport': 'tcp\n',
      '/sys/block/nvme1n1/wwid': 'uuid.1d2e3f40-0000-4000-8000-000000000001\n',
      '/sys/block/nvme1c1n1/device/transport': 'tcp\n',
      '/sys/block/nvme0n1p1/partition': '1\n',
      '/sys/block/sda/device/model': 'QEMU HARDDISK\n',
    },
    {
      '/dev/disk/by-id/nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R1': '../../nvme0n1',
      '/dev/disk/by-id/nvme-eui.002538b111111111': '../../nvme0n1',
      '/dev/disk/by-id/nvme-eui.002538b111111111-part1': '../../nvme0n1p1',
    },
  );

  it('reads every namespace with its by-id names and transport', async () => {
    expect(await readDriveFacts(fs)).toEqual([
      {
        name: 'nvme0n1',
        serial: 'S5GXNF0R1',
        wwn: 'eui.002538b111111111',
        model: 'Samsung SSD 980 PRO 1TB',
        byIdNames: ['nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R1', 'nvme-eui.002538b111111111'],
        transport: 'pcie',
      },
      {
        name: 'nvme1n1',
        serial: 'a1b2c3d4e5f60708',
        wwn: 'uuid.1d2e3f40-0000-4000-8000-000000000001',
        model: 'Linux',
        byIdNames: [],
        transport: 'tcp',
      },
    ]);
  });

  it('joined with partition tables, selection takes the local drive and never the fabrics one', async () => {
    const facts = await readDriveFacts(fs);
    const candidates = facts.map((f) => withPartitionTable(f, partitionTableFromSfdisk('')));
    const r = selectDrives(candidates);
    expect(r.managed.map((m) => m.id)).toEqual(['S5GXNF0R1']);
    expect(r.skipped).toEqual([]);
  });

  it('reads under another root (a container mounting the host at /host)', async () => {
    const rooted = fakeFs({
      '/host/sys/block/nvme2n1/device/transport': 'pcie\n',
      '/host/sys/block/nvme2n1/device/serial': 'X1\n',
    });
    expect((await readDriveFacts(rooted, '/host')).map((f) => [f.name, f.serial, f.byIdNames])).toEqual([
      ['nvme2n1', 'X1', []],
    ]);
  });
});
