import { describe, expect, it } from 'vitest';
import { ClusterState } from '../cluster.ts';
import { DriveState } from '../drive.ts';
import { PlacementEngine } from '../engine.ts';
import { PlacementError } from '../errors.ts';
import { replicaExtentBytes } from '../geometry.ts';
import type { NodeInfo } from '../model.ts';
import { nodesToScore } from '../select.ts';
import { GiB, MiB } from '../units.ts';
import { cluster, drive, node, osDrive } from './fixtures.ts';

const engineOf = (nodes = cluster(6, ['a', 'b', 'c'], [100, 200]), seed = 7) =>
  new PlacementEngine({ nodes, volumes: [] }, { seed });

describe('DriveState', () => {
  it('refuses an extent that overlaps a taken one, and one past the end', () => {
    const d = new DriveState('n', drive('d0', 10));
    d.take({ start: MiB, end: 101 * MiB }, { kind: 'foreign' });
    expect(() => d.take({ start: 100 * MiB, end: 200 * MiB }, { kind: 'foreign' })).toThrow(/not free/);
    expect(() => d.take({ start: 9 * GiB, end: 11 * GiB }, { kind: 'foreign' })).toThrow(/not free/);
    expect(d.freeBytes).toBe(d.capacityBytes - 100 * MiB);
  });
  it('counts GPT slots and refuses past the last one', () => {
    const d = new DriveState('n', drive('d0', 10, { gptSlots: 2 }));
    d.take({ start: MiB, end: 2 * MiB }, { kind: 'foreign' });
    d.take({ start: 2 * MiB, end: 3 * MiB }, { kind: 'foreign' });
    expect(d.largestPlaceable).toBe(0);
    expect(() => d.take({ start: 3 * MiB, end: 4 * MiB }, { kind: 'foreign' })).toThrow(/no GPT slot/);
  });
  it('picks best, worst and first fit holes', () => {
    const d = new DriveState('n', drive('d0', 10));
    // holes: [1,2) GiB = 1 GiB, [3,5) = 2 GiB, [6, end) ~ 4 GiB
    d.take({ start: MiB, end: GiB }, { kind: 'foreign' });
    d.take({ start: 2 * GiB, end: 3 * GiB }, { kind: 'foreign' });
    d.take({ start: 5 * GiB, end: 6 * GiB }, { kind: 'foreign' });
    expect(d.pick(512 * MiB, 'first')?.extent.start).toBe(GiB);
    expect(d.pick(1536 * MiB, 'best')?.extent.start).toBe(3 * GiB);
    expect(d.pick(512 * MiB, 'worst')?.extent.start).toBe(6 * GiB);
  });
});

