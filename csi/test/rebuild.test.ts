// Node loss (issue 12 §2) on three simulated nodes: a volume on n1 and n2, staged on n1; n2 dies
// (its target vanishes, its agent stops). Within the grace period nothing is rebuilt and a node
// back in time is caught up; after it, the controller's rebuild pass places a new member (n3, the
// only node left), the attached node's agent adds it and md resyncs it, the lost member is Removed,
// and when n2 returns its agent wipes the partition and the controller drops it and its claim.
// The same run is killed -9 after every state-changing call in turn and resumed by a fresh
// controller and fresh agents: each ends in the same place, never with fewer than one in-sync copy.
import { describe, expect, it } from 'vitest';
import { subsystemNqn } from '../../agent/host/names.ts';
import type { Host } from '../../agent/host/types.ts';
import { agentPass } from '../../agent/pass.ts';
import { Allocator } from '../../controller/allocator.ts';
import { LedgerReconciler } from '../../controller/ledger-reconciler.ts';
import { RebuildReconciler } from '../../controller/rebuild.ts';
import { RelocationReconciler } from '../../controller/relocation.ts';
import { readyCondition } from '../../state/conditions.ts';
import { KeyedLock } from '../../state/lock.ts';
import type { VolumeRecord, VolumeStore } from '../../state/store.ts';
import { KillSwitch } from './kill-switch.ts';
import { cluster, NODES, type NodeName, stage, volume } from './sim-cluster.ts';

const MIN = 60_000;
const T0 = 1_000 * MIN;
const GRACE = 10 * MIN;

/** A cluster with volume `v` on n1 and n2, staged on n1, and a clock and heartbeats the test moves. */
async function lostNodeCluster() {
  const c = cluster();
  await c.store.create(volume('v', ['n1', 'n2']));
  await c.withAgents(c.node('n1').svc.nodeStageVolume(stage('v')));
  // the ledger adopts the record's extents (it was written straight into the store)
  await new LedgerReconciler(c.controller.allocator).pass();
  const clock = { now: T0 };
  const beats = new Map<string, number>(NODES.map((n) => [n, T0]));
  const alive = new Set<NodeName>(NODES);
  const heartbeats = async () => {
    for (const n of alive) beats.set(n, clock.now);
    return new Map(beats);
  };
  /** n2 dies: its target vanishes (n1's leg to it fails), its agent and heartbeat stop. */
  const kill = async (n: NodeName) => {
    alive.delete(n);
    c.peers.setReady(n, false);
    for (const e of await c.node(n).host.listExports()) await c.node(n).host.unexport(e.nqn);
  };
  const revive = (n: NodeName) => {
    alive.add(n);
    c.peers.setReady(n, true);
  };
  /** One agent pass on each live node, through `wrap` (a kill switch) when given. */
  const agents = async (
    wrapHost = (_n: string, h: Host) => h,
    store: VolumeStore = c.store,
    resyncMaxKibPerSec?: number,
  ) => {
    for (const n of NODES) {
      if (!alive.has(n)) continue;
      const { host, listen } = c.node(n);
      // a killed agent's pass dies whole (its first read throws); the others are their own processes
      const r = await agentPass({
        nodeName: n,
        host: wrapHost(n, host),
        store,
        listen,
        locks: new KeyedLock(),
        peers: c.peers,
        resyncMaxKibPerSec,
      }).catch(() => undefined);
      if (n === 'n1')
        lastFailures.splice(0, lastFailures.length, ...(r?.failures.map((f) => f.reason) ?? []));
    }
  };
  const lastFailures: string[] = [];
  const rebuilder = (store: VolumeStore = c.store) =>
    new RebuildReconciler(new Allocator({ store, inventory: c.controller.allocator.inventory }), {
      heartbeats,
      times: { graceMs: GRACE },
      now: () => clock.now,
    });
  /** The controller's pass as `meshstor controller` runs it: relocations (and their releases), then rebuilds. */
  const controllerPass = async (store: VolumeStore = c.store) => {
    const allocator = new Allocator({ store, inventory: c.controller.allocator.inventory });
    await new RelocationReconciler(allocator).pass();
    return rebuilder(store).pass();
  };
  return { c, clock, kill, revive, agents, rebuilder, controllerPass, lastFailures };
}

const layout = (r: VolumeRecord | undefined) => r?.replicas.map((x) => `${x.id}@${x.node}:${x.state}`);

