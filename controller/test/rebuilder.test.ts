// The rebuild decisions (controller/rebuilder.ts), pure: when a node counts as lost, which volume
// is rebuilt and which waits (and why), the order, the per-node load, and the clean-up of removed
// members after a move.
import { describe, expect, it } from 'vitest';
import type { NodeInfo } from '../../placement/model.ts';
import type { VolumeRecord } from '../../state/store.ts';
import {
  type NodeState,
  nodeStates,
  rebuildEngine,
  rebuildNeeded,
  rebuildOrder,
  resyncsPerNode,
  tidyRemoved,
} from '../rebuilder.ts';

const MIN = 60_000;
const times = { staleMs: 90_000, graceMs: 10 * MIN };
type State = VolumeRecord['replicas'][number]['state'];

function rec(id: string, members: [string, State][], extra: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    id,
    name: id,
    sizeBytes: 1 << 30,
    replicaCount: members.filter(([, s]) => s !== 'Removed').length,
    spread: { domain: 'zone', mode: 'none' },
    fsType: 'xfs',
    phase: 'Active',
    arrayUuid: 'u',
    attachment: { node: 'n1', hostNqn: 'nqn.x:n1' },
    replicas: members.map(([node, state], i) => ({
      id: `r${i}`,
      node,
      drive: `D${node}`,
      extent: { start: 0, end: 1 << 30 },
      state,
    })),
    ...extra,
  };
}

const states = (o: Record<string, NodeState>) => new Map(Object.entries(o));

describe('nodeStates', () => {
  it('up while the heartbeat is fresh, down after 90 s, lost after the grace period', () => {
    const now = 100 * MIN;
    const beats = new Map([
      ['fresh', now - 10_000],
      ['late', now - 5 * MIN],
      ['gone', now - 10 * MIN],
      ['never', Number.NaN],
    ]);
    const missing = new Map<string, number>();
    expect(Object.fromEntries(nodeStates(beats, [], missing, now, times))).toEqual({
      fresh: 'up',
      late: 'down',
      gone: 'lost',
      never: 'lost',
    });
  });

  it('a node without a MeshStorNode is down at once and lost a grace period after it was first seen missing', () => {
    const missing = new Map<string, number>();
    const t0 = 100 * MIN;
    expect(nodeStates(new Map(), ['n9'], missing, t0, times).get('n9')).toBe('down');
    expect(nodeStates(new Map(), ['n9'], missing, t0 + 9 * MIN, times).get('n9')).toBe('down');
    expect(nodeStates(new Map(), ['n9'], missing, t0 + 10 * MIN, times).get('n9')).toBe('lost');
    // it is back: the clock starts again the next time it goes missing
    expect(
      nodeStates(new Map([['n9', t0 + 11 * MIN]]), ['n9'], missing, t0 + 11 * MIN, times).get('n9'),
    ).toBe('up');
    expect(missing.has('n9')).toBe(false);
  });
});

