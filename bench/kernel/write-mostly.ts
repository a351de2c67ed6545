// In the VM (`meshstor.suite=bench-write-mostly`, issue 12 §6): 4K random read IOPS of a RAID1 of a
// local partition and a remote one over nvme-tcp (the state of a volume whose pod moved before its
// relocation finished), with the remote member as it is and then marked write-mostly, so md reads
// from the local leg. Emulated drives and an in-guest loopback fabric under TCG: only the ratio
// means anything. Prints one `@@MS` line with both IOPS and the ratio.
import assert from 'node:assert/strict';
import { waitIdle } from '../../agent/host/test/contract.ts';
import { MiB } from '../../placement/index.ts';
import { DRIVES, LISTEN_B, nodes, reset } from '../../test/kernel/guest/env.ts';
import { fill, fio } from './guest.ts';

const SIZE = 256 * MiB;
const VOL = 'bench-wm';

export async function benchWriteMostly(): Promise<Record<string, unknown>> {
  await reset();
  const { a, b } = nodes();
  const local = { volumeId: VOL, replicaId: 'r1' };
  const remote = { volumeId: VOL, replicaId: 'r2' };
  const [pa] = await a.createPartitions(DRIVES.a, [{ ...local, extent: { start: MiB, end: MiB + SIZE } }]);
  const [pb] = await b.createPartitions(DRIVES.b, [{ ...remote, extent: { start: MiB, end: MiB + SIZE } }]);
  assert.ok(pa && pb);
  const ex = await b.exportReplica({ ...remote, devicePath: pb.path, listen: LISTEN_B });
  await b.grantHost(ex.nqn, { hostNqn: a.hostNqn });
  const dev = await a.connect({ subsystemNqn: ex.nqn, target: LISTEN_B, ctrlLossTmoSec: 5 });
  const arr = await a.createArray({ volumeId: VOL, devices: [pa.path, dev] });
  await waitIdle(a, VOL, 600_000);
  await fill(arr.devicePath);
  const balanced = (await fio(arr.devicePath, ['randread'])).randread;
  const marked = await a.setWriteMostly(VOL, dev, true);
  assert.equal(marked.members.find((m) => m.devicePath === dev)?.writeMostly, true);
  const localReads = (await fio(arr.devicePath, ['randread'])).randread;
  const raw = (await fio(pa.path, ['randread'])).randread;
  await a.stopArray(VOL);
  const r = (x: number) => Number((x / Math.max(1, balanced)).toFixed(2));
  return {
    iops: { balanced, writeMostly: localReads, localPartition: raw },
    ratioToBalanced: { writeMostly: r(localReads), localPartition: r(raw) },
  };
}
