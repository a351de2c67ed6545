// Property-based tests: random clusters and random sequences of decisions, with the invariants
// checked from the outside (recomputed from volumes, reservations and foreign partitions).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClusterState } from '../cluster.ts';
import { PlacementEngine } from '../engine.ts';
import { replicaExtentBytes } from '../geometry.ts';
import type { NodeInfo, PartitionInfo, SpreadMode } from '../model.ts';
import { POLICIES } from '../policies.ts';
import { GiB, MiB } from '../units.ts';

const arbDrive = (i: number) =>
  fc.record({
    id: fc.constant(`d${i}`),
    sizeBytes: fc.integer({ min: 2, max: 64 }).map((g) => g * GiB + 7 * 4096),
    logicalBlockSize: fc.constantFrom(512, 4096),
    gptSlots: fc.integer({ min: 2, max: 12 }),
    // Some drives are OS drives: foreign partitions at the front, in use.
    partitions: fc.oneof(
      fc.constant([] as PartitionInfo[]),
      fc.integer({ min: 1, max: 1024 }).map((mib): PartitionInfo[] => [
        { start: MiB, end: 2 * MiB, label: 'EFI' },
        { start: 2 * MiB, end: (2 + mib) * MiB, label: 'root' },
      ]),
    ),
  });

const arbNode = (i: number, zones: number) =>
  fc.record({
    name: fc.constant(`n${String(i).padStart(2, '0')}`),
    labels: fc.record({ zone: fc.integer({ min: 0, max: zones - 1 }).map((z) => `z${z}`) }),
    schedulable: fc.constant(true),
    agentHealthy: fc.constant(true),
    drives: fc
      .integer({ min: 1, max: 3 })
      .chain((n) => fc.tuple(...Array.from({ length: n }, (_, j) => arbDrive(j)))),
  }) as fc.Arbitrary<NodeInfo>;

const arbCluster = fc
  .tuple(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 1, max: 3 }))
  .chain(([n, zones]) => fc.tuple(...Array.from({ length: n }, (_, i) => arbNode(i, zones))));

type Op =
  | {
      kind: 'allocate';
      gib: number;
      mib: number;
      replicas: number;
      spread: SpreadMode;
      preferred: number;
      commit: boolean;
    }
  | { kind: 'delete'; pick: number }
  | { kind: 'relocate'; pick: number; node: number }
  | { kind: 'drain'; node: number }
  | { kind: 'lose'; pick: number; node: number }
  | { kind: 'cordon'; node: number };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('allocate' as const),
      gib: fc.integer({ min: 0, max: 20 }),
      mib: fc.integer({ min: 1, max: 1023 }),
      replicas: fc.integer({ min: 1, max: 3 }),
      spread: fc.constantFrom<SpreadMode>('required', 'preferred', 'none'),
      preferred: fc.integer({ min: -1, max: 9 }),
      commit: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('relocate' as const), pick: fc.nat(), node: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drain' as const), node: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lose' as const), pick: fc.nat(), node: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cordon' as const), node: fc.nat() }) },
);