describe('rebuildNeeded', () => {
  it('leaves snapshots alone, and waits while a snapshot is captured on the array', () => {
    const lostN2 = states({ n1: 'up', n2: 'lost', n3: 'up' });
    const members: [string, State][] = [
      ['n1', 'InSync'],
      ['n2', 'InSync'],
    ];
    expect(rebuildNeeded(rec('v', members), lostN2)?.kind).toBe('rebuild');
    const snapshot = { source: 'v', createdAt: '2026-11-28T00:00:00Z' } as VolumeRecord['snapshot'];
    expect(rebuildNeeded(rec('s', members, { snapshot }), lostN2)).toBeUndefined();
    const capture = { snapshot: 's', step: 'syncing' } as VolumeRecord['capture'];
    expect(rebuildNeeded(rec('v', members, { capture }), lostN2)).toBeUndefined();
  });

  const up = states({ n1: 'up', n2: 'lost', n3: 'up' });

  it('rebuilds a member on a lost node of an attached volume with an in-sync copy on a live node', () => {
    const need = rebuildNeeded(
      rec('v', [
        ['n1', 'InSync'],
        ['n2', 'InSync'],
      ]),
      up,
    );
    expect(need).toMatchObject({ kind: 'rebuild', lost: { id: 'r1', node: 'n2' }, attached: 'n1' });
  });

  it('within the grace period it only reports the member (caught up if its node returns)', () => {
    const need = rebuildNeeded(
      rec('v', [
        ['n1', 'InSync'],
        ['n2', 'Faulty'],
      ]),
      states({ n1: 'up', n2: 'down' }),
    );
    expect(need).toMatchObject({ kind: 'grace', down: { id: 'r1' } });
    expect(rebuildNeeded(rec('v', [['n1', 'InSync']]), states({ n1: 'up' }))).toBeUndefined();
  });

  it('never without an in-sync copy on a live node, nor while a move runs, nor with no node running the array', () => {
    // the only in-sync copy was on the lost node
    expect(
      rebuildNeeded(
        rec('v', [
          ['n1', 'Syncing'],
          ['n2', 'InSync'],
        ]),
        up,
      ),
    ).toMatchObject({ kind: 'blocked', reason: expect.stringMatching(/no in-sync copy on a live node/) });
    // replicaCount 1: its only copy is on the lost node
    expect(rebuildNeeded(rec('v', [['n2', 'InSync']]), up)).toMatchObject({ kind: 'blocked' });
    const moving = rec('v', [
      ['n1', 'InSync'],
      ['n2', 'Faulty'],
      ['n3', 'Syncing'],
    ]);
    moving.replicaCount = 2;
    moving.relocation = { toNode: 'n3', toReplica: 'r2', fromReplica: 'r1', step: 'syncing' };
    expect(rebuildNeeded(moving, up)).toBeUndefined();
    const detached = rec('v', [
      ['n1', 'InSync'],
      ['n2', 'InSync'],
    ]);
    detached.attachment = undefined;
    expect(rebuildNeeded(detached, up)).toMatchObject({
      kind: 'blocked',
      reason: expect.stringMatching(/not attached/),
    });
    const attachedLost = rec('v', [
      ['n1', 'InSync'],
      ['n2', 'InSync'],
    ]);
    attachedLost.attachment = { node: 'n2', hostNqn: 'q' };
    expect(rebuildNeeded(attachedLost, up)).toMatchObject({
      kind: 'blocked',
      reason: expect.stringMatching(/attached node n2/),
    });
  });

  it('waits while a removed member not wiped yet fills the extra slot the record allows', () => {
    const r = rec('v', [
      ['n1', 'InSync'],
      ['n2', 'InSync'],
      ['n4', 'Removed'],
    ]);
    expect(r.replicaCount).toBe(2);
    expect(rebuildNeeded(r, states({ n1: 'up', n2: 'lost', n4: 'lost' }))).toMatchObject({
      kind: 'blocked',
      reason: expect.stringMatching(/r2 on n4 was removed and is not wiped yet/),
    });
  });
});

describe('rebuildOrder and resyncsPerNode', () => {
  it('one in-sync copy left goes first, then the largest', () => {
    const s = states({ n1: 'up', n2: 'lost', n3: 'up', n4: 'up' });
    const two = rec('two', [
      ['n1', 'InSync'],
      ['n2', 'InSync'],
      ['n3', 'InSync'],
    ]);
    const small = rec('small', [
      ['n1', 'InSync'],
      ['n2', 'InSync'],
    ]);
    const big = rec('big', [
      ['n1', 'InSync'],
      ['n2', 'InSync'],
    ]);
    big.sizeBytes *= 4;
    expect(rebuildOrder([{ rec: two }, { rec: small }, { rec: big }], s).map((x) => x.rec.id)).toEqual([
      'big',
      'small',
      'two',
    ]);
  });

  it('a running move loads the node running the array and the new member node', () => {
    const m = rec('m', [
      ['n1', 'InSync'],
      ['n2', 'Faulty'],
      ['n3', 'Syncing'],
    ]);
    m.relocation = { toNode: 'n3', toReplica: 'r2', fromReplica: 'r1', step: 'syncing' };
    const local = rec('l', [
      ['n1', 'InSync'],
      ['n2', 'Faulty'],
    ]);
    local.relocation = { toNode: 'n1', toReplica: 'r2', fromReplica: 'r1', step: 'adding' };
    const done = rec('d', [['n1', 'InSync']]);
    done.relocation = { toNode: 'n4', toReplica: 'r2', fromReplica: 'r1', step: 'done' };
    expect(Object.fromEntries(resyncsPerNode([m, local, done]))).toEqual({ n1: 2, n3: 1 });
  });
});

