// Expansion when growth in place is blocked (ADR 0009), on three SimulatedHost nodes sharing one
// store: ControllerExpandVolume moves the blocked member to an extent of the new size through the
// relocation steps, answers ABORTED meanwhile, then grows; NodeExpandVolume grows md and XFS. And
// the same run killed (kill -9: no step after it runs, every process starts again with nothing in
// memory) between every two steps of it — record and ledger writes and host commands alike.
import { describe, expect, it } from 'vitest';
import { SimFabric, SimulatedHost } from '../../agent/host/simulated.ts';
import { HostInventory } from '../../agent/host-inventory.ts';
import { Claims, ownerOf } from '../../controller/claims.ts';
import { ExpansionReconciler } from '../../controller/expansion.ts';
import { RelocationReconciler } from '../../controller/relocation.ts';
import { replicaExtentBytes } from '../../placement/geometry.ts';
import { GiB, MiB } from '../../placement/units.ts';
import { expandingCondition } from '../../state/expansion-condition.ts';
import type { ExtentLedger } from '../../state/ledger.ts';
import { MemoryVolumeStore, StaticPeers } from '../../state/memory-store.ts';
import type { VolumeRecord, VolumeStore } from '../../state/store.ts';
import { ControllerService } from '../controller.ts';
import { codeFor } from '../errors.ts';
import { clusterNode } from './agents.ts';
import { stageRequest } from './requests.ts';

const NODES = ['n1', 'n2', 'n3'] as const;
type NodeName = (typeof NODES)[number];
const ID = 'grow-me';
const TARGET = 2 * GiB;

class Killed extends Error {}

/** Counts steps (writes and host commands); once `limit` ran, every process is dead until restarted. */
class Killer {
  steps = 0;
  limit: number | undefined;
  dead = false;
  kills = 0;
  step(): void {
    if (this.limit === undefined) return;
    if (this.dead) throw new Killed('killed');
    if (this.steps >= this.limit) {
      this.dead = true;
      this.kills++;
      throw new Killed(`killed after step ${this.steps}`);
    }
    this.steps++;
  }
}

const isKilled = (e: unknown) => e instanceof Killed;

/** Host commands that change something (the reads are not steps). */
const READS = /^(get|list|find|read|filesystemUsage)/;

function killable<T extends object>(target: T, k: Killer): T {
  return new Proxy(target, {
    get(t, name, receiver) {
      const v = Reflect.get(t, name, receiver);
      if (typeof v !== 'function' || typeof name !== 'string' || READS.test(name)) return v;
      return (...args: unknown[]) => {
        k.step();
        return v.apply(t, args);
      };
    },
  });
}

/** The store, its ledger and every host outlive a kill; only the processes' memory is lost. */
function world() {
  const k = new Killer();
  const fabric = new SimFabric();
  const mem = new MemoryVolumeStore();
  const ledger: ExtentLedger = {
    read: (node) => mem.ledger.read(node),
    write: async (l) => {
      k.step();
      return mem.ledger.write(l);
    },
  } as ExtentLedger;
  const store: VolumeStore = {
    get: (id) => mem.get(id),
    list: () => mem.list(),
    create: async (r) => {
      k.step();
      return mem.create(r);
    },
    replace: async (r) => {
      k.step();
      return mem.replace(r);
    },
    remove: async (id) => {
      k.step();
      return mem.remove(id);
    },
    ledger,
  };
  const peers = new StaticPeers();
  const hosts = new Map(
    NODES.map((name) => [
      name,
      new SimulatedHost({
        hostNqn: `nqn.2014-08.org.nvmexpress:uuid:${name}`,
        fabric,
        drives: [{ id: `D${name}`, sizeBytes: 10 * GiB }],
      }),
    ]),
  );
  const host = (n: NodeName) => hosts.get(n) as SimulatedHost;
  return { k, mem, store, peers, host };
}
type World = ReturnType<typeof world>;

