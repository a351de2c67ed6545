import { describe, expect, it } from 'vitest';
import { GiB } from '../../placement/units.ts';
import { ExtenderState, quantityBytes } from '../state.ts';
import { msNode, msVolume, pod } from './fixtures.ts';

const NOW = 1_000_000;

/** Three healthy nodes, a StorageClass of ours, and a bound volume per entry of `volumes`. */
function cluster(volumes: Record<string, string[]> = {}, driveBytes = 1024 * GiB): ExtenderState {
  const s = new ExtenderState();
  s.setStorageClass('meshstor', 'meshstor.io');
  s.setStorageClass('other', 'ebs.csi.aws.com');
  for (const n of ['node-1', 'node-2', 'node-3']) s.setMeshStorNode(msNode(n, { driveBytes }), NOW);
  for (const [name, nodes] of Object.entries(volumes)) bind(s, name, nodes);
  return s;
}

function bind(s: ExtenderState, name: string, nodes: string[], sizeBytes = 10 * GiB): void {
  s.setMeshStorVolume(msVolume(name, nodes, { sizeBytes }));
  s.setPv(`pv-${name}`, 'meshstor.io', name);
  s.setPvc(
    'default',
    `pvc-${name}`,
    {
      uid: `u-${name}`,
      volumeName: `pv-${name}`,
      storageClassName: 'meshstor',
      requestBytes: sizeBytes,
      selectedNode: '',
    },
    NOW,
  );
}

function pending(s: ExtenderState, name: string, sizeBytes: number, selectedNode = ''): void {
  s.setPvc(
    'default',
    name,
    { uid: `u-${name}`, volumeName: '', storageClassName: 'meshstor', requestBytes: sizeBytes, selectedNode },
    NOW,
  );
}

const NODES = ['node-1', 'node-2', 'node-3'];
const scoreOf = (s: ExtenderState, p: ReturnType<typeof pod>, now = NOW) =>
  Object.fromEntries(s.prioritize(p, NODES, now).map((h) => [h.Host, h.Score]));

describe('ExtenderState.filter', () => {
  it('lets every node through for a pod without MeshStor volumes, even nodes without an agent', () => {
    const s = cluster();
    s.setPv('pv-ebs', 'ebs.csi.aws.com', 'vol-1');
    s.setPvc(
      'default',
      'ebs',
      { uid: 'u', volumeName: 'pv-ebs', storageClassName: 'other', requestBytes: GiB, selectedNode: '' },
      NOW,
    );
    const r = s.filter(pod('p', ['ebs', 'does-not-exist']), [...NODES, 'no-agent'], NOW);
    expect(r).toEqual({
      NodeNames: [...NODES, 'no-agent'],
      FailedNodes: {},
      FailedAndUnresolvableNodes: {},
      Error: '',
    });
    expect(s.prioritize(pod('p', ['ebs']), NODES, NOW)).toEqual(NODES.map((Host) => ({ Host, Score: 0 })));
  });

  it('removes only nodes whose agent is missing, not ready or silent, each with a reason', () => {
    const s = cluster({ a: ['node-2'] });
    s.setMeshStorNode(msNode('node-3', { ready: false }), NOW);
    s.setMeshStorNode(msNode('node-4', { heartbeat: NOW - 300_000 }), NOW);
    const r = s.filter(pod('p', ['pvc-a']), [...NODES, 'node-4', 'node-5'], NOW);
    expect(r.NodeNames).toEqual(['node-1', 'node-2']);
    expect(Object.keys(r.FailedAndUnresolvableNodes).sort()).toEqual(['node-3', 'node-4', 'node-5']);
    expect(r.FailedAndUnresolvableNodes['node-3']).toMatch(/not ready: Ready=False \(AgentUp\)/);
    expect(r.FailedAndUnresolvableNodes['node-4']).toMatch(
      /stopped reporting \(no heartbeat for over 90 s\)/,
    );
    expect(r.FailedAndUnresolvableNodes['node-5']).toMatch(/no agent on this node/);
  });
});

describe('ExtenderState.prioritize', () => {
  it.each(NODES)('scores the node holding the in-sync replica (%s) highest', (holder) => {
    const s = cluster({ a: [holder] });
    const scores = scoreOf(s, pod('p', ['pvc-a']));
    expect(scores[holder]).toBe(10);
    for (const n of NODES.filter((x) => x !== holder)) expect(scores[n]).toBeLessThanOrEqual(3);
  });

  it('prefers the node holding more of the pod bytes when volumes live on different nodes', () => {
    const s = cluster();
    bind(s, 'big', ['node-1'], 30 * GiB);
    bind(s, 'small', ['node-3'], 10 * GiB);
    const scores = scoreOf(s, pod('p', ['pvc-big', 'pvc-small']));
    expect(scores['node-1']).toBeGreaterThan(scores['node-3'] as number);
    expect(scores['node-3']).toBeGreaterThan(scores['node-2'] as number);
  });

  it('does not count a syncing replica as local', () => {
    const s = cluster();
    s.setMeshStorVolume(msVolume('a', ['node-1'], { state: 'Syncing' }));
    s.setPv('pv-a', 'meshstor.io', 'a');
    s.setPvc(
      'default',
      'pvc-a',
      {
        uid: 'u',
        volumeName: 'pv-a',
        storageClassName: 'meshstor',
        requestBytes: 10 * GiB,
        selectedNode: '',
      },
      NOW,
    );
    expect(scoreOf(s, pod('p', ['pvc-a']))['node-1']).toBeLessThan(4);
  });

  it('keeps a replica local after its node reports new drives (the model is rebuilt, claims kept)', () => {
    const s = cluster({ a: ['node-2'] });
    s.setMeshStorNode(msNode('node-2', { drives: 2 }), NOW + 1000);
    expect(scoreOf(s, pod('p', ['pvc-a']))['node-2']).toBe(10);
    expect(s.cluster.node('node-2')?.freeBytes).toBeLessThan(2 * 1024 * GiB - 10 * GiB);
  });
});