describe('allocate', () => {
  it('puts replicas on distinct nodes in distinct zones and reserves them', () => {
    const e = engineOf();
    const r = e.allocate({ volumeId: 'v1', sizeBytes: 10 * GiB, replicaCount: 3 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const nodes = r.reservation.replicas.map((x) => x.node);
    expect(new Set(nodes).size).toBe(3);
    const zones = nodes.map((n) => e.cluster.node(n)?.zone);
    expect(new Set(zones).size).toBe(3);
    for (const x of r.reservation.replicas)
      expect(x.extent.end - x.extent.start).toBe(replicaExtentBytes(10 * GiB));
    expect(e.cluster.reservations.has('v1')).toBe(true);
  });

  it('gives the preferred node the first replica', () => {
    for (const preferred of ['node-0', 'node-3', 'node-5']) {
      const e = engineOf();
      const r = e.allocate({ volumeId: 'v', sizeBytes: GiB, replicaCount: 2, preferredNode: preferred });
      expect(r.ok && r.reservation.replicas[0]?.node).toBe(preferred);
      expect(r.ok && r.preferredNodeUsed).toBe(true);
    }
  });

  it('falls back when the preferred node cannot take it', () => {
    const nodes = cluster(3, ['a', 'b', 'c'], [100]);
    (nodes[0] as { agentHealthy: boolean }).agentHealthy = false;
    const e = engineOf(nodes);
    const r = e.allocate({ volumeId: 'v', sizeBytes: GiB, replicaCount: 1, preferredNode: 'node-0' });
    expect(r.ok).toBe(true);
    expect(r.ok && r.preferredNodeUsed).toBe(false);
    expect(r.ok && r.reservation.replicas[0]?.node).not.toBe('node-0');
  });

  it('is idempotent by volume id and refuses different parameters', () => {
    const e = engineOf();
    const req = { volumeId: 'v', sizeBytes: 5 * GiB, replicaCount: 2 };
    const a = e.allocate(req);
    const b = e.allocate(req);
    expect(b).toEqual(a);
    e.commit(req);
    const c = e.allocate(req);
    expect(c.ok && c.reservation.replicas.map((x) => x.node)).toEqual(
      a.ok && a.reservation.replicas.map((x) => x.node),
    );
    const d = e.allocate({ ...req, sizeBytes: 6 * GiB });
    expect(d.ok).toBe(false);
    expect(!d.ok && d.code).toBe('conflict');
  });

  it('explains an impossible request per node', () => {
    const nodes = cluster(3, ['a', 'a', 'b'], [100]);
    (nodes[2] as { schedulable: boolean }).schedulable = false;
    const e = engineOf(nodes);
    const r = e.allocate({
      volumeId: 'v',
      sizeBytes: 10 * GiB,
      replicaCount: 2,
      spread: { domain: 'zone', mode: 'required' },
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe('exhausted');
    expect(r.message).toMatch(/2 node\(s\) in distinct zones, found 1/);
    expect(r.nodeReasons['node-2']).toMatch(/cordoned/);
    expect(Object.keys(r.nodeReasons).sort()).toEqual(['node-0', 'node-1', 'node-2']);
    const big = e.allocate({ volumeId: 'w', sizeBytes: 500 * GiB, replicaCount: 1 });
    expect(!big.ok && big.nodeReasons['node-0']).toMatch(/largest free extent .* needed/);
  });

  it('rejects malformed requests with a clear message and changes nothing', () => {
    const e = engineOf();
    const before = JSON.stringify(e.cluster.toSnapshot());
    for (const bad of [
      { volumeId: '', sizeBytes: GiB, replicaCount: 1 },
      { volumeId: 'v', sizeBytes: -1, replicaCount: 1 },
      { volumeId: 'v', sizeBytes: 1.5, replicaCount: 1 },
      { volumeId: 'v', sizeBytes: GiB, replicaCount: 0 },
      { volumeId: 'v', sizeBytes: GiB, replicaCount: 9 },
    ]) {
      const r = e.allocate(bad);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.code).toBe('invalid');
    }
    expect(JSON.stringify(e.cluster.toSnapshot())).toBe(before);
  });

  it('carves a replica from the free tail of an OS drive', () => {
    const e = engineOf([node('os-only', 'a', [osDrive('sda', 240, 40)])]);
    const r = e.allocate({ volumeId: 'v', sizeBytes: 100 * GiB, replicaCount: 1 });
    expect(r.ok).toBe(true);
    const ext = r.ok ? r.reservation.replicas[0]?.extent : undefined;
    expect(ext?.start).toBeGreaterThanOrEqual(513 * MiB + 40 * GiB);
  });

  it('counts GPT slots as a resource', () => {
    const e = engineOf([node('n', 'a', [drive('d0', 100, { gptSlots: 3 })])]);
    for (let i = 0; i < 3; i++)
      expect(e.allocate({ volumeId: `v${i}`, sizeBytes: GiB, replicaCount: 1 }).ok).toBe(true);
    const r = e.allocate({ volumeId: 'v4', sizeBytes: GiB, replicaCount: 1 });
    expect(!r.ok && r.nodeReasons.n).toMatch(/no GPT partition slot/);
  });

  it('in-flight reservations count against capacity until released', () => {
    const e = engineOf([node('n', 'a', [drive('d0', 10)])]);
    expect(e.allocate({ volumeId: 'a', sizeBytes: 6 * GiB, replicaCount: 1 }).ok).toBe(true);
    expect(e.allocate({ volumeId: 'b', sizeBytes: 6 * GiB, replicaCount: 1 }).ok).toBe(false);
    e.release('a');
    expect(e.allocate({ volumeId: 'b', sizeBytes: 6 * GiB, replicaCount: 1 }).ok).toBe(true);
  });

  it('expires reservations by the caller clock', () => {
    const e = engineOf([node('n', 'a', [drive('d0', 10)])]);
    e.allocate({ volumeId: 'a', sizeBytes: 6 * GiB, replicaCount: 1, expiresAt: 100 });
    expect(e.cluster.expireReservations(99)).toEqual([]);
    expect(e.cluster.expireReservations(100)).toEqual(['a']);
    expect(e.cluster.node('n')?.freeBytes).toBe(e.cluster.node('n')?.capacityBytes);
  });
});

describe('loading existing state', () => {
  it('matches reported partitions to volume replicas and surfaces overlaps as drift', () => {
    const ext = { start: MiB, end: MiB + 10 * GiB };
    const n = node('n', 'a', [
      drive('d0', 100, {
        partitions: [
          { ...ext, owner: { volumeId: 'v', replicaId: 'r0' } },
          { start: 20 * GiB, end: 30 * GiB, owner: { volumeId: 'gone', replicaId: 'r0' } },
        ],
      }),
    ]);
    const c = ClusterState.fromSnapshot({
      nodes: [n],
      volumes: [
        {
          id: 'v',
          sizeBytes: 9 * GiB,
          replicaCount: 1,
          spread: { domain: 'zone', mode: 'none' },
          replicas: [{ id: 'r0', node: 'n', drive: 'd0', extent: ext, state: 'InSync' }],
        },
        {
          id: 'w',
          sizeBytes: 9 * GiB,
          replicaCount: 1,
          spread: { domain: 'zone', mode: 'none' },
          replicas: [
            { id: 'r0', node: 'n', drive: 'd0', extent: { start: 25 * GiB, end: 35 * GiB }, state: 'InSync' },
          ],
        },
      ],
    });
    const d = c.mustDrive('n', 'd0');
    expect(d.slotsUsed).toBe(3); // v's partition counted once, the orphan and w's replica
    expect(c.drift.map((x) => x.kind)).toEqual(['overlap']);
    // the orphan's bytes stay taken until its partition is wiped
    expect(d.isFree({ start: 20 * GiB, end: 21 * GiB })).toBe(false);
  });
});

describe('removeReplica', () => {
  it('never drops the last in-sync copy', () => {
    const e = engineOf();
    const req = { volumeId: 'v', sizeBytes: GiB, replicaCount: 2 };
    e.allocate(req);
    const v = e.commit(req);
    const [a, b] = v.replicas.map((r) => r.id) as [string, string];
    e.cluster.setReplicaState('v', a, 'InSync');
    e.cluster.setReplicaState('v', b, 'Syncing');
    expect(() => e.cluster.removeReplica('v', a)).toThrow(PlacementError);
    expect(() => e.cluster.removeReplica('v', a)).toThrow(/last in-sync copy/);
    e.cluster.removeReplica('v', b);
    expect(v.replicas.map((r) => r.id)).toEqual([a]);
  });
});

describe('scoreNodes', () => {
  function withVolumes() {
    const e = engineOf(cluster(4, ['a', 'b'], [100]));
    const mk = (id: string, gib: number, nodeName: string) => {
      const req = { volumeId: id, sizeBytes: gib * GiB, replicaCount: 1, preferredNode: nodeName };
      e.allocate(req);
      e.commit(req, 'InSync');
    };
    mk('big', 30, 'node-1');
    mk('small', 5, 'node-2');
    return e;
  }

  it('local in-sync bytes dominate; more local bytes score higher', () => {
    const e = withVolumes();
    const pod = [
      { volumeId: 'big', sizeBytes: 30 * GiB },
      { volumeId: 'small', sizeBytes: 5 * GiB },
    ];
    const s = Object.fromEntries(
      e.scoreNodes(pod, ['node-0', 'node-1', 'node-2', 'node-3']).map((x) => [x.node, x.score]),
    );
    expect(s['node-1']).toBeGreaterThan(s['node-2'] as number);
    expect(s['node-2']).toBeGreaterThan(s['node-0'] as number);
    expect(s['node-2']).toBeGreaterThan(s['node-3'] as number);
    for (const v of Object.values(s)) expect(v).toBeGreaterThanOrEqual(0);
    for (const v of Object.values(s)) expect(v).toBeLessThanOrEqual(10);
  });

  it('a node holding every byte scores 10; pods without MeshStor volumes score 0 everywhere', () => {
    const e = withVolumes();
    expect(e.scoreNodes([{ volumeId: 'big', sizeBytes: 30 * GiB }], ['node-1'])[0]?.score).toBe(10);
    expect(e.scoreNodes([], ['node-0', 'node-1']).map((x) => x.score)).toEqual([0, 0]);
  });

  it('without local bytes, room to receive the data and a same-zone copy count', () => {
    const e = withVolumes();
    const s = e.scoreNodes([{ volumeId: 'big', sizeBytes: 30 * GiB }], ['node-0', 'node-3']);
    // node-1 (zone b) holds it: node-3 is in zone b, node-0 in zone a; both have room.
    expect(s).toEqual([
      { node: 'node-0', score: 2 },
      { node: 'node-3', score: 3 },
    ]);
  });
});

describe('plans', () => {
  function oneVolume(replicaCount: number) {
    const e = engineOf(cluster(6, ['a', 'b', 'c'], [100]));
    const req = { volumeId: 'v', sizeBytes: 10 * GiB, replicaCount, preferredNode: 'node-0' };
    e.allocate(req);
    const v = e.commit(req, 'InSync');
    return { e, v };
  }

  it('relocation adds before it removes and picks the leaving member', () => {
    const { e, v } = oneVolume(2);
    const target = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5'].find(
      (n) => !v.replicas.some((r) => r.node === n),
    ) as string;
    const r = e.planRelocation('v', target);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.plan.steps.map((s) => s.op)).toEqual([
      'add-member',
      'wait-in-sync',
      'remove-member',
      'wipe-and-free',
    ]);
    expect(r.plan.bytes).toBe(10 * GiB);
    expect(e.cluster.reservations.size).toBe(0); // planning alone reserves nothing by default
    e.applyMove(r.plan);
    expect(v.replicas.some((x) => x.node === target && x.state === 'InSync')).toBe(true);
    expect(v.replicas.length).toBe(2);
    expect(e.planRelocation('v', target)).toMatchObject({ ok: true, noop: true });
  });

  it('relocation resumes from observed state: a member already added only needs the removal', () => {
    const { e, v } = oneVolume(1);
    const r = e.planRelocation('v', 'node-4', { reserve: true });
    if (!r.ok || !r.plan.to) throw new Error('expected a plan');
    e.cluster.commitReplica(r.plan.reservationId as string, 'Syncing'); // crashed after add-member
    expect(v.replicas.map((x) => x.state)).toEqual(['InSync', 'Syncing']);
    const again = e.planRelocation('v', 'node-4');
    expect(again.ok && again.plan.steps.map((s) => s.op)).toEqual([
      'wait-in-sync',
      'remove-member',
      'wipe-and-free',
    ]);
    expect(again.ok && again.plan.from?.node).toBe('node-0');
  });

  it('a new member is never smaller than the members it joins (md refuses a smaller device)', () => {
    const nodes = cluster(3, ['a'], [100]);
    const d0 = nodes[0]?.drives[0]?.id as string;
    // A record whose member is larger than the volume's own headroom asks for (hand-made, or sized
    // by an older rule).
    const e = new PlacementEngine(
      {
        nodes,
        volumes: [
          {
            id: 'big-member',
            sizeBytes: GiB,
            replicaCount: 1,
            spread: { domain: 'zone', mode: 'none' },
            replicas: [
              {
                id: 'r0',
                node: 'node-0',
                drive: d0,
                extent: { start: MiB, end: MiB + 5 * GiB },
                state: 'InSync',
              },
            ],
          },
        ],
      },
      { seed: 7 },
    );
    const r = e.planRelocation('big-member', 'node-1');
    expect(r.ok && r.plan.to && r.plan.to.end - r.plan.to.start).toBe(5 * GiB);
  });

  it('relocation that cannot fit says why', () => {
    const { e } = oneVolume(1);
    const full = e.allocate({
      volumeId: 'filler',
      sizeBytes: 90 * GiB,
      replicaCount: 1,
      preferredNode: 'node-5',
    });
    expect(full.ok).toBe(true);
    const r = e.planRelocation('v', 'node-5');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toMatch(/cannot relocate v to node-5: largest free extent/);
  });

  it('drain moves every member off the node, sole copies first, to the consumer node when it can', () => {
    const e = engineOf(cluster(4, ['a', 'b'], [100]));
    const mk = (id: string, gib: number, rc: number, attached?: string) => {
      const req = { volumeId: id, sizeBytes: gib * GiB, replicaCount: rc, preferredNode: 'node-0' };
      e.allocate(req);
      const v = e.commit(req, 'InSync');
      v.attachedNode = attached;
    };
    mk('pair', 20, 2);
    mk('solo', 5, 1, 'node-3');
    const plan = e.planDrain('node-0');
    expect(plan.moves.map((m) => m.volumeId)).toEqual(['solo', 'pair']);
    expect(plan.moves[0]?.to?.node).toBe('node-3');
    expect(plan.totalBytes).toBe(25 * GiB);
    expect(plan.unplaceable).toEqual([]);
    expect(e.cluster.reservations.size).toBe(0);
    const held = e.planDrain('node-0', { reserve: true });
    for (const m of held.moves) e.applyMove(m);
    for (const v of e.cluster.volumes.values())
      expect(v.replicas.some((r) => r.node === 'node-0')).toBe(false);
  });

  it('rebuild replaces a lost member from a surviving copy, and refuses when none survives', () => {
    const { e, v } = oneVolume(2);
    const lost = v.replicas[0]?.node as string;
    v.attachedNode = 'node-5';
    const r = e.planRebuild('v', lost);
    expect(r.ok && r.plan.steps[0]?.op).toBe('mark-faulty');
    expect(r.ok && r.plan.to?.node).toBe(
      v.replicas.some((x) => x.node === 'node-5') ? r.ok && r.plan.to?.node : 'node-5',
    );
    const solo = oneVolume(1);
    const s = solo.e.planRebuild('v', 'node-0');
    expect(s.ok).toBe(false);
    expect(!s.ok && s.code).toBe('unsafe');
  });
});

describe('capacity', () => {
  it('is the largest volume allocate can really place, per replica count and spread', () => {
    const e = engineOf([
      node('a1', 'a', [drive('d', 100)]),
      node('a2', 'a', [drive('d', 300)]),
      node('b1', 'b', [drive('d', 50)]),
    ]);
    const one = e.capacity({}, { replicaCount: 1 });
    const twoRequired = e.capacity({}, { replicaCount: 2, spread: { domain: 'zone', mode: 'required' } });
    const twoAny = e.capacity({}, { replicaCount: 2, spread: { domain: 'zone', mode: 'none' } });
    expect(one).toBeGreaterThan(290 * GiB);
    expect(twoAny).toBeGreaterThan(95 * GiB);
    expect(twoAny).toBeLessThan(100 * GiB);
    expect(twoRequired).toBeLessThan(50 * GiB);
    expect(e.capacity({ zone: 'b' }, { replicaCount: 2 })).toBe(0);
    expect(e.capacity({}, { replicaCount: 4 })).toBe(0);
  });
});

describe('scanning big clusters', () => {
  it('scores a window like kube-scheduler: all up to 100 nodes, then a shrinking share, at least 100', () => {
    expect(nodesToScore(80)).toBe(80);
    expect(nodesToScore(1000)).toBe(420);
    expect(nodesToScore(5000)).toBe(500);
    expect(nodesToScore(100_000)).toBe(5000);
  });

  it('still finds the one node that fits, wherever it is', () => {
    const nodes = cluster(1000, ['a', 'b', 'c'], [10]);
    (nodes[777] as NodeInfo).drives = [drive('big', 1000)];
    const e = engineOf(nodes);
    for (let i = 0; i < 3; i++) {
      const r = e.allocate({ volumeId: `v${i}`, sizeBytes: 200 * GiB, replicaCount: 1 });
      expect(r.ok && r.reservation.replicas[0]?.node).toBe('node-777');
    }
  });

  it('rotates its start so every node gets its turn', () => {
    const e = engineOf(cluster(1000, ['a'], [100]));
    const used = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const r = e.allocate({ volumeId: `v${i}`, sizeBytes: GiB, replicaCount: 1 });
      if (r.ok) used.add(r.reservation.replicas[0]?.node as string);
    }
    expect(used.size).toBeGreaterThan(300);
  });
});

