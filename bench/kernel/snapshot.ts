// In the VM (`meshstor.suite=bench-snapshot`, `npm run bench:kernel -- snapshot`): the cost model of
// ADR 0010. fio 4K random O_SYNC writes on a MeshStor volume (MD RAID1, one member, as LinuxHost
// makes it) before and after a snapshot by member detach (the Host calls the agent's capture makes:
// add, raid-devices 2, resync, remove, raid-devices 1), against an LVM thin volume on the same
// partition before and after `lvcreate -s`: thin pays copy-on-write on the first write to each
// chunk after the snapshot, MeshStor paid at snapshot time. Also the time the snapshot of a 1 GiB
// volume took. Emulated hardware under TCG: only the ratios mean anything.
import { exec } from '../../agent/host/exec.ts';
import { waitIdle } from '../../agent/host/test/contract.ts';
import { GiB, MiB } from '../../placement/index.ts';
import { DRIVES, nodes } from '../../test/kernel/guest/env.ts';
import { fill, fio } from './guest.ts';

const SIZE = GiB + 16 * MiB;

export async function benchSnapshot(): Promise<Record<string, unknown>> {
  const { a, b } = nodes();
  // the volume's member on A's drive, the snapshot's on B's (one kernel: both are local devices)
  const part = async (host: typeof a, drive: string, replicaId: string) => {
    const f = (await host.listDrives()).find((x) => x.id === drive)?.free[0];
    if (!f || f.end - f.start < SIZE) throw new Error(`no room for ${SIZE} bytes on ${drive}`);
    const [p] = await host.createPartitions(drive, [
      { volumeId: 'bench-snap', replicaId, extent: { start: f.start, end: f.start + SIZE } },
    ]);
    if (!p) throw new Error('no bench partition');
    return p.path;
  };
  const own = await part(a, DRIVES.a, 'r1');
  const snapMember = await part(b, DRIVES.b, 's1');
  const arr = await a.createArray({ volumeId: 'bench-snap', devices: [own] });
  await fill(arr.devicePath);
  const mdBefore = (await fio(arr.devicePath, ['randwrite-osync']))['randwrite-osync'];
  const t0 = Date.now();
  await a.addMember('bench-snap', snapMember);
  await a.setRaidDevices('bench-snap', 2);
  await waitIdle(a, 'bench-snap', 30 * 60_000);
  await a.removeMember('bench-snap', snapMember);
  await a.setRaidDevices('bench-snap', 1);
  const snapshotMs = Date.now() - t0;
  const mdAfter = (await fio(arr.devicePath, ['randwrite-osync']))['randwrite-osync'];
  await a.stopArray('bench-snap');
  await a.wipePartition(DRIVES.a, { volumeId: 'bench-snap', replicaId: 'r1' });

  const lvm = (...args: string[]) => exec('lvm', args, { timeoutMs: 120_000 });
  await lvm('pvcreate', '-ff', '-y', own);
  await lvm('vgcreate', 'vgsnap', own);
  await lvm('lvcreate', '-q', '-L', '900M', '-T', 'vgsnap/pool');
  await lvm('lvcreate', '-q', '-V', '220M', '-T', 'vgsnap/pool', '-n', 'thin');
  await fill('/dev/vgsnap/thin');
  const thinBefore = (await fio('/dev/vgsnap/thin', ['randwrite-osync']))['randwrite-osync'];
  // a thin snapshot of a thin LV (no size: it shares the pool). `lvcreate -s vg/thin` made lvm
  // look for the dm-snapshot target, which the guest lacks; `--type thin` names the thin one.
  let thinAfter = 0;
  let thinError: string | undefined;
  try {
    await lvm('lvcreate', '-q', '--type', 'thin', 'vgsnap/thin', '-n', 'thinsnap');
    thinAfter = (await fio('/dev/vgsnap/thin', ['randwrite-osync']))['randwrite-osync'];
  } catch (e) {
    thinError = (e as Error).message.slice(0, 500);
  }
  await lvm('vgchange', '-an', 'vgsnap');
  const r = (after: number, before: number) => Number((after / (before || 1)).toFixed(2));
  return {
    iops: { mdBefore, mdAfter, thinBefore, thinAfter },
    afterToBefore: { meshstor: r(mdAfter, mdBefore), thin: thinError ? null : r(thinAfter, thinBefore) },
    snapshotOf1GiBMs: snapshotMs,
    ...(thinError ? { thinError } : {}),
  };
}
