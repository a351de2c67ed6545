// Resident memory of `meshstor extender` and `meshstor controller` with 5,000 nodes and 100,000
// volumes loaded, each in a fresh process of its own (this file runs itself once per component).
// Each component's real informers (kube/informers.ts: client-node's ListWatch, the slims and the
// handlers the component runs) load its state from lists served in pages of objects shaped as the
// apiserver sends them (without managedFields, which the slims drop anyway); only the transport is
// a stand-in (no HTTP). Each page goes through JSON text and JSON.parse as a real list response
// does, so the strings the handlers keep are the parser's (flat, short ones internalized), not the
// generator's concatenations. Reported: the highest resident size while loading, and the
// sizes after a forced GC right after loading and again after an idle wait.
//   node bench/memory.ts [--nodes 5000] [--volumes 100000] [--idle-ms 10000] [--no-heap-cap]
//                        [--component extender|controller --heap-snapshot FILE]
// With --heap-snapshot a component's process writes a V8 heap snapshot after loading (open it in
// Chrome's DevTools, Memory tab) to see what holds the heap; use a smaller load for it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import type {
  KubernetesListObject,
  KubernetesObject,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
} from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { placementCacheFeeds } from '../controller/live-model.ts';
import { PlacementCache } from '../controller/placement-cache.ts';
import type { MeshStorNode, MeshStorVolume } from '../kube/crds.ts';
import {
  type InformerHandlers,
  type RunningInformer,
  runInformer,
  type WatchLike,
} from '../kube/informers.ts';
import { makeLogger } from '../kube/log.ts';
import { GiB } from '../placement/units.ts';
import { extenderFeeds } from '../scheduler/feeds.ts';
import { ExtenderState } from '../scheduler/state.ts';
import { msNode, msVolume } from '../scheduler/test/fixtures.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    volumes: { type: 'string', default: '100000' },
    component: { type: 'string' },
    'idle-ms': { type: 'string', default: '10000' },
    'no-heap-cap': { type: 'boolean', default: false },
    'heap-snapshot': { type: 'string' },
  },
});
const NODES = Number(values.nodes);
const VOLUMES = Number(values.volumes);
const IDLE_MS = Number(values['idle-ms']);
const MiBs = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const name = (i: number) => `node-${String(i).padStart(5, '0')}`;