describe('expand in place', () => {
  it('grows members whose next bytes are free and names the ones that cannot', () => {
    const e = engineOf(cluster(2, ['a', 'b'], [100]));
    const mk = (id: string, gib: number) => {
      const req = { volumeId: id, sizeBytes: gib * GiB, replicaCount: 1, preferredNode: 'node-0' };
      e.allocate(req);
      return e.commit(req, 'InSync');
    };
    const first = mk('first', 10);
    mk('second', 10); // best-fit puts it right after "first"
    const blocked = e.planExpand('first', 20 * GiB);
    expect(blocked).toMatchObject({ ok: false, code: 'exhausted' });
    expect(!blocked.ok && blocked.message).toMatch(/the space after r0 on node-0\/d0 is taken/);
    const ok = e.planExpand('second', 20 * GiB);
    expect(ok.ok).toBe(true);
    if (!ok.ok) return;
    const g = ok.grows[0] as (typeof ok.grows)[number];
    e.cluster.growReplica('second', g.replicaId, g.newEnd);
    expect(e.cluster.mustVolume('second').replicas[0]?.extent.end).toBe(g.newEnd);
    expect(() =>
      e.cluster.growReplica('first', 'r0', (first.replicas[0]?.extent.end as number) + GiB),
    ).toThrow(/not free/);
    expect(e.planExpand('nope', GiB)).toMatchObject({ ok: false, code: 'not-found' });
  });
});