/** Every process of the cluster, started afresh (what runs after a kill -9). */
function processes(w: World) {
  const nodes = new Map(
    NODES.map((name, i) => [
      name,
      clusterNode({
        name,
        host: killable(w.host(name), w.k),
        store: w.store,
        peers: w.peers,
        listen: { address: `127.0.0.${i + 2}`, port: 4420 },
        connectWaitMs: 2_000,
      }),
    ]),
  );
  const node = (n: NodeName) => nodes.get(n) as NonNullable<ReturnType<typeof nodes.get>>;
  const controller = new ControllerService({
    store: w.store,
    inventory: {
      nodes: async () =>
        (
          await Promise.all(NODES.map((n) => new HostInventory(n, undefined, w.host(n), w.mem).nodes()))
        ).flat(),
    },
  });
  return {
    node,
    controller,
    relocation: new RelocationReconciler(controller.allocator),
    expansion: new ExpansionReconciler(controller.allocator),
  };
}

function member(id: string, n: NodeName, start: number, bytes: number) {
  return { id, node: n, drive: `D${n}`, extent: { start, end: start + bytes }, state: 'Pending' as const };
}

/**
 * A 1 GiB volume on n1 and n2, and right after its extent on n1 another volume's: n1's member
 * cannot grow in place, n2's can. Staged on n1 (the blocked member is the local leg).
 */
async function setUp(w: World, staged = true) {
  const extent = replicaExtentBytes(GiB);
  const base: Omit<VolumeRecord, 'id' | 'name' | 'replicas' | 'replicaCount'> = {
    sizeBytes: GiB,
    spread: { domain: 'zone', mode: 'none' },
    fsType: 'xfs',
    phase: 'Active',
  };
  await w.mem.create({
    ...base,
    id: ID,
    name: ID,
    replicaCount: 2,
    replicas: [member('r0', 'n1', 64 * MiB, extent), member('r1', 'n2', 64 * MiB, extent)],
  });
  await w.mem.create({
    ...base,
    id: 'neighbour',
    name: 'neighbour',
    replicaCount: 1,
    replicas: [member('r0', 'n1', 64 * MiB + extent, extent)],
  });
  // claimed as the allocator claims what it places
  const claims = new Claims(w.mem.ledger);
  for (const r of await w.mem.list()) expect(await claims.claim(ownerOf(r), r.replicas)).toBeUndefined();
  if (staged) await stageOnN1(w);
}

async function stageOnN1(w: World) {
  const p = processes(w);
  await agentsWhile(p, p.node('n1').svc.nodeStageVolume(stageRequest(ID, `/stage/${ID}`)));
  for (const n of NODES) await p.node(n).pass();
  const staged = await w.mem.get(ID);
  expect(staged?.replicas.every((r) => r.state === 'InSync')).toBe(true);
}

type Procs = ReturnType<typeof processes>;

/** Runs every agent's pass over and over until `work` settles, as their resync loops would. */
async function agentsWhile<T>(p: Procs, work: Promise<T>): Promise<T> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  settled.catch(() => {});
  while (!done) {
    for (const n of NODES)
      await p
        .node(n)
        .pass()
        .catch((e) => (isKilled(e) ? undefined : Promise.reject(e)));
    await new Promise((r) => setTimeout(r, 5));
  }
  return settled;
}

/**
 * One round of everything that runs: the resizer's call (and kubelet's NodeExpandVolume once it
 * succeeds), every agent's pass, the controller's relocation and expansion passes. Returns the
 * size NodeExpandVolume reported once the volume grew, and what ControllerExpandVolume answered.
 */
async function round(p: Procs): Promise<{ grown?: number; answer: string }> {
  let answer = 'OK';
  try {
    await p.controller.controllerExpandVolume({
      volume_id: ID,
      capacity_range: { required_bytes: String(TARGET), limit_bytes: '0' },
      secrets: {},
      volume_capability: null,
    });
  } catch (e) {
    if (isKilled(e)) return { answer: 'killed' };
    answer = `${codeFor(e)}: ${(e as Error).message}`;
  }
  if (answer === 'OK') {
    // the owners grow their partitions in their passes; md grows to the smallest member
    for (const n of NODES)
      await p
        .node(n)
        .pass()
        .catch((e) => (isKilled(e) ? undefined : Promise.reject(e)));
    const r = await agentsWhile(
      p,
      p.node('n1').svc.nodeExpandVolume({
        volume_id: ID,
        volume_path: `/stage/${ID}`,
        capacity_range: { required_bytes: String(TARGET), limit_bytes: '0' },
      }),
    ).catch((e) => (isKilled(e) || codeFor(e) === 14 ? undefined : Promise.reject(e)));
    if (r) return { grown: Number(r.capacity_bytes), answer };
  }
  for (const n of NODES)
    await p
      .node(n)
      .pass()
      .catch((e) => (isKilled(e) ? undefined : Promise.reject(e)));
  await p.relocation.pass();
  await p.expansion.pass();
  return { answer };
}

