// A member whose node was down catches up from the bitmap once its node is back (agent/catch-up.ts),
// and remote members are write-mostly while the array has a local in-sync member
// (agent/read-preference.ts): three simulated nodes, their node services and agents' passes.
import { describe, expect, it } from 'vitest';
import { agentPass } from '../../agent/pass.ts';
import { KeyedLock } from '../../state/lock.ts';
import { cluster, GiB, stage, unstage, volume } from './sim-cluster.ts';

const blockStage = (volume_id: string) => ({
  ...stage(volume_id),
  volume_capability: { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } },
});

describe('catch-up and read preference on the attached node', () => {
  it('a member whose node was down is re-added from the bitmap when its node is back', async () => {
    const c = cluster();
    await c.store.create(volume('v1', ['n1', 'n2']));
    await c.withAgents(c.node('n1').svc.nodeStageVolume(blockStage('v1')));
    await c.node('n1').svc.nodeUnstageVolume(unstage('v1'));

    // n2 is down: the array runs degraded on n1, and the filesystem made now dirties the bitmap
    c.peers.setReady('n2', false);
    await c.withAgents(c.node('n1').svc.nodeStageVolume(stage('v1')), ['n2']);
    expect((await c.store.get('v1'))?.replicas.map((r) => r.state)).toEqual(['InSync', 'Faulty']);
    expect((await c.node('n1').host.getArray('v1'))?.degraded).toBe(true);

    // while n2 is down nothing is caught up
    const ctx = (name: 'n1' | 'n2') => ({
      nodeName: name,
      host: c.node(name).host,
      store: c.store,
      listen: c.node(name).listen,
      locks: new KeyedLock(),
      peers: c.peers,
    });
    expect((await agentPass(ctx('n1'))).catchUps).toEqual([]);

    // n2 is back: its agent exports the Faulty member, n1's agent connects and re-adds it
    c.peers.setReady('n2', true);
    await agentPass(ctx('n2'));
    const back = await agentPass(ctx('n1'));
    expect(back.failures).toEqual([]);
    expect(back.catchUps).toEqual([
      {
        volume: 'v1',
        replica: 'r1',
        node: 'n2',
        bytesToResync: 64 * 2 ** 20, // one bitmap chunk: the filesystem written while n2 was away
        volumeBytes: GiB,
        bitmapChunkBytes: 64 * 2 ** 20,
      },
    ]);
    const array = await c.node('n1').host.getArray('v1');
    expect(array?.degraded).toBe(false);
    expect(array?.members.map((m) => m.state)).toEqual(['in_sync', 'in_sync']);
    await agentPass(ctx('n1'));
    expect((await c.store.get('v1'))?.replicas.map((r) => r.state)).toEqual(['InSync', 'InSync']);
    // caught up: the next pass has nothing to do
    expect((await agentPass(ctx('n1'))).catchUps).toEqual([]);
  });

  it('a member written elsewhere after it left is refused and reported as needing a rebuild', async () => {
    const c = cluster();
    await c.store.create(volume('v2', ['n1', 'n2']));
    await c.withAgents(c.node('n1').svc.nodeStageVolume(blockStage('v2')));
    await c.node('n1').svc.nodeUnstageVolume(unstage('v2'));
    // n2's copy runs on its own (an array assembled from it alone on n2, changed there), as a
    // cut-off holder would: its event count gets ahead of n1's copy
    const n2 = c.node('n2').host;
    const p2 = (await n2.listDrives())[0]?.partitions[0]?.path as string;
    await n2.assembleArray({ volumeId: 'v2', devices: [p2] });
    await n2.setRaidDevices('v2', 3);
    await n2.setRaidDevices('v2', 2);
    await n2.stopArray('v2');
    c.peers.setReady('n2', false);
    await c.withAgents(c.node('n1').svc.nodeStageVolume(blockStage('v2')), ['n2']);
    c.peers.setReady('n2', true);
    const ctx = (name: 'n1' | 'n2') => ({
      nodeName: name,
      host: c.node(name).host,
      store: c.store,
      listen: c.node(name).listen,
      locks: new KeyedLock(),
      peers: c.peers,
    });
    await agentPass(ctx('n2'));
    const r = await agentPass(ctx('n1'));
    expect(r.catchUps).toEqual([]);
    expect(r.failures).toEqual([
      {
        step: 'catch-up',
        volume: 'v2',
        reason: expect.stringMatching(/r1 on n2 cannot catch up and needs a rebuild: .* is ahead/),
      },
    ]);
    expect((await c.node('n1').host.getArray('v2'))?.degraded).toBe(true);
  });

  it('remote members are write-mostly while a local member is in sync, and only then', async () => {
    const c = cluster();
    await c.store.create(volume('v3', ['n1', 'n2']));
    await c.withAgents(c.node('n1').svc.nodeStageVolume(blockStage('v3')));
    await c.node('n1').pass();
    const local = (await c.node('n1').host.listDrives())[0]?.partitions[0]?.path;
    const marks = async (n: 'n1' | 'n3') =>
      (await c.node(n).host.getArray('v3'))?.members.map((m) => [m.devicePath === local, m.writeMostly]);
    expect(await marks('n1')).toEqual([
      [true, false],
      [false, true],
    ]);
    // on a node with no copy of its own, every leg is remote: reads spread over them
    await c.node('n1').svc.nodeUnstageVolume(unstage('v3'));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(blockStage('v3')));
    await c.node('n3').pass();
    expect(await marks('n3')).toEqual([
      [false, false],
      [false, false],
    ]);
  });
});