if (!values.component) {
  // Parent: one fresh child per component, so neither sees the other's garbage, each with the
  // heap sizes the chart gives it (NODE_OPTIONS=--max-old-space-size=heapMiB
  // --max-semi-space-size=semiSpaceMiB) unless --no-heap-cap.
  const chart = parseYaml(
    readFileSync(new URL('../deploy/helm/meshstor/values.yaml', import.meta.url), 'utf8'),
  ) as Record<
    string,
    { heapMiB?: number; semiSpaceMiB?: number; resources?: { limits?: { memory?: string } } }
  >;
  for (const component of ['extender', 'controller']) {
    const { heapMiB, semiSpaceMiB } = chart[component] ?? {};
    const cap =
      values['no-heap-cap'] || !heapMiB
        ? []
        : [
            `--max-old-space-size=${heapMiB}`,
            ...(semiSpaceMiB ? [`--max-semi-space-size=${semiSpaceMiB}`] : []),
          ];
    console.log(
      `${component}: ${cap.length ? `V8 ${cap.join(' ')}` : 'no heap ceiling (V8 default)'}, container limit in the chart ${chart[component]?.resources?.limits?.memory ?? 'none'}`,
    );
    const r = spawnSync(
      process.execPath,
      [
        ...cap,
        '--expose-gc',
        fileURLToPath(import.meta.url),
        '--component',
        component,
        '--nodes',
        String(NODES),
        '--volumes',
        String(VOLUMES),
        '--idle-ms',
        String(IDLE_MS),
      ],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  process.exit(0);
}

const gc = (globalThis as { gc?: () => void }).gc;
function settle(): NodeJS.MemoryUsage {
  gc?.();
  gc?.();
  return process.memoryUsage();
}
const base = settle();

// Deterministic pseudo-random numbers, as in the other benches.
let seed = 42;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};
const meta = (n: string, i: number, namespace?: string) => ({
  name: n,
  ...(namespace ? { namespace } : {}),
  uid: `0a1b2c3d-${String(i).padStart(4, '0')}-4e5f-8a9b-${String(i).padStart(12, '0')}`,
  resourceVersion: String(100_000 + i),
  creationTimestamp: '2026-11-28T10:00:00Z',
});

function* nodes(): Generator<MeshStorNode> {
  const now = Date.now();
  for (let i = 0; i < NODES; i++) {
    const n = msNode(name(i), { driveBytes: 8 * 1024 * GiB, heartbeat: now, zone: `z${i % 3}`, drives: 2 });
    n.metadata = meta(name(i), i);
    yield n;
  }
}
function* volumes(): Generator<{ v: MeshStorVolume; i: number }> {
  const nextStart = new Map<string, number>();
  for (let i = 0; i < VOLUMES; i++) {
    const a = rand(NODES);
    const b = (a + 1 + rand(NODES - 1)) % NODES;
    const on = [name(a), name(b)];
    const start = Math.max(nextStart.get(on[0] as string) ?? 1, nextStart.get(on[1] as string) ?? 1);
    const v = msVolume(`pvc-${meta('', i).uid}`, on, { sizeBytes: 10 * GiB, start: start * 2 ** 20 });
    for (const n of on) nextStart.set(n, start + 10 * 1024 + 128);
    v.metadata = meta(v.metadata.name as string, i);
    yield { v, i };
  }
}

const pvcName = (i: number) => `data-${i}`;
// Core objects come out of client-node's deserializer with Dates for timestamps.
const coreMeta = (n: string, i: number, namespace?: string) => ({
  ...meta(n, i, namespace),
  creationTimestamp: new Date('2026-11-28T10:00:00Z'),
});
function pv(i: number): V1PersistentVolume {
  const id = `pvc-${meta('', i).uid}`;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      ...coreMeta(id, i),
      annotations: { 'pv.kubernetes.io/provisioned-by': 'meshstor.io' },
      finalizers: ['kubernetes.io/pv-protection'],
    },
    spec: {
      capacity: { storage: '10Gi' },
      accessModes: ['ReadWriteOnce'],
      claimRef: {
        kind: 'PersistentVolumeClaim',
        namespace: 'default',
        name: pvcName(i),
        uid: meta('', i).uid,
      },
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: 'meshstor',
      volumeMode: 'Filesystem',
      csi: { driver: 'meshstor.io', volumeHandle: id, fsType: 'xfs' },
    },
    status: { phase: 'Bound' },
  };
}
function pvc(i: number): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      ...coreMeta(pvcName(i), i, 'default'),
      annotations: {
        'pv.kubernetes.io/bind-completed': 'yes',
        'volume.kubernetes.io/storage-provisioner': 'meshstor.io',
      },
      finalizers: ['kubernetes.io/pvc-protection'],
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '10Gi' } },
      storageClassName: 'meshstor',
      volumeName: `pvc-${meta('', i).uid}`,
    },
    status: { phase: 'Bound', capacity: { storage: '10Gi' } },
  };
}
function* indexed<T>(count: number, make: (i: number) => T): Generator<T> {
  for (let i = 0; i < count; i++) yield make(i);
}

/** The highest resident size seen while the lists were served (sampled once per page). */
let peakRss = 0;
/** The largest the young generation (V8's new space) was while loading, sampled likewise. */
let peakYoung = 0;
const youngSize = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;

/** Serves a list in pages from a generator, as the apiserver serves a list with `limit`. */
function pagesOf<T extends KubernetesObject>(items: Iterator<T>) {
  return async (page: { limit: number }): Promise<KubernetesListObject<T>> => {
    const out: T[] = [];
    let done = false;
    while (out.length < page.limit) {
      const n = items.next();
      if (n.done) {
        done = true;
        break;
      }
      out.push(n.value);
    }
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    peakYoung = Math.max(peakYoung, youngSize());
    await new Promise(setImmediate); // a page arrives on its own turn of the event loop
    const parsed = JSON.parse(JSON.stringify(out)) as T[];
    return { metadata: { resourceVersion: '1', ...(done ? {} : { _continue: 'more' }) }, items: parsed };
  };
}

