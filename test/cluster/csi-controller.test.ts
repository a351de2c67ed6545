// The CSI controller on its Kubernetes state (MeshStorVolume / MeshStorNode) against the real
// apiserver: finalizer-guarded deletion, resourceVersion-guarded writes, the allocation ledger,
// two and sixteen controllers racing, and a controller that dies after its claim or its record.
import { status } from '@grpc/grpc-js';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ownerOf } from '../../controller/claims.ts';
import { LedgerReconciler } from '../../controller/ledger-reconciler.ts';
import { startPlacementCache } from '../../controller/live-model.ts';
import { PlacementCache } from '../../controller/placement-cache.ts';
import { ControllerService } from '../../csi/controller.ts';
import { toCsiError } from '../../csi/errors.ts';
import { NODE_KEY } from '../../csi/topology.ts';
import {
  GROUP,
  type MeshStorLedger,
  type MeshStorNode,
  type MeshStorVolume,
  PLURAL,
  VERSION,
} from '../../kube/crds.ts';
import { makeLogger } from '../../kube/log.ts';
import { GiB } from '../../placement/units.ts';
import type { StateError } from '../../state/errors.ts';
import { FINALIZER, KubeNodeInventory, KubeVolumeStore } from '../../state/kube-store.ts';
import type { VolumeRecord, VolumeStore } from '../../state/store.ts';
import { Kube } from './kube.ts';

let k: Kube;
const volumes = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorVolume };
const ledgerPlural = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorLedger };

beforeAll(async () => {
  k = new Kube(inject('cluster').kubeconfig);
  for (const [name, zone] of [
    ['csi-n1', 'za'],
    ['csi-n2', 'zb'],
    ['csi-n3', 'zc'],
  ] as const) {
    await k.createMeshStorNode(name, { driveBytes: 200 * GiB, zone });
  }
});

const controller = (store?: VolumeStore) =>
  new ControllerService({
    store: store ?? new KubeVolumeStore(k.kc),
    inventory: new KubeNodeInventory(k.kc),
    seed: 7,
  });

const createReq = (name: string, gib: number, preferred?: string) => ({
  name,
  capacity_range: { required_bytes: String(gib * GiB), limit_bytes: '0' },
  volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } }],
  parameters: { replicaCount: '2' },
  secrets: {},
  volume_content_source: null,
  accessibility_requirements: preferred
    ? { requisite: [], preferred: [{ segments: { [NODE_KEY]: preferred } }] }
    : null,
  mutable_parameters: {},
});

async function getVolume(
  name: string,
): Promise<(MeshStorVolume & { metadata: { deletionTimestamp?: string } }) | undefined> {
  try {
    return (await k.custom.getClusterCustomObject({ ...volumes, name })) as MeshStorVolume;
  } catch (e) {
    if ((e as { code?: number }).code === 404) return undefined;
    throw e;
  }
}

async function reportPartition(
  node: string,
  owner?: { volume: string; replica: string; start: number; end: number },
) {
  const n = (await k.custom.getClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL.MeshStorNode,
    name: node,
  })) as MeshStorNode;
  const drive = n.status?.drives?.[0];
  if (!drive) throw new Error(`${node} has no drive`);
  drive.partitions = owner
    ? [{ start: owner.start, end: owner.end, owner: { volume: owner.volume, replica: owner.replica } }]
    : [];
  await k.custom.replaceClusterCustomObjectStatus({
    group: GROUP,
    version: VERSION,
    plural: PLURAL.MeshStorNode,
    name: node,
    body: n,
  });
}

/**
 * `perController` creates at once on each controller (six on each of two by default); whatever
 * survives must not share a byte, and every surviving record's bytes are claimed in the ledger.
 */