describe('rebuild after node loss', () => {
  it('degraded within the grace period; a node back in time is caught up, not rebuilt', async () => {
    const t = await lostNodeCluster();
    await t.kill('n2');
    t.clock.now = T0 + 2 * MIN;
    await t.agents();
    const degraded = await t.c.store.get('v');
    expect(layout(degraded)).toEqual(['r0@n1:InSync', 'r1@n2:Faulty']);
    expect(degraded && readyCondition(degraded).reason).toBe('Degraded');
    const p = await t.rebuilder().pass();
    expect(p.started).toEqual([]);
    // 10 minutes after n2's last heartbeat
    expect(p.grace).toEqual([{ volume: 'v', replica: 'r1', node: 'n2', rebuildAt: T0 + GRACE }]);

    // back after 5 minutes: its agent exports the member again and n1 re-adds it from the bitmap
    t.clock.now = T0 + 5 * MIN;
    t.revive('n2');
    for (let i = 0; i < 3; i++) await t.agents();
    expect((await t.rebuilder().pass()).started).toEqual([]);
    expect(layout(await t.c.store.get('v'))).toEqual(['r0@n1:InSync', 'r1@n2:InSync']);
    const array = await t.c.node('n1').host.getArray('v');
    expect(array?.members.map((m) => m.state)).toEqual(['in_sync', 'in_sync']);
  });

  it('after the grace period: replaced on n3 (Degraded -> Rebuilding -> InSync), the lost member wiped and released when n2 returns', async () => {
    const t = await lostNodeCluster();
    await t.kill('n2');
    t.clock.now = T0 + 11 * MIN;
    await t.agents();
    const reasons: string[] = [];
    const note = async () => {
      const r = await t.c.store.get('v');
      const why = r && readyCondition(r).reason;
      if (why && reasons.at(-1) !== why) reasons.push(why);
    };
    await note();
    const first = await t.rebuilder().pass();
    expect(first.started).toEqual([
      { volume: 'v', message: 'r1 on n2 (lost) -> r2 on n3/Dn3, from 1 in-sync copy' },
    ]);
    await note();
    for (let i = 0; i < 6 && (await t.c.store.get('v'))?.relocation?.step !== 'done'; i++) {
      await t.agents();
      await note();
    }
    expect(t.lastFailures).toEqual([]);
    await t.rebuilder().pass();
    await note();
    expect(reasons).toEqual(['Degraded', 'Rebuilding', 'InSync']);
    const rebuilt = await t.c.store.get('v');
    expect(layout(rebuilt)).toEqual(['r0@n1:InSync', 'r1@n2:Removed', 'r2@n3:InSync']);
    expect(rebuilt?.relocation).toBeUndefined();
    const array = await t.c.node('n1').host.getArray('v');
    expect(array?.raidDevices).toBe(2);
    expect(array?.degraded).toBe(false);
    expect(array?.members.map((m) => m.state)).toEqual(['in_sync', 'in_sync']);
    // n2's bytes stay claimed while its partition may still exist
    expect((await t.c.store.ledger.read('n2')).claims.map((x) => x.replica)).toEqual(['r1']);

    // n2 returns: it does not export the removed member, wipes it, and the controller releases it
    t.clock.now += MIN;
    t.revive('n2');
    await t.agents();
    expect(await t.c.node('n2').host.listExports()).toEqual([]);
    expect((await t.c.node('n2').host.listDrives())[0]?.partitions).toEqual([]);
    expect((await t.rebuilder().pass()).released).toEqual(['v']);
    expect(layout(await t.c.store.get('v'))).toEqual(['r0@n1:InSync', 'r2@n3:InSync']);
    expect((await t.c.store.ledger.read('n2')).claims).toEqual([]);
  });

  it('caps the resync speed of the array while the new member syncs', async () => {
    const t = await lostNodeCluster();
    await t.kill('n2');
    t.clock.now = T0 + 11 * MIN;
    await t.rebuilder().pass();
    expect(t.c.node('n1').host.resyncSpeedLimitOf('v')).toBeUndefined();
    // n3 exports the new member in the first round; n1 adds it in the second
    for (let i = 0; i < 2; i++) await t.agents(undefined, undefined, 50 * 1024);
    expect(t.c.node('n1').host.resyncSpeedLimitOf('v')).toBe(50 * 1024);
  });

  it('at most N resyncs per node: the volume with one in-sync copy left goes first, the rest queue', async () => {
    const c = cluster();
    const three = volume('three', ['n1', 'n2', 'n3']);
    three.sizeBytes *= 2; // larger, but it keeps two copies
    const one = volume('one', ['n1', 'n2']);
    for (const v of [three, one]) {
      await c.store.create(v);
      await c.withAgents(c.node('n1').svc.nodeStageVolume(stage(v.id)));
    }
    const now = T0 + 30 * MIN;
    const heartbeats = async () =>
      new Map([
        ['n1', now],
        ['n2', T0],
        ['n3', now],
      ]);
    const r = new RebuildReconciler(c.controller.allocator, { heartbeats, perNode: 1, now: () => now });
    const p = await r.pass();
    expect(p.started.map((s) => s.volume)).toEqual(['one']);
    // three's only possible destination would be a node with a member already: placement refuses
    // it, or it waits behind n1's one resync
    expect([...p.queued, ...p.blocked.map((b) => b.volume)]).toEqual(['three']);
  });
});

