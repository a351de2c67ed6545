// The CSI controller's hot path with 5,000 nodes and 100,000 volumes (2 replicas each), before and
// after the informer-fed placement cache: GetCapacity latency and CreateVolume rate, sequential as
// external-provisioner calls them, plus how many objects each call reads from the state store
// (what the apiserver would have to list and send).
//   before: the list-per-call path (every node and every record read, a ClusterState built)
//   after:  the PlacementCache the `--state kube` controller keeps from informer events
// Both on the in-memory store, so neither pays network or JSON; both check for double booking in
// the store's allocation ledger (docs/adr/0004-allocation-ledger.md), never in the cache: ledger
// reads count as objects read. Then CreateVolume with 16 callers at once (external-provisioner's
// workers), a check that no two records share a byte, and last the decision alone on the live
// model, to show what of CreateVolume is placement and what is the store.
//   node bench/controller.ts [--nodes 5000] [--volumes 100000] [--before 3] [--after 40]
//                            [--callers 16] [--concurrent 64]
import { parseArgs } from 'node:util';
import { PlacementCache } from '../controller/placement-cache.ts';
import { ControllerService } from '../csi/controller.ts';
import type { GetCapacityRequest } from '../csi/types.ts';
import { GiB, MiB } from '../placement/units.ts';
import { msNode } from '../scheduler/test/fixtures.ts';
import { volumeObject } from '../state/kube-store.ts';
import type { ExtentLedger } from '../state/ledger.ts';
import { MemoryVolumeStore, StaticInventory } from '../state/memory-store.ts';
import { agentReady, nodeInfoFrom } from '../state/placement-model.ts';
import type { NodeInventory, VolumeRecord, VolumeStore } from '../state/store.ts';
import { fmt, measure, type Summary, summarize } from './stats.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    volumes: { type: 'string', default: '100000' },
    before: { type: 'string', default: '3' },
    after: { type: 'string', default: '40' },
    callers: { type: 'string', default: '16' },
    concurrent: { type: 'string', default: '64' },
  },
});
const NODES = Number(values.nodes);
const VOLUMES = Number(values.volumes);
const name = (i: number) => `node-${String(i).padStart(5, '0')}`;

// Deterministic pseudo-random numbers (no Math.random: runs are comparable).
let seed = 42;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};

/** Counts the objects each read returns: the list traffic an apiserver would serve. */
class Counting {
  objects = 0;
  written = 0;
  store(s: VolumeStore): VolumeStore {
    return {
      get: async (id) => {
        const r = await s.get(id);
        if (r) this.objects++;
        return r;
      },
      list: async () => {
        const l = await s.list();
        this.objects += l.length;
        return l;
      },
      create: (r) => s.create(r),
      replace: (r) => s.replace(r),
      remove: (id) => s.remove(id),
      ledger: this.ledger(s.ledger),
    };
  }
  /** Ledger reads count as objects read; writes are what the allocation needs anyway. */
  ledger(l: ExtentLedger): ExtentLedger {
    return {
      read: async (node) => {
        this.objects++;
        return l.read(node);
      },
      write: async (x) => {
        this.written++;
        return l.write(x);
      },
      list: async () => {
        const all = await l.list();
        this.objects += all.length;
        return all;
      },
    };
  }
  inventory(i: NodeInventory): NodeInventory {
    return {
      nodes: async () => {
        const l = await i.nodes();
        this.objects += l.length;
        return l;
      },
    };
  }
}

const t0 = performance.now();
const msNodes = Array.from({ length: NODES }, (_, i) =>
  msNode(name(i), { driveBytes: 8 * 1024 * GiB, zone: `z${i % 3}`, drives: 2 }),
);
const store = new MemoryVolumeStore();
const cache = new PlacementCache({ seed: 1 });
for (const n of msNodes) cache.setNode(n);
const nextStart = new Map<string, number>();
const EXTENT = 10 * GiB + 128 * MiB;
for (let v = 0; v < VOLUMES; v++) {
  const a = rand(NODES);
  const b = (a + 1 + rand(NODES - 1)) % NODES;
  const replicas = [name(a), name(b)].map((node, i) => {
    const start = nextStart.get(node) ?? MiB;
    nextStart.set(node, start + EXTENT);
    return {
      id: `r${i}`,
      node,
      drive: 'nvme0',
      extent: { start, end: start + EXTENT },
      state: 'InSync' as const,
    };
  });
  const rec: VolumeRecord = {
    id: `vol-${v}`,
    name: `vol-${v}`,
    sizeBytes: 10 * GiB,
    replicaCount: 2,
    spread: { domain: 'zone', mode: 'preferred' },
    fsType: 'xfs',
    replicas,
    phase: 'Active',
  };
  await store.create(rec);
  cache.setVolume(volumeObject(rec));
}
cache.markSynced();
console.log(
  `loaded ${NODES} nodes and ${VOLUMES} volumes (store + cache) in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
    `heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB, resident ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
);