async function race(
  prefix: string,
  ctls: ControllerService[],
  perController = 6,
  gib = 3,
  mustKeep = perController * ctls.length - 2,
): Promise<void> {
  const names = Array.from({ length: perController }, (_, i) => `${prefix}-${i}`);
  const results = await Promise.allSettled(
    names.flatMap((n) => ctls.map((c, j) => c.createVolume(createReq(`${n}-${j}`, gib)))),
  );
  const failures = results
    .filter((r) => r.status === 'rejected')
    .map((r) => toCsiError((r as PromiseRejectedResult).reason));
  for (const f of failures) expect(f.code, f.message).toBe(status.ABORTED);
  const l = (await k.custom.listClusterCustomObject(volumes)) as { items: MeshStorVolume[] };
  const live = l.items.filter(
    (v) =>
      v.metadata.name.startsWith(`${prefix}-`) &&
      !(v.metadata as { deletionTimestamp?: string }).deletionTimestamp,
  );
  expect(live.length).toBe(results.length - failures.length);
  const collisions = ctls.reduce((n, c) => n + c.collisions, 0);
  console.log(
    `${prefix}: ${ctls.length} controllers: ${live.length} of ${results.length} volumes kept, ${failures.length} ABORTED, ${collisions} claims refused and placed again`,
  );
  // Same seed, same state, same moment: separate controllers really collide, so the yield path
  // is exercised. (One controller's own callers never do: its decisions are serialised.)
  if (ctls.length > 1) expect(collisions).toBeGreaterThan(0);
  expect(live.length).toBeGreaterThanOrEqual(mustKeep);
  const taken = live.flatMap((v) =>
    (v.spec.replicas ?? []).map((r) => ({ k: `${r.node}/${r.drive}`, ...r.extent, v: v.metadata.name })),
  );
  for (const x of taken) {
    for (const y of taken) {
      if (x !== y && x.k === y.k)
        expect(x.end <= y.start || y.end <= x.start, `${x.v} overlaps ${y.v}`).toBe(true);
    }
  }
  const ledgers = (await k.custom.listClusterCustomObject(ledgerPlural)) as { items: MeshStorLedger[] };
  for (const v of live) {
    for (const r of v.spec.replicas ?? []) {
      const claimed = ledgers.items
        .find((l) => l.metadata.name === r.node)
        ?.spec.claims.some(
          (c) =>
            c.volume === v.metadata.name &&
            c.allocation === v.metadata.annotations?.['meshstor.io/allocation'] &&
            c.replica === r.id &&
            c.start <= r.extent.start &&
            c.end >= r.extent.end,
        );
      expect(claimed, `${v.metadata.name}/${r.id} claimed on ${r.node}`).toBe(true);
    }
  }
}

describe('KubeVolumeStore on the real apiserver', () => {
  it('round-trips a record, refuses stale writes, and deletes through its finalizer', async () => {
    const store = new KubeVolumeStore(k.kc);
    const rec: VolumeRecord = {
      id: 'store-rt',
      name: 'Store Round Trip',
      sizeBytes: GiB,
      replicaCount: 1,
      spread: { domain: 'zone', mode: 'none' },
      fsType: 'xfs',
      replicas: [
        {
          id: 'r0',
          node: 'csi-n1',
          drive: 'csi-n1-nvme0',
          extent: { start: 1024 * 1024, end: 1026 * 1024 * 1024 },
          state: 'Pending',
        },
      ],
      phase: 'Active',
    };
    await store.create(rec);
    expect(((await store.create(rec).catch((e) => e)) as StateError).kind).toBe('exists');
    const a = (await store.get('store-rt')) as VolumeRecord;
    expect(a).toMatchObject({ id: 'store-rt', name: 'Store Round Trip', phase: 'Active', sizeBytes: GiB });
    const b = (await store.get('store-rt')) as VolumeRecord;
    a.arrayUuid = 'aaaa';
    (a.replicas[0] as VolumeRecord['replicas'][number]).state = 'InSync';
    await store.replace(a);
    expect(await store.get('store-rt')).toMatchObject({ arrayUuid: 'aaaa', replicas: [{ state: 'InSync' }] });
    b.sizeBytes = 2 * GiB;
    expect(((await store.replace(b).catch((e) => e)) as StateError).kind).toBe('changed');
    const c = (await store.get('store-rt')) as VolumeRecord;
    c.phase = 'Deleting';
    await store.replace(c);
    const obj = await getVolume('store-rt');
    expect(obj?.metadata.deletionTimestamp).toBeTruthy();
    expect(obj?.metadata.finalizers).toContain(FINALIZER);
    expect((await store.get('store-rt'))?.phase).toBe('Deleting');
    await store.remove('store-rt');
    expect(await getVolume('store-rt')).toBeUndefined();
  });
});