describe('rebuild crash-and-resume: kill -9 after every state-changing call', () => {
  it('ends with the lost member replaced, wiped and released, whatever call the kill came before', async () => {
    const seen: string[] = [];
    for (let limit = 0; limit < 200; limit++) {
      const t = await lostNodeCluster();
      await t.kill('n2');
      t.clock.now = T0 + 11 * MIN;
      await t.agents();
      let ks = new KillSwitch(limit);
      let returned = false;
      for (let round = 0; ; round++) {
        expect(round, `limit ${limit}: not finished; steps ${ks.steps.join(' ')}`).toBeLessThan(30);
        const store = ks.store(t.c.store);
        await t.controllerPass(store).catch(() => undefined);
        await t.agents((n, h) => ks.host(n, h), store);
        // never below one in-sync copy, killed or not
        const array = await t.c.node('n1').host.getArray('v');
        expect(array?.members.filter((m) => m.state === 'in_sync').length).toBeGreaterThanOrEqual(1);
        if (ks.killedAt) {
          seen.push(ks.killedAt);
          ks = new KillSwitch(); // restarted: the same code over the same hosts and store
          continue;
        }
        const rec = await t.c.store.get('v');
        if (!returned && rec?.replicas.some((x) => x.node === 'n2' && x.state === 'Removed')) {
          t.revive('n2');
          returned = true;
        }
        if (rec?.replicas.length === 2 && !rec.relocation && !rec.replicas.some((x) => x.node === 'n2'))
          break;
      }
      const rec = await t.c.store.get('v');
      expect(layout(rec), `limit ${limit}`).toEqual(['r0@n1:InSync', 'r2@n3:InSync']);
      const array = await t.c.node('n1').host.getArray('v');
      expect(array?.raidDevices).toBe(2);
      expect(array?.members.map((m) => m.state)).toEqual(['in_sync', 'in_sync']);
      expect((await t.c.node('n2').host.listDrives())[0]?.partitions).toEqual([]);
      expect(
        await t.c.node('n1').host.findDeviceByNqn(subsystemNqn({ volumeId: 'v', replicaId: 'r1' })),
      ).toBe(undefined);
      // a claim a kill left behind is an orphan the ledger reconciler releases; none is another's
      await new LedgerReconciler(
        new Allocator({ store: t.c.store, inventory: t.c.controller.allocator.inventory }),
        {
          orphanAfterMs: 0,
        },
      ).pass();
      await new LedgerReconciler(
        new Allocator({ store: t.c.store, inventory: t.c.controller.allocator.inventory }),
        {
          orphanAfterMs: 0,
        },
      ).pass();
      const claims = (await Promise.all(NODES.map((n) => t.c.store.ledger.read(n)))).flatMap((l) =>
        l.claims.map((x) => `${l.node}:${x.replica}`),
      );
      expect(claims.sort(), `limit ${limit}`).toEqual(['n1:r0', 'n3:r2']);
      if (ks.steps.length > 0 && !seen[limit]) break; // the limit passed the last step: no kill happened
    }
    console.log(`[rebuild] killed -9 before each of ${seen.length} calls: ${seen.join(' ')}`);
    // it was killed before each call of the run, from the controller's claim to n2's wipe
    expect(seen.length).toBeGreaterThan(10);
    expect(seen).toEqual(
      expect.arrayContaining(['ledger.write', 'store.replace', 'n1.addMember', 'n2.wipePartition']),
    );
  });
});