/** A watch that stays open and quiet: the load is what the lists delivered. */
const quietWatch: WatchLike = { watch: async () => new AbortController() };
const log = makeLogger('bench', 'warn');

function feed<T extends KubernetesObject>(
  name: string,
  items: Iterator<T>,
  f: { slim: (o: T) => T; handlers: InformerHandlers<T> },
): RunningInformer {
  return runInformer<T>(
    quietWatch,
    name,
    { path: `/${name}`, list: pagesOf(items), slim: f.slim },
    f.handlers,
    log,
  );
}

const t0 = performance.now();
let informers: RunningInformer[] = [];
if (values.component === 'extender') {
  const state = new ExtenderState();
  const feeds = extenderFeeds(state);
  const sc = { metadata: { name: 'meshstor', resourceVersion: '1' }, provisioner: 'meshstor.io' };
  // Nodes first, then the rest at once, as the informers' first lists usually land.
  const nodeInformer = feed('meshstornodes', nodes(), feeds.meshStorNodes);
  await nodeInformer.whenSynced;
  informers = [
    nodeInformer,
    feed('storageclasses', [sc][Symbol.iterator](), feeds.storageClasses),
    feed(
      'meshstorvolumes',
      (function* () {
        for (const { v } of volumes()) yield v;
      })(),
      feeds.meshStorVolumes,
    ),
    feed('persistentvolumes', indexed(VOLUMES, pv), feeds.persistentVolumes),
    feed('persistentvolumeclaims', indexed(VOLUMES, pvc), feeds.persistentVolumeClaims),
  ];
  await Promise.all(informers.map((i) => i.whenSynced));
  await report('extender (MeshStorNodes, MeshStorVolumes, PVs, PVCs; ExtenderState)', () => state.sizes());
} else {
  const cache = new PlacementCache({ seed: 1 });
  const feeds = placementCacheFeeds(cache);
  const nodeInformer = feed('meshstornodes', nodes(), feeds.nodes);
  await nodeInformer.whenSynced;
  informers = [
    nodeInformer,
    feed(
      'meshstorvolumes',
      (function* () {
        for (const { v } of volumes()) yield v;
      })(),
      feeds.volumes,
    ),
  ];
  await Promise.all(informers.map((i) => i.whenSynced));
  cache.markSynced();
  await report('controller (MeshStorNodes, MeshStorVolumes; PlacementCache)', () => cache.sizes());
}

async function report(what: string, sizes: () => object): Promise<void> {
  const loadSecs = ((performance.now() - t0) / 1000).toFixed(1);
  const loaded = settle();
  if (values['heap-snapshot']) writeHeapSnapshot(values['heap-snapshot']);
  const tracked = informers.reduce((n, i) => n + i.tracked(), 0);
  // A running process is idle between events: V8 returns freed pages to the system in the
  // background then, so the resident size it settles to is measured after an idle wait.
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const idle = settle();
  await Promise.all(informers.map((i) => i.stop()));
  const line = (m: NodeJS.MemoryUsage) =>
    `resident ${MiBs(m.rss)}, heap used ${MiBs(m.heapUsed)} of ${MiBs(m.heapTotal)}`;
  console.log(
    `${what}: ${NODES} nodes, ${VOLUMES} volumes, loaded in ${loadSecs} s; ${JSON.stringify(sizes())}\n` +
      `  while loading (highest, sampled per page): resident ${MiBs(peakRss)}, young generation ${MiBs(peakYoung)}\n` +
      `  loaded, informers running (${tracked} objects tracked): ${line(loaded)}\n` +
      `  the same after ${IDLE_MS / 1000} s idle:                ${line(idle)}\n` +
      `  empty process (client-node imported):       ${line(base)}`,
  );
}
