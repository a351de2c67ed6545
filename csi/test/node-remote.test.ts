// Volumes whose members live on other nodes: three simulated nodes on one fabric, each with its
// node service and its agent's export pass, sharing one in-memory volume store.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { subsystemNqn } from '../../agent/host/names.ts';
import { SimFabric, SimulatedHost } from '../../agent/host/simulated.ts';
import { MiB } from '../../placement/units.ts';
import type { CsiError } from '../errors.ts';
import { MemoryVolumeStore, StaticPeers } from '../memory-store.ts';
import type { VolumeRecord } from '../state.ts';
import { clusterNode, withAgents as runAgents } from './agents.ts';
import { codeOf, stageRequest } from './requests.ts';

const GiB = 1024 * MiB;
const NODES = ['n1', 'n2', 'n3'] as const;
type NodeName = (typeof NODES)[number];

function cluster() {
  const fabric = new SimFabric();
  const store = new MemoryVolumeStore();
  const peers = new StaticPeers();
  const nodes = new Map(
    NODES.map((name, i) => {
      const host = new SimulatedHost({
        hostNqn: `nqn.2014-08.org.nvmexpress:uuid:${name}`,
        fabric,
        drives: [{ id: `D${name}`, sizeBytes: 10 * GiB }],
      });
      const listen = { address: `127.0.0.${i + 2}`, port: 4420 };
      return [name, clusterNode({ name, host, store, peers, listen, connectWaitMs: 2_000 })] as const;
    }),
  );
  const node = (n: NodeName) => nodes.get(n) as NonNullable<ReturnType<typeof nodes.get>>;
  /** Runs every live agent's export pass until `work` settles, as the agents' resync loops would. */
  const withAgents = <T>(work: Promise<T>, down: NodeName[] = []): Promise<T> =>
    runAgents(
      NODES.filter((n) => !down.includes(n)).map((n) => node(n).pass),
      work,
    );
  return { fabric, store, peers, node, withAgents };
}

let nextStart = 64 * MiB;
function volume(id: string, on: NodeName[]): VolumeRecord {
  const start = nextStart;
  nextStart += 2 * GiB;
  if (nextStart > 9 * GiB) nextStart = 64 * MiB;
  return {
    id,
    name: id,
    sizeBytes: GiB,
    replicaCount: on.length,
    spread: { domain: 'zone', mode: 'none' },
    fsType: 'xfs',
    phase: 'Active',
    replicas: on.map((n, i) => ({
      id: `r${i}`,
      node: n,
      drive: `D${n}`,
      extent: { start, end: start + GiB + 64 * MiB },
      state: 'Pending' as const,
    })),
  };
}

const stage = (volume_id: string) => stageRequest(volume_id, `/stage/${volume_id}`);
const unstage = (volume_id: string) => ({ volume_id, staging_target_path: `/stage/${volume_id}` });

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
    expect((err as CsiError).code).toBe(status.UNAVAILABLE);
    expect((err as CsiError).message).toMatch(/waiting for node n2 to export replica v6\/r0 to n3/);
  });

  it('the export pass removes exports of deleted volumes and of replicas not on this node', async () => {
    const c = cluster();
    await c.store.create(volume('v7', ['n1']));
    await c.withAgents(c.node('n2').svc.nodeStageVolume(stage('v7')));
    expect(await c.node('n1').host.listExports()).toHaveLength(1);
    const rec = (await c.store.get('v7')) as VolumeRecord;
    rec.phase = 'Deleting';
    await c.store.replace(rec);
    const r = await c.node('n1').pass();
    expect(r.unexported).toEqual(['v7/r0']);
    expect(await c.node('n1').host.listExports()).toEqual([]);
  });
});
