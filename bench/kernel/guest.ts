// In the VM (`meshstor.suite=bench`): fio 4K random read and O_SYNC random write on one
// partition three ways: raw, MD RAID1 with a single member (internal bitmap, made by LinuxHost
// like a replicaCount=1 volume) and an LVM thin volume. Emulated hardware: only the ratios mean
// anything. Prints one `@@MS` line with the IOPS and the ratios to raw.
import { open } from 'node:fs/promises';
import { exec } from '../../agent/host/exec.ts';
import { MiB } from '../../placement/index.ts';
import { DRIVES, nodes } from '../../test/kernel/guest/env.ts';

const SIZE = 256 * MiB;
const RUNTIME = Number(process.env.MESHSTOR_FIO_SECONDS ?? 10);
const JOBS = {
  randread: ['--rw=randread', '--ioengine=libaio', '--iodepth=16', '--direct=1'],
  'randwrite-osync': ['--rw=randwrite', '--ioengine=psync', '--iodepth=1', '--direct=1', '--sync=1'],
} as const;

interface FioJson {
  jobs: { read: { iops: number }; write: { iops: number } }[];
}

/** IOPS of each job (all of JOBS, or the ones named) on the device. */
export async function fio(
  dev: string,
  only?: readonly (keyof typeof JOBS)[],
): Promise<Record<keyof typeof JOBS, number>> {
  const out = {} as Record<keyof typeof JOBS, number>;
  for (const [name, args] of Object.entries(JOBS) as [keyof typeof JOBS, readonly string[]][]) {
    if (only && !only.includes(name)) continue;
    const r = await exec(
      'fio',
      [
        `--name=${name}`,
        `--filename=${dev}`,
        '--bs=4k',
        '--size=200M',
        `--runtime=${RUNTIME}`,
        '--time_based',
        '--output-format=json',
        ...args,
      ],
      { timeoutMs: (RUNTIME + 60) * 1000 },
    );
    const j = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as FioJson;
    const job = j.jobs[0];
    if (!job) throw new Error('fio reported no job');
    out[name] = Math.round(name === 'randread' ? job.read.iops : job.write.iops);
  }
  return out;
}

/** Writes the first 200 MiB (what fio reads) once, so reads hit allocated data in every setup. */
export async function fill(dev: string): Promise<void> {
  const fh = await open(dev, 'r+');
  const zero = Buffer.alloc(MiB);
  for (let i = 0; i < 200; i++) await fh.write(zero, 0, MiB, i * MiB);
  await fh.sync();
  await fh.close();
}

export async function bench(): Promise<Record<string, unknown>> {
  const { a } = nodes();
  const owner = { volumeId: 'bench', replicaId: 'r1' };
  const d = (await a.listDrives()).find((x) => x.id === DRIVES.a);
  const f = d?.free[0];
  if (!f) throw new Error('no free space for the bench partition');
  const [p] = await a.createPartitions(DRIVES.a, [
    { ...owner, extent: { start: f.start, end: f.start + SIZE } },
  ]);
  if (!p) throw new Error('no bench partition');
  await fill(p.path);
  const raw = await fio(p.path);
  const arr = await a.createArray({ volumeId: 'bench', devices: [p.path] });
  await fill(arr.devicePath);
  const md = await fio(arr.devicePath);
  await a.stopArray('bench');
  await a.wipePartition(DRIVES.a, owner);
  const lvm = (...args: string[]) => exec('lvm', args, { timeoutMs: 120_000 });
  await lvm('pvcreate', '-ff', '-y', p.path);
  await lvm('vgcreate', 'vgbench', p.path);
  await lvm('lvcreate', '-q', '-L', '240M', '-T', 'vgbench/pool');
  await lvm('lvcreate', '-q', '-V', '220M', '-T', 'vgbench/pool', '-n', 'thin');
  await fill('/dev/vgbench/thin');
  const thin = await fio('/dev/vgbench/thin');
  await lvm('vgchange', '-an', 'vgbench');
  const ratio = (x: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(x).map(([k, v]) => [k, Number((v / (raw[k as keyof typeof raw] || 1)).toFixed(2))]),
    );
  return { iops: { raw, md, thin }, ratioToRaw: { md: ratio(md), thin: ratio(thin) }, runtimeSec: RUNTIME };
}