describe('tidyRemoved', () => {
  const node = (name: string, owners: { volumeId: string; replicaId: string }[]): NodeInfo => ({
    name,
    labels: {},
    schedulable: true,
    agentHealthy: true,
    drives: [
      {
        id: `D${name}`,
        sizeBytes: 1 << 40,
        logicalBlockSize: 512,
        gptSlots: 128,
        partitions: owners.map((owner, i) => ({ start: i << 31, end: (i + 1) << 31, owner })),
      },
    ],
  });
  const rebuilt = () => {
    const r = rec('v', [
      ['n1', 'InSync'],
      ['n2', 'Removed'],
      ['n3', 'InSync'],
    ]);
    r.replicaCount = 2;
    r.relocation = { toNode: 'n3', toReplica: 'r2', fromReplica: 'r1', step: 'done' };
    return r;
  };

  it('ends a rebuild whose lost node is still gone, keeping its member until the node wipes it', () => {
    const r = rebuilt();
    const nodes = [node('n2', [{ volumeId: 'v', replicaId: 'r1' }])];
    expect(tidyRemoved(r, nodes, states({ n1: 'up', n2: 'lost', n3: 'up' }))).toEqual([]);
    expect(r.relocation).toBeUndefined();
    expect(r.replicas.map((x) => x.state)).toEqual(['InSync', 'Removed', 'InSync']);
    // nothing more until the partition goes
    expect(tidyRemoved(r, nodes, states({ n1: 'up', n2: 'up', n3: 'up' }))).toBeUndefined();
    // n2 came back and wiped it: the member leaves the record
    expect(
      tidyRemoved(r, [node('n2', [])], states({ n1: 'up', n2: 'up', n3: 'up' }))?.map((x) => x.id),
    ).toEqual(['r1']);
    expect(r.replicas.map((x) => x.id)).toEqual(['r0', 'r2']);
  });

  it('leaves an ended relocation whose leaving node is up to the relocation reconciler, and a running move alone', () => {
    const r = rebuilt();
    expect(tidyRemoved(r, [], states({ n1: 'up', n2: 'up', n3: 'up' }))).toBeUndefined();
    const running = rebuilt();
    if (running.relocation) running.relocation.step = 'removing';
    expect(tidyRemoved(running, [], states({ n1: 'up', n2: 'lost', n3: 'up' }))).toBeUndefined();
  });
});

describe('rebuildEngine', () => {
  const node = (name: string): NodeInfo => ({
    name,
    labels: {},
    schedulable: true,
    agentHealthy: true,
    drives: [
      { id: `D${name}`, sizeBytes: 8 * 2 ** 30, logicalBlockSize: 512, gptSlots: 128, partitions: [] },
    ],
  });
  const nodes = ['n1', 'n2', 'n3', 'n4'].map(node);

  it('puts the new member on the attached node when it holds none', () => {
    const r = rec('v', [
      ['n2', 'InSync'],
      ['n3', 'InSync'],
    ]);
    const s = states({ n1: 'up', n2: 'lost', n3: 'up', n4: 'up' });
    const plan = rebuildEngine(nodes, [r], s).planRebuild('v', 'n2');
    expect(plan.ok && plan.plan.to?.node).toBe('n1');
  });

  it('never on a node that is not up, however empty', () => {
    const r = rec('v', [
      ['n1', 'InSync'],
      ['n2', 'InSync'],
    ]);
    for (const [down, want] of [
      ['n3', 'n4'],
      ['n4', 'n3'],
    ] as const) {
      const s = states({ n1: 'up', n2: 'lost', n3: 'up', n4: 'up', [down]: 'down' });
      const plan = rebuildEngine(nodes, [r], s).planRebuild('v', 'n2');
      expect(plan.ok && plan.plan.to?.node).toBe(want);
    }
    const none = rebuildEngine(nodes, [r], states({ n1: 'up', n2: 'lost', n3: 'down', n4: 'lost' }));
    expect(none.planRebuild('v', 'n2')).toMatchObject({ ok: false });
  });
});