describe('KubeLedger on the real apiserver', () => {
  it('creates a ledger, refuses a write over a stale version or a second create, and lists', async () => {
    const ledger = new KubeVolumeStore(k.kc).ledger;
    expect(await ledger.read('ledger-rt')).toEqual({ node: 'ledger-rt', claims: [] });
    const claim = {
      volume: 'v',
      allocation: 'a1',
      replica: 'r0',
      drive: 'd0',
      start: 0,
      end: GiB,
      claimedAt: new Date().toISOString(),
    };
    const first = await ledger.write({ node: 'ledger-rt', claims: [claim] });
    expect(first.version).toBeTruthy();
    const again = await ledger.write({ node: 'ledger-rt', claims: [] }).catch((e) => e);
    expect((again as StateError).kind).toBe('changed'); // a second create
    const second = await ledger.write({
      ...first,
      claims: [claim, { ...claim, replica: 'r1', start: GiB, end: 2 * GiB }],
    });
    const stale = await ledger.write({ ...first, claims: [] }).catch((e) => e);
    expect((stale as StateError).kind).toBe('changed');
    expect((await ledger.read('ledger-rt')).claims).toHaveLength(2);
    expect((await ledger.list()).find((l) => l.node === 'ledger-rt')?.version).toBe(second.version);
    // The apiserver validates claims: an extent that ends before it starts is refused.
    const bad = await ledger.write({ ...second, claims: [{ ...claim, start: 5, end: 5 }] }).catch((e) => e);
    expect((bad as StateError).kind).toBe('unavailable');
    expect((bad as Error).message).toMatch(/ends after it starts/);
  });
});

