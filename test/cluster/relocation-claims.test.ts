// Relocation against the real apiserver with an orphaned ledger claim (an allocation killed between
// its claim and its record) on the bytes the move would otherwise take: the pass lists the
// ledgers, counts the claim as taken and starts the move elsewhere on the node, instead of being
// refused at its claim every pass until the reconciler releases the orphan (10 minutes).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RelocationReconciler } from '../../controller/relocation.ts';
import { ControllerService } from '../../csi/controller.ts';
import { NODE_KEY } from '../../csi/topology.ts';
import { GiB } from '../../placement/units.ts';
import { KubeNodeInventory, KubeVolumeStore } from '../../state/kube-store.ts';
import { updateRecord, type VolumeStore } from '../../state/store.ts';
import { Kube } from './kube.ts';

let k: Kube;
const NODES = ['rc-1', 'rc-2', 'rc-3'] as const;

beforeAll(async () => {
  k = new Kube(inject('cluster').kubeconfig);
  for (const [i, n] of NODES.entries())
    await k.createMeshStorNode(n, { driveBytes: 100 * GiB, zone: `rz${i}` });
});

afterAll(async () => {
  for (const n of NODES) {
    await k.custom.deleteClusterCustomObject({ ...k.ref('MeshStorNode', n) }).catch(() => undefined);
  }
});

describe('relocation and orphaned ledger claims', () => {
  it('plans the move around bytes a claim no record holds', async () => {
    const kube = new KubeVolumeStore(k.kc);
    // This file's records only: other files' volumes share the apiserver.
    const store: VolumeStore = {
      get: (id) => kube.get(id),
      list: async () => (await kube.list()).filter((r) => r.id.startsWith('rc-')),
      create: (r) => kube.create(r),
      replace: (r) => kube.replace(r),
      remove: (id) => kube.remove(id),
      ledger: kube.ledger,
    };
    const all = new KubeNodeInventory(k.kc);
    const inventory = { nodes: async () => (await all.nodes()).filter((n) => n.name.startsWith('rc-')) };
    const svc = new ControllerService({ store, inventory, seed: 5 });
    await svc.createVolume({
      name: 'rc-v1',
      capacity_range: { required_bytes: String(GiB), limit_bytes: '0' },
      volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } }],
      parameters: { replicaCount: '2' },
      secrets: {},
      volume_content_source: null,
      accessibility_requirements: { requisite: [], preferred: [{ segments: { [NODE_KEY]: 'rc-1' } }] },
      mutable_parameters: {},
    });
    const placed = await store.get('rc-v1');
    const podNode = NODES.find((n) => !placed?.replicas.some((r) => r.node === n)) as string;
    // In use on the node without a copy, both copies in sync: it should move there.
    await updateRecord(store, 'rc-v1', (r) => {
      for (const x of r.replicas) x.state = 'InSync';
      r.attachment = { node: podNode, hostNqn: `nqn.2014-08.org.nvmexpress:uuid:${podNode}` };
      return true;
    });
    const plan = (await svc.allocator.freshEngine()).planRelocation('rc-v1', podNode);
    if (!plan.ok || !plan.plan.to) throw new Error(`no plan: ${JSON.stringify(plan)}`);
    const at = plan.plan.to;
    const orphan = {
      volume: 'rc-killed-mid-create',
      allocation: 'rc-a1',
      replica: 'r0',
      drive: at.drive,
      start: at.start,
      end: at.end,
      claimedAt: new Date().toISOString(),
    };
    const ledger = await store.ledger.read(podNode);
    await store.ledger.write({ ...ledger, claims: [...ledger.claims, orphan] });
    try {
      const pass = await new RelocationReconciler(svc.allocator, undefined, { isLeader: true }).pass();
      expect(pass.blocked).toEqual([]);
      expect(pass.started).toEqual([`rc-v1 -> ${podNode}`]);
      const added = (await store.get('rc-v1'))?.replicas.find((r) => r.node === podNode);
      expect(added && (added.extent.start >= at.end || added.extent.end <= at.start)).toBe(true);
    } finally {
      // Leave the apiserver as found: no orphan, no volume of this file.
      const now = await store.ledger.read(podNode);
      await store.ledger.write({ ...now, claims: now.claims.filter((c) => c.volume !== orphan.volume) });
      await svc.deleteVolume({ volume_id: 'rc-v1', secrets: {} });
    }
  });
});