const inventory = new StaticInventory(msNodes.map((n) => nodeInfoFrom(n, agentReady(n))));
const capacityReq: GetCapacityRequest = {
  volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
  parameters: { replicaCount: '2' },
  accessible_topology: { segments: { 'topology.kubernetes.io/zone': 'z1' } },
};
let created = 0;
const createReq = () => ({
  name: `bench-${created++}`,
  capacity_range: { required_bytes: String(20 * GiB), limit_bytes: '0' },
  volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } }],
  parameters: { replicaCount: '2' },
  secrets: {},
  volume_content_source: null,
  accessibility_requirements: null,
  mutable_parameters: {},
});

async function timed(count: number, fn: () => Promise<unknown>): Promise<Summary> {
  const samples = new Float64Array(count);
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await fn();
    samples[i] = (performance.now() - t) * 1000;
  }
  return summarize(samples, (performance.now() - start) / 1000);
}

/** `count` calls of `fn` with `callers` of them in flight at once; latency per call. */
async function timedConcurrent(count: number, callers: number, fn: () => Promise<unknown>): Promise<Summary> {
  const samples = new Float64Array(count);
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const t = performance.now();
      await fn();
      samples[i] = (performance.now() - t) * 1000;
    }
  };
  await Promise.all(Array.from({ length: callers }, worker));
  return summarize(samples, (performance.now() - start) / 1000);
}

const ms = (us: number) => `${(us / 1000).toFixed(us < 10_000 ? 2 : 0)} ms`;
function line(what: string, s: Summary, reads: Counting): string {
  return (
    `${what.padEnd(28)} ${s.perSecond.toFixed(s.perSecond < 10 ? 2 : 0).padStart(8)}/s  ` +
    `p50 ${ms(s.p50us).padStart(9)}  p99 ${ms(s.p99us).padStart(9)}  ` +
    `${Math.round(reads.objects / s.count).toLocaleString('en-US')} objects read` +
    (reads.written ? `, ${(reads.written / s.count).toFixed(1)} ledger writes` : '') +
    ` per call (n=${s.count})`
  );
}

for (const variant of ['before', 'after'] as const) {
  const reads = new Counting();
  const ctl = new ControllerService({
    store: reads.store(store),
    inventory: reads.inventory(inventory),
    model: variant === 'after' ? cache : undefined,
    seed: 1,
  });
  const rounds = Number(variant === 'before' ? values.before : values.after);
  await ctl.getCapacity(capacityReq); // warm-up
  reads.objects = 0;
  reads.written = 0;
  console.log(
    line(`${variant}: GetCapacity`, await timed(rounds * 5, () => ctl.getCapacity(capacityReq)), reads),
  );
  reads.objects = 0;
  reads.written = 0;
  console.log(
    line(`${variant}: CreateVolume`, await timed(rounds, () => ctl.createVolume(createReq())), reads),
  );
  if (variant === 'after') {
    const callers = Number(values.callers);
    reads.objects = 0;
    reads.written = 0;
    const s = await timedConcurrent(Number(values.concurrent), callers, () => ctl.createVolume(createReq()));
    console.log(line(`after: CreateVolume x${callers}`, s, reads));
  }
  if (ctl.collisions > 0) console.log(`  (${ctl.collisions} collisions withdrawn)`);
  // What the informer would have delivered meanwhile: the records this variant wrote.
  for (const r of await store.list()) if (r.id.startsWith('bench-')) cache.setVolume(volumeObject(r));
}

// No two records share a byte (the guarantee the speed must not cost).
const seen = new Map<string, { start: number; end: number; id: string }[]>();
let overlaps = 0;
for (const r of await store.list()) {
  if (r.phase !== 'Active') continue;
  for (const x of r.replicas) {
    const k = `${x.node}/${x.drive}`;
    const on = seen.get(k) ?? [];
    overlaps += on.filter((o) => o.start < x.extent.end && x.extent.start < o.end).length;
    on.push({ ...x.extent, id: r.id });
    seen.set(k, on);
  }
}
console.log(`double-booked extent pairs among all records: ${overlaps}`);
if (overlaps > 0) process.exitCode = 1;

// Where "after: CreateVolume" spends its time: the decision on the live model is this much; the
// rest is the store (the claims, the record, the check).
const decision = measure(2000, (i) => {
  const id = PlacementCache.reservationId(`decision-${i}`);
  const r = cache.engine.allocate({ volumeId: id, sizeBytes: 20 * GiB, replicaCount: 2 });
  if (!r.ok) throw new Error(r.message);
  cache.engine.cluster.release(id);
});
console.log(`after: the decision alone (allocate on the live model, released): ${fmt(decision)}`);
console.log(`resident memory at the end: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