/** Runs ops against an engine; returns a transcript of every decision for determinism checks. */
function run(nodes: NodeInfo[], ops: Op[], seed: number, policy = POLICIES[0]) {
  const e = new PlacementEngine({ nodes, volumes: [] }, { seed, policy });
  const log: unknown[] = [];
  let next = 0;
  for (const op of ops) {
    const names = e.cluster.nodes.map((n) => n.name);
    const vols = [...e.cluster.volumes.keys()].sort();
    if (op.kind === 'allocate') {
      const req = {
        volumeId: `v${next++}`,
        sizeBytes: op.gib * GiB + op.mib * MiB,
        replicaCount: op.replicas,
        spread: { domain: 'zone' as const, mode: op.spread },
        preferredNode: op.preferred >= 0 ? names[op.preferred % Math.max(1, names.length)] : undefined,
      };
      const r = e.allocate(req);
      log.push(r.ok ? r.reservation : r.message);
      if (r.ok && op.commit) e.commit(req, 'InSync');
      else if (r.ok && next % 3 === 0) e.release(req.volumeId);
      // otherwise the reservation stays in flight
    } else if (op.kind === 'delete' && vols.length > 0) {
      e.cluster.deleteVolume(vols[op.pick % vols.length] as string);
    } else if (op.kind === 'relocate' && vols.length > 0 && names.length > 0) {
      const p = e.planRelocation(
        vols[op.pick % vols.length] as string,
        names[op.node % names.length] as string,
      );
      log.push(p);
      if (p.ok && !p.noop) e.applyMove(p.plan);
    } else if (op.kind === 'drain' && names.length > 0) {
      const d = e.planDrain(names[op.node % names.length] as string, { reserve: true });
      log.push(d);
      for (const m of d.moves) e.applyMove(m);
    } else if (op.kind === 'lose' && vols.length > 0) {
      const v = e.cluster.volumes.get(vols[op.pick % vols.length] as string);
      const victim = v?.replicas[op.node % Math.max(1, v.replicas.length)];
      if (v && victim) {
        const p = e.planRebuild(v.id, victim.node, { reserve: true });
        log.push(p);
        if (p.ok && !p.noop) e.applyMove(p.plan);
      }
    } else if (op.kind === 'cordon' && names.length > 0) {
      const n = e.cluster.node(names[op.node % names.length] as string);
      if (n) n.schedulable = !n.schedulable;
    }
    checkInvariants(e.cluster);
  }
  return { e, log };
}

function checkInvariants(c: ClusterState): void {
  const names = c.nodes.map((n) => n.name);
  expect(names).toEqual([...names].sort());
  for (const n of c.nodes) {
    let free = 0;
    let mine = 0;
    let foreign = 0;
    for (const d of n.drives) {
      // every claim, recomputed from the outside
      const claims: { start: number; end: number; what: string }[] = [];
      for (const t of d.extents) if (t.claim.kind === 'foreign') claims.push({ ...t, what: 'foreign' });
      for (const v of c.volumes.values()) {
        for (const r of v.replicas) {
          if (r.node === n.name && r.drive === d.id) claims.push({ ...r.extent, what: `${v.id}/${r.id}` });
        }
      }
      for (const res of c.reservations.values()) {
        for (const r of res.replicas) {
          if (r.node === n.name && r.drive === d.id) claims.push({ ...r.extent, what: `res ${res.id}` });
        }
      }
      expect(claims.length).toBe(d.extents.length);
      claims.sort((a, b) => a.start - b.start);
      for (let i = 0; i < claims.length; i++) {
        const a = claims[i] as (typeof claims)[number];
        expect(a.start).toBeGreaterThanOrEqual(d.usable.start);
        expect(a.end).toBeLessThanOrEqual(d.usable.end);
        expect(a.end).toBeLessThanOrEqual(d.sizeBytes);
        if (i > 0)
          expect(a.start, `${a.what} overlaps`).toBeGreaterThanOrEqual((claims[i - 1] as typeof a).end);
      }
      expect(d.slotsUsed).toBeLessThanOrEqual(d.gptSlots);
      const used = claims.reduce((s, x) => s + (x.end - x.start), 0);
      expect(d.freeBytes).toBeLessThanOrEqual(d.capacityBytes - used);
      free += d.freeBytes;
      for (const t of d.extents) {
        if (t.claim.kind === 'replica' || t.claim.kind === 'reservation') mine++;
        else if (t.claim.kind === 'foreign') foreign += t.end - t.start;
      }
    }
    expect(n.freeBytes).toBe(free);
    expect(n.replicas).toBe(mine);
    expect(n.foreignBytes).toBe(foreign);
  }
  for (const v of c.volumes.values()) {
    const live = v.replicas.filter((r) => r.state !== 'Faulty' && r.state !== 'Removed');
    expect(new Set(live.map((r) => r.node)).size, `volume ${v.id} has two replicas on one node`).toBe(
      live.length,
    );
    for (const r of v.replicas) expect(r.extent.end - r.extent.start).toBe(replicaExtentBytes(v.sizeBytes));
  }
  for (const res of c.reservations.values()) {
    expect(new Set(res.replicas.map((r) => r.node)).size).toBe(res.replicas.length);
  }
}