describe('expansion when growth in place is blocked', () => {
  const mk = (e: PlacementEngine, id: string, gib: number, replicaCount = 1) => {
    const req = { volumeId: id, sizeBytes: gib * GiB, replicaCount, preferredNode: 'node-0' };
    const r = e.allocate(req);
    if (!r.ok) throw new Error(r.message);
    return e.commit(req, 'InSync');
  };

  it('moves the blocked member to an extent of the new size on its own node when a drive there has room', () => {
    const e = engineOf(cluster(2, ['a', 'b'], [100]));
    mk(e, 'first', 10);
    mk(e, 'second', 10); // right after "first": it cannot grow in place
    const res = e.planGrowMove('first', 20 * GiB);
    expect(res).toMatchObject({ ok: true, noop: false });
    if (!res.ok) return;
    const to = res.plan.to as NonNullable<typeof res.plan.to>;
    expect(res.plan.from).toEqual({ replicaId: 'r0', node: 'node-0' });
    expect(to).toMatchObject({ replicaId: 'r1', node: 'node-0', drive: 'd0' });
    expect(to.end - to.start).toBeGreaterThanOrEqual(replicaExtentBytes(20 * GiB));
    expect(res.plan.steps.map((s) => s.op)).toEqual([
      'add-member',
      'wait-in-sync',
      'remove-member',
      'wipe-and-free',
    ]);
    // without reserve: nothing is held, so the same plan comes out again
    expect(e.cluster.reservations.size).toBe(0);
    expect(e.planGrowMove('first', 20 * GiB)).toMatchObject({ ok: true, plan: { to: { start: to.start } } });
    // the other volume can grow in place: nothing to move
    expect(e.planGrowMove('second', 20 * GiB)).toMatchObject({ ok: true, noop: true });
  });

  it('goes to another node when its own has no room at the new size, and refuses when none has', () => {
    const e = engineOf(cluster(3, ['a', 'b', 'c'], [30]));
    mk(e, 'first', 10, 2); // node-0 and another node
    mk(e, 'second', 15); // after first on node-0: node-0 is left with under 5 GiB
    const home = e.cluster.mustVolume('first').replicas.map((r) => r.node);
    const res = e.planGrowMove('first', 12 * GiB, { reserve: true });
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    expect(res.plan.from?.node).toBe('node-0');
    expect(home).not.toContain(res.plan.to?.node);
    expect(e.cluster.reservations.has(res.plan.reservationId as string)).toBe(true);
    const none = e.planGrowMove('first', 40 * GiB);
    expect(none).toMatchObject({ ok: false, code: 'exhausted' });
    expect(!none.ok && none.message).toMatch(/cannot grow in place to .* no node has room for r0/);
  });
});
