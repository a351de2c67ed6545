// Resident memory of `meshstor extender` and `meshstor controller` with 5,000 nodes and 100,000
// volumes loaded, each in a fresh process of its own (this file runs itself once per component).
// The state is built as the other benches build it, from objects shaped as the informers deliver
// them; the informers of @kubernetes/client-node also keep every object they delivered in their
// own cache (ListWatch's object map), so the child keeps them too, in a Map per kind, and reports
// the memory with and without those copies (what the model itself costs).
//   node bench/memory.ts [--nodes 5000] [--volumes 100000]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PlacementCache } from '../controller/placement-cache.ts';
import type { MeshStorNode, MeshStorVolume } from '../kube/crds.ts';
import { GiB } from '../placement/units.ts';
import { ExtenderState } from '../scheduler/state.ts';
import { msNode, msVolume } from '../scheduler/test/fixtures.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    volumes: { type: 'string', default: '100000' },
    component: { type: 'string' },
  },
});
const NODES = Number(values.nodes);
const VOLUMES = Number(values.volumes);
const MiBs = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const name = (i: number) => `node-${String(i).padStart(5, '0')}`;

if (!values.component) {
  // Parent: one fresh child per component, so neither sees the other's garbage.
  for (const component of ['extender', 'controller']) {
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        fileURLToPath(import.meta.url),
        '--component',
        component,
        '--nodes',
        String(NODES),
        '--volumes',
        String(VOLUMES),
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

/** What an informer's cache holds: every object it delivered, by kind and name. */
const informerCache = new Map<string, Map<string, unknown>>();
const keep = (kind: string, key: string, obj: unknown) => {
  let m = informerCache.get(kind);
  if (!m) {
    m = new Map();
    informerCache.set(kind, m);
  }
  m.set(key, obj);
};

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

const t0 = performance.now();
if (values.component === 'extender') {
  const state = new ExtenderState();
  state.setStorageClass('meshstor', 'meshstor.io');
  const now = Date.now();
  for (const n of nodes()) {
    state.setMeshStorNode(n, now);
    keep('meshstornodes', n.metadata.name as string, n);
  }
  for (const { v, i } of volumes()) {
    const id = v.metadata.name as string;
    state.setMeshStorVolume(v);
    keep('meshstorvolumes', id, v);
    const pv = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: {
        ...meta(id, i),
        annotations: { 'pv.kubernetes.io/provisioned-by': 'meshstor.io' },
        finalizers: ['kubernetes.io/pv-protection'],
      },
      spec: {
        capacity: { storage: '10Gi' },
        accessModes: ['ReadWriteOnce'],
        claimRef: {
          kind: 'PersistentVolumeClaim',
          namespace: 'default',
          name: `data-${i}`,
          uid: meta('', i).uid,
        },
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: 'meshstor',
        volumeMode: 'Filesystem',
        csi: { driver: 'meshstor.io', volumeHandle: id, fsType: 'xfs' },
      },
      status: { phase: 'Bound' },
    };
    state.setPv(id, pv.spec.csi.driver, pv.spec.csi.volumeHandle);
    keep('persistentvolumes', id, pv);
    const pvc = {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: {
        ...meta(`data-${i}`, i, 'default'),
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
        volumeName: id,
      },
      status: { phase: 'Bound', capacity: { storage: '10Gi' } },
    };
    state.setPvc(
      'default',
      `data-${i}`,
      {
        uid: pvc.metadata.uid,
        volumeName: id,
        storageClassName: 'meshstor',
        requestBytes: 10 * GiB,
        selectedNode: '',
      },
      now,
    );
    keep('persistentvolumeclaims', `default/data-${i}`, pvc);
  }
  report('extender (MeshStorNodes, MeshStorVolumes, PVs, PVCs; ExtenderState)', state.sizes());
} else {
  const cache = new PlacementCache({ seed: 1 });
  for (const n of nodes()) {
    cache.setNode(n);
    keep('meshstornodes', n.metadata.name as string, n);
  }
  for (const { v } of volumes()) {
    cache.setVolume(v);
    keep('meshstorvolumes', v.metadata.name as string, v);
  }
  cache.markSynced();
  report('controller (MeshStorNodes, MeshStorVolumes; PlacementCache)', cache.sizes());
}

function report(what: string, sizes: object): void {
  const loadSecs = ((performance.now() - t0) / 1000).toFixed(1);
  const full = settle();
  const objects = [...informerCache.values()].reduce((n, m) => n + m.size, 0);
  informerCache.clear(); // what is left is the model alone
  const model = settle();
  console.log(
    `${what}: ${NODES} nodes, ${VOLUMES} volumes, loaded in ${loadSecs} s; ${JSON.stringify(sizes)}\n` +
      `  with the informers' ${objects} cached objects: resident ${MiBs(full.rss)}, heap used ${MiBs(full.heapUsed)}\n` +
      `  model alone (object caches dropped):        resident ${MiBs(model.rss)}, heap used ${MiBs(model.heapUsed)}\n` +
      `  empty process:                               resident ${MiBs(base.rss)}, heap used ${MiBs(base.heapUsed)}`,
  );
}
