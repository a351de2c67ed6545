import { describe, expect, it } from 'vitest';
import { API_VERSION, type MeshStorNode } from '../../kube/crds.ts';
import { ClusterState } from '../../placement/cluster.ts';
import { PlacementEngine } from '../../placement/engine.ts';
import type { NodeInfo, VolumeInfo } from '../../placement/model.ts';
import { CLAIM_LABEL, nodeInfoFrom, withLedgerClaims } from '../placement-model.ts';

const msn = (status: MeshStorNode['status'], topology?: MeshStorNode['spec']['topology']): MeshStorNode => ({
  apiVersion: API_VERSION,
  kind: 'MeshStorNode',
  metadata: { name: 'n1' },
  spec: { nodeName: 'n1', ...(topology ? { topology } : {}) },
  ...(status ? { status } : {}),
});

describe('nodeInfoFrom', () => {
  it('zone and rack from the topology the agent copied from the Node labels', () => {
    expect(nodeInfoFrom(msn({}, { zone: 'z1', rack: 'r7' }), true).labels).toEqual({
      zone: 'z1',
      rack: 'r7',
    });
    expect(nodeInfoFrom(msn({}), true).labels).toEqual({ zone: undefined, rack: undefined });
  });

  it('a cordoned node is unschedulable; an agent that does not report it counts as schedulable', () => {
    expect(nodeInfoFrom(msn({ schedulable: false }), true).schedulable).toBe(false);
    expect(nodeInfoFrom(msn({ schedulable: true }), true).schedulable).toBe(true);
    expect(nodeInfoFrom(msn({}), true).schedulable).toBe(true);
    expect(nodeInfoFrom(msn(undefined), false)).toMatchObject({
      schedulable: true,
      agentHealthy: false,
      drives: [],
    });
  });
});

describe('withLedgerClaims', () => {
  const GiB = 2 ** 30;
  const node = (name: string): NodeInfo => ({
    name,
    labels: { zone: name },
    schedulable: true,
    agentHealthy: true,
    drives: [{ id: 'd0', sizeBytes: 100 * GiB, logicalBlockSize: 512, gptSlots: 128, partitions: [] }],
  });
  const nodes = ['n1', 'n2', 'n3'].map(node);
  const extent = { start: 2 ** 20, end: 2 ** 20 + 11 * GiB };
  const volume: VolumeInfo = {
    id: 'v',
    sizeBytes: 10 * GiB,
    replicaCount: 2,
    spread: { domain: 'zone', mode: 'preferred' },
    replicas: ['n1', 'n2'].map((n, i) => ({
      id: `r${i}`,
      node: n,
      drive: 'd0',
      extent,
      state: 'InSync' as const,
    })),
    attachedNode: 'n3',
  };
  const claim = (volume: string, replica: string, e: { start: number; end: number }) => ({
    volume,
    allocation: 'a1',
    replica,
    drive: 'd0',
    ...e,
    claimedAt: '2026-11-28T10:00:00Z',
  });
  const engine = (ns: NodeInfo[]) =>
    new PlacementEngine(ClusterState.fromSnapshot({ nodes: ns, volumes: [volume] }));
  const planTo = (ns: NodeInfo[]) => {
    const r = engine(ns).planRelocation('v', 'n3');
    if (!r.ok || !r.plan.to) throw new Error(`no plan: ${JSON.stringify(r)}`);
    return r.plan.to;
  };

  it('a relocation is never planned onto bytes an orphan claim holds', () => {
    const first = planTo(nodes); // where it goes with the ledger unread
    const orphan = claim('ghost', 'r0', { start: first.start, end: first.end });
    const withClaims = withLedgerClaims(nodes, [volume], [{ node: 'n3', claims: [orphan] }]);
    const to = planTo(withClaims);
    expect(to.node).toBe('n3');
    expect(to.start >= orphan.end || to.end <= orphan.start).toBe(true);
    expect(withClaims[2]?.drives[0]?.partitions).toEqual([
      { start: orphan.start, end: orphan.end, label: `${CLAIM_LABEL} ghost/r0` },
    ]);
    expect(nodes[2]?.drives[0]?.partitions).toEqual([]); // the input is left as it was
  });

  it('claims a replica holds add nothing; a Removed replica holds nothing; unknown nodes are left out', () => {
    const held = claim('v', 'r0', extent);
    const ledgers = [
      { node: 'n1', claims: [held] },
      { node: 'gone', claims: [claim('x', 'r0', extent)] },
    ];
    const same = withLedgerClaims(nodes, [volume], ledgers);
    expect(same.map((n) => n.drives[0]?.partitions)).toEqual([[], [], []]);
    expect(engine(same).cluster.drift).toEqual([]);

    const removed: VolumeInfo = {
      ...volume,
      replicas: volume.replicas.map((r) => (r.node === 'n1' ? { ...r, state: 'Removed' as const } : r)),
    };
    expect(withLedgerClaims(nodes, [removed], ledgers)[0]?.drives[0]?.partitions).toHaveLength(1);
  });
});
