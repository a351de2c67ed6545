// Scenario n: a snapshot by member detach and a restore from it on the real kernel (ADR 0010), by
// the product code: the nodes of scenario s (three LinuxHost "nodes" in the guest with their node
// services and agent passes). A volume on n1 and n2 is staged on n1 and written (first files); its
// snapshot's member, on n2, is added to the running array over nvme-tcp, resynced, detached under
// fsfreeze and thawed by n1's agent pass; more files are written to the source (second files); a
// volume restored from the snapshot, on n1 and n3, is staged on n3, which copies the snapshot's
// data from n2 over nvme-tcp onto the new array. The restored volume holds exactly the first files
// (and what a writer running through the capture wrote before the freeze), not the second; the
// source both; `xfs_repair -n` finds the restore clean.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { access } from 'node:fs/promises';
import { waitIdle } from '../../../agent/host/test/contract.ts';
import { MiB } from '../../../placement/index.ts';
import { updateRecord, type VolumeRecord } from '../../../state/store.ts';
import type { Scenario } from './scenarios.ts';
import { verify, writeRandom } from './scenarios.ts';
import { cluster, record, since, stageReq, states, unstageReq } from './stage.ts';

const SRC = 'vol-snap-src';
const SNAP = 'snap-kernel';
const RESTORED = 'vol-snap-restored';
const EXTENT = 320 * MiB;

/** The snapshot's record: one member on n2's drive, clear of the source's (at 1 MiB). */
const snapshotRecord = (sizeBytes: number): VolumeRecord => ({
  id: SNAP,
  name: SNAP,
  sizeBytes,
  replicaCount: 1,
  spread: { domain: 'zone', mode: 'none' },
  fsType: 'xfs',
  phase: 'Active',
  replicas: [
    {
      id: 'r1',
      node: 'n2',
      drive: 'MS-N2-DATA',
      extent: { start: 400 * MiB, end: 400 * MiB + EXTENT },
      state: 'Pending',
    },
  ],
  snapshot: { source: SRC, createdAt: new Date().toISOString(), readyToUse: false },
});

export const n_snapshotRestore: Scenario = {
  name: 'n-snapshot-restore',
  async run() {
    const c = cluster();
    const { n1, n3 } = c.nodes;
    const out: Record<string, unknown> = {};
    const src = record(SRC);
    await c.store.create(src);
    await c.withAgents(n1.svc.nodeStageVolume(stageReq('n1', SRC, '/mnt/snap-src')));
    await waitIdle(n1.host, SRC, 300_000);
    const first = new Map<string, string>();
    first.set('blob', await writeRandom('/mnt/snap-src/blob', 32));
    for (let i = 0; i < 8; i++) first.set(`f${i}`, await writeRandom(`/mnt/snap-src/f${i}`, 1));

    // the snapshot: its record, then the capture on the source (what CreateSnapshot writes)
    let t0 = Date.now();
    await c.store.create(snapshotRecord(src.sizeBytes));
    await updateRecord(c.store, SRC, (r) => {
      r.capture = { snapshot: SNAP, step: 'adding' };
      return true;
    });
    const ready = async () => {
      for (;;) {
        if ((await c.store.get(SNAP))?.snapshot?.readyToUse) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    // a writer runs on the source through the whole capture: the freeze holds it, the detached
    // member must still hold a filesystem that needs no repair (checked on the restore below)
    const freezes: boolean[] = [];
    const freeze = n1.host.freezeFilesystem.bind(n1.host);
    n1.host.freezeFilesystem = async (device, o) => {
      const frozen = await freeze(device, o);
      freezes.push(frozen);
      return frozen;
    };
    let writing = true;
    let during = 0;
    const writer = (async () => {
      // bounded: the volume holds 304 MiB, and the capture may take a minute under TCG
      while (writing && during < 40) {
        await writeRandom(`/mnt/snap-src/during${during++}`, 1);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    await c.withAgents(ready());
    out.snapshotMs = since(t0);
    writing = false;
    await writer;
    out.writtenDuringCapture = during;
    assert.deepEqual(freezes, [true], 'the mounted filesystem was frozen once, for the detach');
    const array = await n1.host.getArray(SRC);
    out.sourceAfterDetach = states(array);
    assert.equal(array?.raidDevices, 2, 'raid-devices back to 2');
    assert.deepEqual(
      array?.members.map((m) => m.state),
      ['in_sync', 'in_sync'],
      'the source keeps both its members',
    );
    assert.equal((await c.store.get(SRC))?.capture, undefined, 'capture cleared');

    // written after the snapshot: in the source only
    const second = new Map<string, string>();
    for (let i = 0; i < 4; i++) second.set(`after${i}`, await writeRandom(`/mnt/snap-src/after${i}`, 2));

    // the restore: a new volume on n1 and n3 seeded from the snapshot (on n2) at its first stage on n3
    const restored = record(RESTORED, 400 * MiB);
    restored.replicas = restored.replicas.map((r, i) =>
      i === 1 ? { ...r, node: 'n3', drive: 'MS-N3-DATA', extent: { start: MiB, end: MiB + EXTENT } } : r,
    );
    restored.seed = { snapshot: SNAP, done: false };
    await c.store.create(restored);
    t0 = Date.now();
    await c.withAgents(n3.svc.nodeStageVolume(stageReq('n3', RESTORED, '/mnt/snap-restored')));
    out.restoreStageMs = since(t0);
    assert.equal((await c.store.get(RESTORED))?.seed?.done, true, 'seed recorded done');
    out.restoredFiles = await verify('/mnt/snap-restored', first);
    for (const name of second.keys())
      await assert.rejects(access(`/mnt/snap-restored/${name}`), `${name} was written after the snapshot`);
    out.sourceFiles = await verify('/mnt/snap-src', new Map([...first, ...second]));
    // the restored filesystem, taken under a running writer, is clean: xfs_repair finds nothing
    const dev = (await n3.host.getArray(RESTORED))?.devicePath as string;
    await n3.host.unmount('/mnt/snap-restored');
    const repair = spawnSync('xfs_repair', ['-n', dev], { encoding: 'utf8' });
    assert.equal(repair.status, 0, `xfs_repair -n ${dev}: ${repair.stdout}${repair.stderr}`);
    out.xfsRepairClean = true;
    await n3.svc.nodeUnstageVolume(unstageReq('n3', RESTORED, '/mnt/snap-restored'));
    await n1.svc.nodeUnstageVolume(unstageReq('n1', SRC, '/mnt/snap-src'));
    return out;
  },
};
