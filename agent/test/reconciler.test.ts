import { describe, expect, it } from 'vitest';
import { MemoryVolumeStore } from '../../csi/memory-store.ts';
import type { VolumeRecord } from '../../csi/state.ts';
import { GiB, MiB } from '../../placement/units.ts';
import { SimulatedHost } from '../host/simulated.ts';
import { reconcileDeletions } from '../reconciler.ts';

const record = (id: string, phase: VolumeRecord['phase'], start: number): VolumeRecord => ({
  id,
  name: id,
  sizeBytes: GiB,
  replicaCount: 1,
  spread: { domain: 'zone', mode: 'none' },
  fsType: 'xfs',
  replicas: [
    { id: 'r0', node: 'n1', drive: 'SIM0', extent: { start, end: start + GiB + 2 * MiB }, state: 'InSync' },
  ],
  phase,
});

describe('reconcileDeletions', () => {
  it('wipes and deletes partitions of deleting volumes only; keeps live ones and never touches drift', async () => {
    const host = new SimulatedHost({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:rec-n1',
      drives: [{ id: 'SIM0', sizeBytes: 20 * GiB }],
    });
    const store = new MemoryVolumeStore();
    const recs = [
      record('keep', 'Active', MiB),
      record('gone', 'Active', 3 * GiB),
      record('busy', 'Active', 6 * GiB),
    ];
    for (const r of recs) {
      await store.create(r);
      const x = r.replicas[0] as VolumeRecord['replicas'][number];
      await host.createPartitions('SIM0', [{ volumeId: r.id, replicaId: 'r0', extent: x.extent }]);
    }
    // a partition whose volume has no record: drift
    await host.createPartitions('SIM0', [
      { volumeId: 'stranger', replicaId: 'r0', extent: { start: 9 * GiB, end: 10 * GiB } },
    ]);
    // "busy" is still an assembled, mounted array member
    const busyPart = (await host.listDrives())[0]?.partitions.find((p) => p.owner?.volumeId === 'busy');
    await host.createArray({ volumeId: 'busy', devices: [busyPart?.path as string] });
    await host.makeFilesystem((await host.getArray('busy'))?.devicePath as string);
    await host.mount((await host.getArray('busy'))?.devicePath as string, '/mnt/busy');
    for (const id of ['gone', 'busy']) {
      const r = (await store.get(id)) as VolumeRecord;
      r.phase = 'Deleting';
      await store.replace(r);
    }
    const res = await reconcileDeletions('n1', host, store);
    expect(res.wiped).toEqual(['n1/SIM0/gone/r0']);
    expect(res.waiting.map((w) => w.partition)).toEqual(['n1/SIM0/busy/r0']);
    const owners = (await host.listDrives())[0]?.partitions.map((p) => p.owner?.volumeId).sort();
    expect(owners).toEqual(['busy', 'keep', 'stranger']);
    // once unmounted, the next pass finishes the job
    await host.unmount('/mnt/busy');
    expect((await reconcileDeletions('n1', host, store)).wiped).toEqual(['n1/SIM0/busy/r0']);
  });
});