/** Runs rounds until the volume grew, starting every process afresh after each kill. */
async function runToEnd(w: World, rounds = 40) {
  let p = processes(w);
  const answers: string[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = await round(p);
    answers.push(r.answer);
    if (w.k.dead) {
      w.k.dead = false;
      w.k.limit = undefined; // one kill per run
      p = processes(w);
      continue;
    }
    if (r.grown !== undefined) return { grown: r.grown, answers };
  }
  throw new Error(`did not finish in ${rounds} rounds: ${answers.slice(-3).join(' | ')}`);
}

/** What must hold after the expansion, whatever was killed on the way. */
async function checkGrown(w: World, grown: number) {
  expect(grown).toBeGreaterThanOrEqual(TARGET);
  const rec = (await w.mem.get(ID)) as VolumeRecord;
  expect(rec.sizeBytes).toBe(TARGET);
  expect(rec.expansion).toBeUndefined();
  expect(rec.relocation).toBeUndefined();
  expect(rec.replicas.map((r) => [r.node, r.state]).sort()).toEqual([
    ['n1', 'InSync'],
    ['n2', 'InSync'],
  ]);
  const moved = rec.replicas.find((r) => r.node === 'n1') as VolumeRecord['replicas'][number];
  expect(moved.id).not.toBe('r0');
  expect(moved.extent.end - moved.extent.start).toBeGreaterThanOrEqual(replicaExtentBytes(TARGET));
  const stayed = rec.replicas.find((r) => r.node === 'n2');
  expect(stayed?.id).toBe('r1'); // grown in place
  expect(stayed?.extent).toEqual({ start: 64 * MiB, end: 64 * MiB + replicaExtentBytes(TARGET) });
  // n1: one array, two in-sync members of the new size, the old partition gone
  const array = await w.host('n1').getArray(ID);
  expect(array?.raidDevices).toBe(2);
  expect(array?.degraded).toBe(false);
  expect(array?.members.filter((m) => m.state === 'in_sync')).toHaveLength(2);
  expect(array?.sizeBytes).toBeGreaterThanOrEqual(TARGET);
  const parts = (await w.host('n1').listDrives())[0]?.partitions.filter((x) => x.owner?.volumeId === ID);
  expect(parts?.map((x) => x.owner?.replicaId)).toEqual([moved.id]);
  expect((await w.host('n1').filesystemUsage(`/stage/${ID}`)).sizeBytes).toBeGreaterThanOrEqual(TARGET);
  // The ledger covers every extent the records hold, and no two volumes' claims share a byte.
  const records = await w.mem.list();
  for (const n of NODES) {
    const claims = (await w.mem.ledger.read(n)).claims;
    for (const r of records)
      for (const x of r.replicas.filter((y) => y.node === n)) {
        const own = claims.filter((c) => c.volume === r.id && c.replica === x.id && !c.revokedAt);
        expect(own.some((c) => c.start <= x.extent.start && c.end >= x.extent.end)).toBe(true);
      }
    for (const a of claims)
      for (const b of claims)
        if (a.volume !== b.volume) expect(a.end <= b.start || b.end <= a.start).toBe(true);
  }
  // the neighbour was never touched
  expect((await w.mem.get('neighbour'))?.replicas[0]?.extent).toEqual({
    start: 64 * MiB + replicaExtentBytes(GiB),
    end: 64 * MiB + 2 * replicaExtentBytes(GiB),
  });
}