describe('ControllerService on Kubernetes state', () => {
  it('creates a MeshStorVolume with the WFFC node first; deletion waits until no agent reports its partitions', async () => {
    const ctl = controller();
    const res = await ctl.createVolume(createReq('pvc-kube-1', 5, 'csi-n2'));
    expect(res.volume.volume_id).toBe('pvc-kube-1');
    const obj = await getVolume('pvc-kube-1');
    expect(obj?.spec.replicas?.[0]?.node).toBe('csi-n2');
    expect(obj?.metadata.finalizers).toContain(FINALIZER);
    expect(await ctl.createVolume(createReq('pvc-kube-1', 5, 'csi-n2'))).toEqual(res);

    const r0 = obj?.spec.replicas?.[0];
    if (!r0) throw new Error('no replica');
    await reportPartition('csi-n2', {
      volume: 'pvc-kube-1',
      replica: r0.id,
      start: r0.extent.start,
      end: r0.extent.end,
    });
    await ctl.deleteVolume({ volume_id: 'pvc-kube-1', secrets: {} });
    const held = await getVolume('pvc-kube-1');
    expect(held?.metadata.deletionTimestamp).toBeTruthy(); // the agent still reports the partition
    // its extents still count: a new volume cannot take them
    const other = await ctl.createVolume(createReq('pvc-kube-2', 5, 'csi-n2'));
    const o = (await getVolume('pvc-kube-2'))?.spec.replicas?.find((x) => x.node === 'csi-n2');
    expect(o && (o.extent.start >= r0.extent.end || o.extent.end <= r0.extent.start)).toBe(true);
    await reportPartition('csi-n2'); // the agent wiped and removed it
    await ctl.deleteVolume({ volume_id: 'pvc-kube-1', secrets: {} });
    expect(await getVolume('pvc-kube-1')).toBeUndefined();
    await ctl.deleteVolume({ volume_id: other.volume.volume_id, secrets: {} });
  });

  it('two controllers racing never keep two volumes on the same bytes', async () => {
    await race('race', [controller(), controller()]);
  });

  it('sixteen controllers racing (fifteen of them lost the Lease without knowing) never keep two volumes on the same bytes', async () => {
    const believesItLeads = { isLeader: true, currentHolder: 'someone else by now' };
    const ctls = Array.from(
      { length: 16 },
      () =>
        new ControllerService({
          store: new KubeVolumeStore(k.kc),
          inventory: new KubeNodeInventory(k.kc),
          leader: believesItLeads,
          seed: 7,
          backoffMs: 20,
        }),
    );
    // Sixteen identical deciders (same seed, same lists) on three nodes are a thundering herd:
    // some give up after 8 attempts with ABORTED (external-provisioner retries), none double-books.
    await race('race16', ctls, 2, 2, 16);
  });

  it('one controller with sixteen callers at once, placing from its informer cache, places every volume without a collision', async () => {
    const quiet = makeLogger('test', 'silent');
    const live = startPlacementCache(k.kc, quiet, new PlacementCache({ seed: 7 }));
    try {
      await live.cache.whenSynced;
      const ctl = new ControllerService({
        store: new KubeVolumeStore(k.kc),
        inventory: new KubeNodeInventory(k.kc),
        model: live.cache,
      });
      await race('callers16', [ctl], 16, 1, 16);
      expect(ctl.collisions).toBe(0);
    } finally {
      await live.stop();
    }
  });

  it('two controllers placing from informer caches never keep two volumes on the same bytes either', async () => {
    const quiet = makeLogger('test', 'silent');
    const caches = [0, 1].map(() => startPlacementCache(k.kc, quiet, new PlacementCache({ seed: 7 })));
    try {
      await Promise.all(caches.map((c) => c.cache.whenSynced));
      const [a, b] = caches.map(
        (c) =>
          new ControllerService({
            store: new KubeVolumeStore(k.kc),
            inventory: new KubeNodeInventory(k.kc),
            model: c.cache,
          }),
      ) as [ControllerService, ControllerService];
      await race('cached-race', [a, b]);
    } finally {
      await Promise.all(caches.map((c) => c.stop()));
    }
  });

  it('a controller that dies right after writing its record leaks nothing: the retry finds it', async () => {
    const real = new KubeVolumeStore(k.kc);
    const dying: VolumeStore = {
      get: (id) => real.get(id),
      list: () => real.list(),
      replace: (r) => real.replace(r),
      remove: (id) => real.remove(id),
      ledger: real.ledger,
      create: async (r) => {
        await real.create(r);
        throw new Error('killed after the write');
      },
    };
    await expect(controller(dying).createVolume(createReq('pvc-crash', 2))).rejects.toThrow(/killed/);
    const again = await controller().createVolume(createReq('pvc-crash', 2));
    expect(again.volume.volume_id).toBe('pvc-crash');
    const l = (await k.custom.listClusterCustomObject(volumes)) as { items: MeshStorVolume[] };
    expect(
      l.items.filter((v) => v.metadata.annotations?.['meshstor.io/csi-name'] === 'pvc-crash'),
    ).toHaveLength(1);
  });

  it('a controller that dies after claiming, before its record, blocks nothing: the retry places elsewhere, the reconciler releases the old claim', async () => {
    const real = new KubeVolumeStore(k.kc);
    let dead = false;
    const dying: VolumeStore = {
      get: (id) => real.get(id),
      list: () => real.list(),
      replace: (r) => real.replace(r),
      remove: (id) => real.remove(id),
      create: (r) => real.create(r),
      ledger: {
        read: (n) => real.ledger.read(n),
        list: () => real.ledger.list(),
        write: async (l) => {
          if (dead) throw new Error('the process is dead');
          const out = await real.ledger.write(l);
          dead = true;
          throw new Error(`killed after claiming on ${out.node}`);
        },
      },
    };
    await expect(controller(dying).createVolume(createReq('pvc-claim-crash', 2))).rejects.toThrow(/killed/);
    const next = controller();
    const { volume } = await next.createVolume(createReq('pvc-claim-crash', 2));
    const rec = await real.get(volume.volume_id);
    const orphans = async () =>
      (await real.ledger.list()).flatMap((l) =>
        l.claims.filter((c) => c.volume === 'pvc-claim-crash' && c.allocation !== rec?.allocation),
      );
    expect(await orphans()).toHaveLength(1);
    const young = await new LedgerReconciler(next.allocator).pass();
    expect(young.clashes.filter((c) => c.includes('pvc-claim-crash'))).toEqual([]);
    expect(await orphans()).toHaveLength(1); // younger than the grace period: left alone
    const pass = await new LedgerReconciler(next.allocator, { orphanAfterMs: 0 }).pass();
    expect(pass.released).toBeGreaterThanOrEqual(1);
    expect(await orphans()).toEqual([]);
    // The record's own claims stay.
    expect(rec && (await next.allocator.claims.holds(ownerOf(rec), rec.replicas))).toBe(true);
  });
});