describe('in-flight reservations for volumes not provisioned yet', () => {
  // Each node fits one 60 GiB volume: without reservations, pods created together all see room everywhere.
  const big = 60 * GiB;

  it('pods created together are steered to different nodes', () => {
    const s = cluster({}, 100 * GiB);
    const chosen: string[] = [];
    for (const name of ['c1', 'c2', 'c3']) {
      pending(s, name, big);
      const scores = s.prioritize(pod(`p-${name}`, [name]), NODES, NOW);
      const top = Math.max(...scores.map((x) => x.Score));
      const best = scores.filter((x) => x.Score === top).map((x) => x.Host);
      expect(
        best.some((n) => chosen.includes(n)),
        `${name}: best ${best} overlaps ${chosen}`,
      ).toBe(false);
      chosen.push(s.reservations().find((r) => r.pvcUid === `u-${name}`)?.node as string);
    }
    expect(new Set(chosen).size).toBe(3);
    // Asking again for the same pod does not count its own reservation against it.
    expect(Math.max(...s.prioritize(pod('p-c1', ['c1']), NODES, NOW).map((x) => x.Score))).toBe(2);
    expect(s.reservations()).toHaveLength(3);
  });

  it('follows the node kube-scheduler picked, and ends when the PVC binds or the TTL passes', () => {
    const s = cluster({}, 100 * GiB);
    pending(s, 'c1', big);
    s.prioritize(pod('p', ['c1']), NODES, NOW);
    const first = s.reservations()[0]?.node as string;
    const other = NODES.find((n) => n !== first) as string;
    pending(s, 'c1', big, other);
    expect(s.reservations()).toEqual([{ pvcUid: 'u-c1', node: other, sizeBytes: big }]);
    s.setPvc(
      'default',
      'c1',
      {
        uid: 'u-c1',
        volumeName: 'pv-x',
        storageClassName: 'meshstor',
        requestBytes: big,
        selectedNode: other,
      },
      NOW,
    );
    expect(s.reservations()).toEqual([]);
    expect(s.cluster.reservations.size).toBe(0);

    pending(s, 'c2', big);
    s.prioritize(pod('p2', ['c2']), NODES, NOW);
    expect(s.reservations()).toHaveLength(1);
    s.expire(NOW + 61_000);
    expect(s.reservations()).toEqual([]);
  });

  it('keeps a reservation across a heartbeat of its node, and drops it with the PVC', () => {
    const s = cluster({}, 100 * GiB);
    pending(s, 'c1', big);
    s.prioritize(pod('p', ['c1']), NODES, NOW);
    const node = s.reservations()[0]?.node as string;
    s.setMeshStorNode(msNode(node, { driveBytes: 100 * GiB, drives: 2 }), NOW + 1);
    expect(s.reservations()[0]?.node).toBe(node);
    expect(s.cluster.reservations.size).toBe(1);
    s.deletePvc('default', 'c1');
    expect(s.cluster.reservations.size).toBe(0);
  });

  it('a bound claim is kept for its volume and request only; deleting it leaves the reservations of other claims alone', () => {
    const s = cluster({}, 100 * GiB);
    pending(s, 'c1', big);
    s.prioritize(pod('p', ['c1']), NODES, NOW);
    expect(s.reservations()).toHaveLength(1);
    // bound to a PV whose MeshStorVolume the extender has not seen yet: sized by its request
    s.setPv('pv-late', 'meshstor.io', 'late');
    s.setPvc(
      'default',
      'c2',
      {
        uid: 'u-c2',
        volumeName: 'pv-late',
        storageClassName: 'meshstor',
        requestBytes: 3 * GiB,
        selectedNode: '',
      },
      NOW,
    );
    expect(s.podVolumes(pod('q', ['c2']))).toEqual({
      volumes: [{ volumeId: 'late', sizeBytes: 3 * GiB }],
      pending: [],
    });
    s.deletePvc('default', 'c2');
    expect(s.reservations()).toHaveLength(1);
    expect(s.podVolumes(pod('q', ['c2'])).volumes).toEqual([]);
  });
});

describe('quantityBytes', () => {
  it.each([
    ['10Gi', 10 * GiB],
    ['1G', 1e9],
    ['500M', 5e8],
    ['1.5Gi', 1.5 * GiB],
    ['1e3', 1000],
    ['12345', 12345],
  ])('%s -> %d', (q, b) => expect(quantityBytes(q)).toBe(b));
  it('rejects what is not a quantity', () => {
    expect(quantityBytes('ten gigs')).toBeNaN();
    expect(quantityBytes(undefined)).toBeNaN();
  });
});
