import { describe, expect, it } from 'vitest';
import type { Extent } from '../../placement/model.ts';
import { GiB, MiB } from '../../placement/units.ts';
import { MemoryVolumeStore } from '../../state/memory-store.ts';
import type { VolumeRecord } from '../../state/store.ts';
import { SimulatedHost } from '../host/simulated.ts';
import { nodeStatus } from '../publisher.ts';
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
    const res = await reconcileDeletions('n1', host, await store.list());
    expect(res.wiped).toEqual(['n1/SIM0/gone/r0']);
    expect(res.waiting.map((w) => w.partition)).toEqual(['n1/SIM0/busy/r0']);
    const owners = (await host.listDrives())[0]?.partitions.map((p) => p.owner?.volumeId).sort();
    expect(owners).toEqual(['busy', 'keep', 'stranger']);
    // once unmounted, the next pass finishes the job
    await host.unmount('/mnt/busy');
    expect((await reconcileDeletions('n1', host, await store.list())).wiped).toEqual(['n1/SIM0/busy/r0']);
  });

  it('a volume id too long for the GPT name (a provisioner pvc-<uuid>) is still known by its GUID', async () => {
    const id = 'pvc-9768324c-5b3a-401f-9360-b4148a67d8e5';
    const host = new SimulatedHost({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:rec-n2',
      drives: [{ id: 'SIM0', sizeBytes: 20 * GiB }],
    });
    const store = new MemoryVolumeStore();
    const r = record(id, 'Active', MiB);
    await store.create(r);
    await host.createPartitions('SIM0', [
      { volumeId: id, replicaId: 'r0', extent: r.replicas[0]?.extent as Extent },
    ]);
    // The name was cut: the Host alone cannot say whose it is ...
    expect((await host.listDrives())[0]?.partitions[0]?.owner).toBeUndefined();
    // ... the records can, so the node reports it as the volume's and deletion wipes it.
    const status = await nodeStatus(
      { nodeName: 'n1', address: '127.0.0.1', port: 4420 },
      host,
      await store.list(),
    );
    expect(status.drives?.[0]?.partitions?.[0]?.owner).toEqual({ volume: id, replica: 'r0' });
    const rec = (await store.get(id)) as VolumeRecord;
    rec.phase = 'Deleting';
    await store.replace(rec);
    expect((await reconcileDeletions('n1', host, await store.list())).wiped).toEqual([`n1/SIM0/${id}/r0`]);
    expect((await host.listDrives())[0]?.partitions).toEqual([]);
  });
});