const runs = { numRuns: 150 };

describe('placement properties', () => {
  it('no overlap, never past a drive end or its slots, no two replicas of a volume on one node', () => {
    fc.assert(
      fc.property(
        arbCluster,
        fc.array(arbOp, { maxLength: 40 }),
        fc.integer(),
        fc.nat(POLICIES.length - 1),
        (nodes, ops, seed, p) => {
          run(nodes, ops, seed, POLICIES[p]);
        },
      ),
      runs,
    );
  });

  it('same input and seed give the same decisions', () => {
    fc.assert(
      fc.property(
        arbCluster,
        fc.array(arbOp, { maxLength: 30 }),
        fc.integer(),
        fc.nat(POLICIES.length - 1),
        (nodes, ops, seed, p) => {
          const a = run(structuredClone(nodes), ops, seed, POLICIES[p]);
          const b = run(structuredClone(nodes), ops, seed, POLICIES[p]);
          expect(JSON.stringify(b.log)).toBe(JSON.stringify(a.log));
          expect(JSON.stringify(b.e.cluster.toSnapshot())).toBe(JSON.stringify(a.e.cluster.toSnapshot()));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('required spread puts every replica in its own zone; preferred uses as many zones as it can', () => {
    fc.assert(
      fc.property(arbCluster, fc.array(arbOp, { maxLength: 30 }), fc.integer(), (nodes, ops, seed) => {
        const { e } = run(nodes, ops, seed);
        const need = replicaExtentBytes(MiB);
        const eligibleZones = new Set(
          e.cluster.nodes.filter((n) => n.schedulable && n.largestPlaceable >= need).map((n) => n.zone),
        );
        for (const mode of ['required', 'preferred'] as const) {
          const id = `probe-${mode}`;
          const r = e.allocate({
            volumeId: id,
            sizeBytes: MiB,
            replicaCount: 2,
            spread: { domain: 'zone', mode },
          });
          if (mode === 'required') expect(r.ok).toBe(eligibleZones.size >= 2);
          if (!r.ok) continue;
          const zones = new Set(r.reservation.replicas.map((x) => e.cluster.node(x.node)?.zone));
          expect(zones.size).toBe(mode === 'required' ? 2 : Math.min(2, eligibleZones.size));
          e.release(id);
        }
      }),
      runs,
    );
  });

  it('capacity() is exactly the largest volume allocate() places', () => {
    fc.assert(
      fc.property(
        arbCluster,
        fc.array(arbOp, { maxLength: 25 }),
        fc.integer(),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom<SpreadMode>('required', 'preferred', 'none'),
        fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
        (nodes, ops, seed, replicaCount, mode, zone) => {
          const { e } = run(nodes, ops, seed);
          const spread = { domain: 'zone' as const, mode };
          const segment = zone === undefined ? {} : { zone: `z${zone}` };
          const cap = e.capacity(segment, { replicaCount, spread });
          const at = (bytes: number, id: string) =>
            e.allocate({ volumeId: id, sizeBytes: bytes, replicaCount, spread, segment });
          if (cap > 0) {
            const ok = at(cap, 'cap');
            expect(ok.ok, `capacity ${cap} must be placeable`).toBe(true);
            e.release('cap');
          }
          const over = at(cap + MiB, 'over');
          expect(over.ok, `capacity ${cap} + 1 MiB must not be placeable`).toBe(false);
        },
      ),
      runs,
    );
  });

  it('relocation, drain and rebuild never drop the last in-sync copy', () => {
    fc.assert(
      fc.property(arbCluster, fc.array(arbOp, { maxLength: 40 }), fc.integer(), (nodes, ops, seed) => {
        const { e } = run(nodes, ops, seed);
        for (const v of e.cluster.volumes.values()) {
          expect(
            v.replicas.some((r) => r.state === 'InSync'),
            `volume ${v.id} lost its last copy`,
          ).toBe(true);
        }
      }),
      runs,
    );
  });
});
