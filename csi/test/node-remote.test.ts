// Volumes whose members live on other nodes: three simulated nodes on one fabric, each with its
// node service and its agent's passes (csi/test/sim-cluster.ts), sharing one in-memory store.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { reconcileExports } from '../../agent/exports.ts';
import { subsystemNqn } from '../../agent/host/names.ts';
import { MiB } from '../../placement/units.ts';
import { KeyedLock } from '../../state/lock.ts';
import type { VolumeRecord } from '../../state/store.ts';
import { type CsiError, codeFor } from '../errors.ts';
import { codeOf } from './requests.ts';
import { cluster, stage, unstage, volume } from './sim-cluster.ts';

describe('NodeStage with members on other nodes', () => {
  it('a node without a replica stages over NVMe-oF; the owners export to it only', async () => {
    const c = cluster();
    await c.store.create(volume('v1', ['n1', 'n2']));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage('v1')));

    const array = await c.node('n3').host.getArray('v1');
    expect(array?.members.map((m) => m.state)).toEqual(['in_sync', 'in_sync']);
    const rec = await c.store.get('v1');
    expect(rec?.attachment).toEqual({ node: 'n3', hostNqn: c.node('n3').host.hostNqn });
    expect(rec?.arrayUuid).toBe(array?.uuid);
    expect(rec?.replicas.map((r) => r.state)).toEqual(['InSync', 'InSync']);
    for (const n of ['n1', 'n2'] as const) {
      const [e] = await c.node(n).host.listExports();
      expect(e?.allowedHosts).toEqual([c.node('n3').host.hostNqn]);
      expect(e?.listen).toEqual([c.node(n).listen]);
    }
    // Staged again (kubelet retries): nothing changes.
    await c.node('n3').svc.nodeStageVolume(stage('v1'));
    expect((await c.node('n3').host.getArray('v1'))?.uuid).toBe(array?.uuid);
  });

  it('another node waits while the holder is alive, and after unstage gets the same array', async () => {
    const c = cluster();
    await c.store.create(volume('v2', ['n1', 'n2']));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage('v2')));
    const uuid = (await c.store.get('v2'))?.arrayUuid;

    expect(await codeOf(c.node('n1').svc.nodeStageVolume(stage('v2')))).toBe(status.UNAVAILABLE);
    expect(await c.node('n1').host.getArray('v2')).toBeUndefined();

    await c.node('n3').svc.nodeUnstageVolume(unstage('v2'));
    expect((await c.store.get('v2'))?.attachment).toBeUndefined();
    expect(await c.node('n3').host.findDeviceByNqn(subsystemNqn({ volumeId: 'v2', replicaId: 'r0' }))).toBe(
      undefined,
    );
    await c.node('n1').pass();
    await c.node('n2').pass();
    expect(await c.node('n1').host.listExports()).toEqual([]);
    expect(await c.node('n2').host.listExports()).toEqual([]);

    // n1 holds r0 itself and connects to r1 on n2: the array is assembled, never created again.
    await c.withAgents(c.node('n1').svc.nodeStageVolume(stage('v2')));
    const array = await c.node('n1').host.getArray('v2');
    expect(array?.uuid).toBe(uuid);
    expect(array?.members).toHaveLength(2);
    expect(array?.degraded).toBe(false);
    expect((await c.node('n2').host.listExports())[0]?.allowedHosts).toEqual([c.node('n1').host.hostNqn]);
  });

  it('a dead holder is fenced: its connections are cut before the new node assembles', async () => {
    const c = cluster();
    await c.store.create(volume('v3', ['n1', 'n2']));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage('v3')));

    // n3's agent stops reporting; its array is still running there.
    c.peers.setReady('n3', false);
    await c.withAgents(c.node('n1').svc.nodeStageVolume(stage('v3')), ['n3']);

    const old = await c.node('n3').host.getArray('v3');
    expect(old?.members.map((m) => m.state)).toEqual(['faulty', 'faulty']);
    const now = await c.node('n1').host.getArray('v3');
    expect(now?.members.map((m) => m.state)).toEqual(['in_sync', 'in_sync']);
    expect((await c.node('n2').host.listExports())[0]?.allowedHosts).toEqual([c.node('n1').host.hostNqn]);
    expect((await c.store.get('v3'))?.attachment?.node).toBe('n1');
  });

  it('with a member node down, an existing array runs degraded from an in-sync copy; a new one waits', async () => {
    const c = cluster();
    await c.store.create(volume('v4', ['n1', 'n2']));
    await c.withAgents(c.node('n1').svc.nodeStageVolume(stage('v4')));
    await c.node('n1').svc.nodeUnstageVolume(unstage('v4'));

    c.peers.setReady('n2', false);
    await c.withAgents(c.node('n1').svc.nodeStageVolume(stage('v4')), ['n2']);
    const array = await c.node('n1').host.getArray('v4');
    expect(array?.degraded).toBe(true);
    expect((await c.store.get('v4'))?.replicas.map((r) => r.state)).toEqual(['InSync', 'Faulty']);

    // A volume never assembled is only ever created with all its members.
    await c.store.create(volume('v5', ['n1', 'n2']));
    expect(await codeOf(c.node('n1').svc.nodeStageVolume(stage('v5')))).toBe(status.UNAVAILABLE);
    expect(await c.node('n1').host.getArray('v5')).toBeUndefined();
  });

  it('without its owner exporting, NodeStage answers UNAVAILABLE naming the member', async () => {
    const c = cluster();
    await c.store.create(volume('v6', ['n2']));
    const err = await c
      .node('n3')
      .svc.nodeStageVolume(stage('v6'))
      .catch((e: CsiError) => e);
    expect(codeFor(err)).toBe(status.UNAVAILABLE);
    expect((err as CsiError).message).toMatch(/waiting for node n2 to export replica v6\/r0 to n3/);
  });

  it('a pass whose list predates a stage keeps the export that stage connects to', async () => {
    const c = cluster();
    await c.store.create(volume('v11', ['n1']));
    await c.withAgents(c.node('n2').svc.nodeStageVolume(stage('v11')));
    const staged = (await c.store.get('v11')) as VolumeRecord;
    // n1's pass listed the volume before n2 staged it (detached then): the export is read again
    // under the lock before it goes, and n2's stage keeps its leg
    const listedBefore = { ...staged, attachment: undefined };
    const r = await reconcileExports(
      {
        nodeName: 'n1',
        host: c.node('n1').host,
        store: c.store,
        listen: c.node('n1').listen,
        locks: new KeyedLock(),
        peers: c.peers,
      },
      [listedBefore],
    );
    expect(r.unexported).toEqual([]);
    expect((await c.node('n1').host.listExports())[0]?.allowedHosts).toEqual([c.node('n2').host.hostNqn]);
    expect((await c.node('n2').host.getArray('v11'))?.members.map((m) => m.state)).toEqual(['in_sync']);
    // once the store says detached too, the export goes
    await c.node('n2').svc.nodeUnstageVolume(unstage('v11'));
    expect((await c.node('n1').pass()).unexported).toEqual(['v11/r0']);
  });

  it('a volume deleted while still staged keeps its exports and partitions until it is unstaged', async () => {
    const c = cluster();
    await c.store.create(volume('v7', ['n1']));
    await c.withAgents(c.node('n2').svc.nodeStageVolume(stage('v7')));
    expect(await c.node('n1').host.listExports()).toHaveLength(1);
    const rec = (await c.store.get('v7')) as VolumeRecord;
    rec.phase = 'Deleting';
    await c.store.replace(rec);
    // Deleted while n2 still has it staged (DeleteVolume can come before kubelet's NodeUnstage):
    // n1 keeps serving the member, so n2's array keeps its leg and its unstage does not stall.
    const kept = await c.node('n1').wholePass();
    expect(kept.exports.unexported).toEqual([]);
    expect(kept.deletions.wiped).toEqual([]);
    expect(kept.deletions.waiting.map((w) => w.reason)).toEqual([
      'volume v7 is still staged on n2: its partitions are wiped once it is unstaged there',
    ]);
    expect((await c.node('n1').host.listExports())[0]?.allowedHosts).toEqual([c.node('n2').host.hostNqn]);
    expect((await c.node('n2').host.getArray('v7'))?.members.map((m) => m.state)).toEqual(['in_sync']);
    expect(await c.deletion.pass()).toEqual([]);
    // Unstaged: the next pass drops the export and wipes; the record goes once no agent reports it.
    await c.node('n2').svc.nodeUnstageVolume(unstage('v7'));
    const r = await c.node('n1').pass();
    expect(r.unexported).toEqual(['v7/r0']);
    expect(await c.node('n1').host.listExports()).toEqual([]);
    expect((await c.node('n1').host.listDrives())[0]?.partitions).toEqual([]);
    expect(await c.deletion.pass()).toEqual(['v7']);
    expect(await c.store.get('v7')).toBeUndefined();
  });

  it('a volume deleted while staged on a node whose agent is gone is not held for it', async () => {
    const c = cluster();
    await c.store.create(volume('v10', ['n1']));
    await c.withAgents(c.node('n2').svc.nodeStageVolume(stage('v10')));
    const rec = (await c.store.get('v10')) as VolumeRecord;
    rec.phase = 'Deleting';
    await c.store.replace(rec);
    expect((await c.node('n1').wholePass()).deletions.wiped).toEqual([]);
    // n2's agent stops reporting: its unstage may never come, and the data is being deleted
    c.peers.setReady('n2', false);
    const r = await c.node('n1').wholePass();
    expect(r.exports.unexported).toEqual(['v10/r0']);
    expect(r.deletions.wiped).toEqual(['n1/Dn1/v10/r0']);
    expect(await c.deletion.pass()).toEqual(['v10']);
  });

  it('a deleted volume whose staging node no longer runs its array is released by that node', async () => {
    const c = cluster();
    await c.store.create(volume('v11', ['n1']));
    await c.withAgents(c.node('n2').svc.nodeStageVolume(stage('v11')));
    // n2 "restarts": its array is gone, kubelet never unstages; the record still attaches it there
    await c.node('n2').host.unmount(unstage('v11').staging_target_path);
    await c.node('n2').host.stopArray('v11');
    const rec = (await c.store.get('v11')) as VolumeRecord;
    rec.phase = 'Deleting';
    await c.store.replace(rec);
    expect((await c.node('n1').wholePass()).deletions.wiped).toEqual([]);
    expect((await c.node('n2').wholePass()).staleAttachments).toEqual(['v11']);
    expect((await c.store.get('v11'))?.attachment).toBeUndefined();
    expect((await c.node('n1').wholePass()).deletions.wiped).toEqual(['n1/Dn1/v11/r0']);
    expect(await c.deletion.pass()).toEqual(['v11']);
  });

  it('the export pass removes exports of replicas no volume record lists', async () => {
    const c = cluster();
    await c.store.create(volume('v8', ['n1']));
    await c.withAgents(c.node('n2').svc.nodeStageVolume(stage('v8')));
    expect(await c.node('n1').host.listExports()).toHaveLength(1);
    // the record moves the replica to n3 (as an operator's edit or a lost update could): n1's
    // export of it is nobody's any more
    const rec = (await c.store.get('v8')) as VolumeRecord;
    (rec.replicas[0] as VolumeRecord['replicas'][number]).node = 'n3';
    await c.store.replace(rec);
    expect((await c.node('n1').pass()).unexported).toEqual(['v8/r0']);
    expect(await c.node('n1').host.listExports()).toEqual([]);
  });

  it('a deleted volume is released only after every agent wiped its partition', async () => {
    const c = cluster();
    await c.store.create(volume('v9', ['n1', 'n2']));
    await c.withAgents(c.node('n1').svc.nodeStageVolume(stage('v9')));
    const rec = (await c.store.get('v9')) as VolumeRecord;
    rec.phase = 'Deleting';
    await c.store.replace(rec);
    // n1 still runs the array (mounted): neither member is wiped, n2's leg stays served
    expect((await c.node('n2').wholePass()).deletions.wiped).toEqual([]);
    expect((await c.node('n1').wholePass()).deletions.wiped).toEqual([]);
    expect((await c.node('n1').host.getArray('v9'))?.members.map((m) => m.state)).toEqual([
      'in_sync',
      'in_sync',
    ]);
    expect(await c.deletion.pass()).toEqual([]);
    expect((await c.store.get('v9'))?.phase).toBe('Deleting');
    await c.node('n1').svc.nodeUnstageVolume(unstage('v9'));
    await c.node('n1').pass();
    expect(await c.deletion.pass()).toEqual([]); // n2's partition is still reported
    await c.node('n2').pass();
    expect(await c.deletion.pass()).toEqual(['v9']);
  });

  it('grows online when the members are on other nodes: their agents grow the partitions, then md', async () => {
    const c = cluster();
    await c.store.create(volume('v8', ['n1', 'n2']));
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage('v8')));
    const before = (await c.node('n3').host.getArray('v8'))?.sizeBytes ?? 0;
    // What ControllerExpandVolume records: a larger size and each extent grown in place.
    const rec = (await c.store.get('v8')) as VolumeRecord;
    rec.sizeBytes += 256 * MiB;
    for (const r of rec.replicas) r.extent.end += 256 * MiB;
    await c.store.replace(rec);

    const grown = await c.withAgents(
      c.node('n3').svc.nodeExpandVolume({
        volume_id: 'v8',
        volume_path: '/stage/v8',
        capacity_range: { required_bytes: String(rec.sizeBytes), limit_bytes: '0' },
      }),
    );
    expect(Number(grown.capacity_bytes)).toBeGreaterThanOrEqual(rec.sizeBytes);
    expect(Number(grown.capacity_bytes)).toBeGreaterThan(before);
    for (const n of ['n1', 'n2'] as const) {
      const part = (await c.node(n).host.listDrives())[0]?.partitions.find((p) => p.owner?.volumeId === 'v8');
      expect(part?.end).toBe(rec.replicas[0]?.extent.end);
    }
  });
});