describe('expansion when growth in place is blocked', () => {
  it('moves the blocked member to a larger extent (ABORTED meanwhile, Expanding shown), then grows md and XFS online', async () => {
    const w = world();
    await setUp(w);
    const p = processes(w);
    const first = await round(p);
    expect(first.answer).toMatch(
      /^10: .*expansion to 2147483648 bytes in progress: moving r0 to a larger extent on n1 as r2/,
    );
    const pending = (await w.mem.get(ID)) as VolumeRecord;
    expect(pending.expansion).toEqual({ sizeBytes: TARGET });
    expect(pending.relocation).toMatchObject({ fromReplica: 'r0', toReplica: 'r2', toNode: 'n1' });
    expect(pending.sizeBytes).toBe(GiB); // not grown until the move is done
    expect(expandingCondition(pending)).toMatchObject({ type: 'Expanding', status: 'True' });
    const { grown, answers } = await runToEnd(w);
    expect(answers.at(-1)).toBe('OK');
    expect(answers.slice(0, -1).every((a) => a.startsWith('10: '))).toBe(true); // only ABORTED before
    await checkGrown(w, grown);
    expect(expandingCondition((await w.mem.get(ID)) as VolumeRecord)).toBeUndefined();
  });

  it('waits (ABORTED, the reason recorded) without a pod or while a member is out of sync; the expansion pass carries it on alone', async () => {
    const w = world();
    await setUp(w, false);
    const p = processes(w);
    const expand = (bytes: number) =>
      p.controller
        .controllerExpandVolume({
          volume_id: ID,
          capacity_range: { required_bytes: String(bytes), limit_bytes: '0' },
          secrets: {},
          volume_capability: null,
        })
        .then(
          (r) => r.capacity_bytes,
          (e) => `${codeFor(e)}: ${(e as Error).message}`,
        );
    expect(await expand(TARGET)).toMatch(/^10: .*waiting for a pod to stage it/);
    // a larger size while pending raises the target; a smaller one keeps the larger
    expect(await expand(3 * GiB)).toMatch(/^10: .*expansion to 3221225472 bytes in progress/);
    expect(await expand(TARGET)).toMatch(/^10: .*expansion to 3221225472 bytes in progress/);
    let rec = (await w.mem.get(ID)) as VolumeRecord;
    expect(rec.expansion).toMatchObject({ sizeBytes: 3 * GiB, waiting: expect.stringMatching(/pod/) });
    expect(rec.relocation).toBeUndefined();
    expect((await p.expansion.pass()).waiting).toEqual([
      { volume: ID, message: expect.stringMatching(/pod/) },
    ]);

    // staged, but a member out of sync: still waiting (a degraded volume is caught up first)
    await stageOnN1(w);
    rec = (await w.mem.get(ID)) as VolumeRecord;
    (rec.replicas[1] as VolumeRecord['replicas'][number]).state = 'Syncing';
    await w.mem.replace(rec);
    expect((await p.expansion.pass()).waiting[0]?.message).toMatch(/every member is in sync/);
    expect((await w.mem.get(ID))?.relocation).toBeUndefined();

    // the agents report the member in sync again; from here on only the passes run, no resizer
    const started: string[] = [];
    const grown: number[] = [];
    for (let i = 0; i < 20 && grown.length === 0; i++) {
      for (const n of NODES) await p.node(n).pass();
      await p.relocation.pass();
      const x = await p.expansion.pass();
      started.push(...x.started.map((m) => m.move));
      grown.push(...x.grown.map((g) => g.sizeBytes));
    }
    expect(started).toEqual(['r0 -> n1/Dn1 as r2']);
    expect(grown).toEqual([3 * GiB]);
    rec = (await w.mem.get(ID)) as VolumeRecord;
    expect(rec.sizeBytes).toBe(3 * GiB);
    expect(rec.expansion).toBeUndefined();
    // the resizer's next call: OK at once, and again for a smaller size (no shrinking)
    expect(await expand(3 * GiB)).toBe(String(3 * GiB));
    expect(await expand(TARGET)).toBe(String(3 * GiB));
  });

  it('resumes after a kill -9 between every two steps, and ends as the uninterrupted run does', async () => {
    const clean = world();
    await setUp(clean);
    clean.k.limit = Number.POSITIVE_INFINITY;
    await checkGrown(clean, (await runToEnd(clean)).grown);
    const total = clean.k.steps;
    expect(total).toBeGreaterThan(10); // claims, record writes, add, sync, remove, wipe, grow...
    for (let n = 0; n < total; n++) {
      const w = world();
      await setUp(w);
      w.k.limit = n;
      const { grown } = await runToEnd(w);
      expect(w.k.kills).toBe(1); // it was killed, once, after step n
      await checkGrown(w, grown);
    }
  }, 300_000);
});
