// Cordon and drain against the real apiserver (issue 12 §4): a cordoned Node's agent publishes it
// unschedulable and CreateVolume puts no replica there; `meshstor drain NODE` prints the plan and
// changes nothing; `--yes` cordons and labels the Node, and the controller's relocation pass, which
// lists the evacuating Nodes by that label, starts moving the replicas off it.
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SimulatedHost } from '../../agent/host/simulated.ts';
import { nodeIdentityFrom } from '../../agent/node-identity.ts';
import { NodePublisher } from '../../agent/publisher.ts';
import { RelocationReconciler } from '../../controller/relocation.ts';
import { ControllerService } from '../../csi/controller.ts';
import { NODE_KEY } from '../../csi/topology.ts';
import { EVACUATE_LABEL, evacuatingNodes } from '../../kube/evacuation.ts';
import { GiB } from '../../placement/units.ts';
import { KubeNodeInventory, KubeVolumeStore } from '../../state/kube-store.ts';
import { updateRecord } from '../../state/store.ts';
import { Kube, recordsOf } from './kube.ts';

let k: Kube;
let kubeconfig: string;
const NODES = ['dr-1', 'dr-2', 'dr-3'] as const;
const CORDONED = 'dr-4';

const create = (name: string, preferred: string) => ({
  name,
  capacity_range: { required_bytes: String(GiB), limit_bytes: '0' },
  volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } }],
  parameters: { replicaCount: '2' },
  secrets: {},
  volume_content_source: null,
  accessibility_requirements: { requisite: [], preferred: [{ segments: { [NODE_KEY]: preferred } }] },
  mutable_parameters: {},
});

function drain(...args: string[]) {
  return spawnSync(process.execPath, ['cmd/meshstor.ts', 'drain', ...args, '--kubeconfig', kubeconfig], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** What the agent on `name` does each minute: reads its Node, publishes its MeshStorNode. */
async function publishFromNode(name: string, host: SimulatedHost): Promise<void> {
  const node = await k.core.readNode({ name });
  const id = { ...nodeIdentityFrom(node), port: 4420 };
  const pub = new NodePublisher(k.kc, id, host);
  pub.identify(id);
  await pub.publish();
}

// Leave the shared apiserver as found: other files schedule pods onto whatever Nodes exist.
afterAll(async () => {
  for (const n of [...NODES, CORDONED]) {
    await k.core.deleteNode({ name: n }).catch(() => undefined);
    await k.custom.deleteClusterCustomObject({ ...k.ref('MeshStorNode', n) }).catch(() => undefined);
  }
});

beforeAll(async () => {
  kubeconfig = inject('cluster').kubeconfig;
  k = new Kube(kubeconfig);
  for (const [i, n] of [...NODES, CORDONED].entries())
    await k.createNode(n, { zone: `dz${i}`, internalIp: `10.9.0.${i + 1}` });
  for (const [i, n] of NODES.entries())
    await k.createMeshStorNode(n, { driveBytes: 100 * GiB, zone: `dz${i}` });
});

describe('cordon and drain', () => {
  it('a cordoned node gets no new replica, even as the preferred node; uncordoned it does', async () => {
    const host = new SimulatedHost({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000d4',
      drives: [{ id: 'SIM-D4', sizeBytes: 100 * GiB }],
    });
    const cordon = (unschedulable: boolean) =>
      k.core.patchNode(
        { name: CORDONED, body: { spec: { unschedulable } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await cordon(true);
    await publishFromNode(CORDONED, host);
    expect((await k.getMeshStorNode(CORDONED)).status?.schedulable).toBe(false);
    const svc = new ControllerService({
      store: new KubeVolumeStore(k.kc),
      inventory: new KubeNodeInventory(k.kc),
      seed: 3,
    });
    for (const name of ['dr-c1', 'dr-c2', 'dr-c3']) {
      await svc.createVolume(create(name, CORDONED));
      const v = await k.getMeshStorVolume(name);
      expect(v.spec.replicas?.map((r) => r.node)).not.toContain(CORDONED);
    }
    await cordon(false);
    await publishFromNode(CORDONED, host);
    await svc.createVolume(create('dr-c4', CORDONED));
    expect((await k.getMeshStorVolume('dr-c4')).spec.replicas?.[0]?.node).toBe(CORDONED);
    for (const name of ['dr-c1', 'dr-c2', 'dr-c3', 'dr-c4'])
      await svc.deleteVolume({ volume_id: name, secrets: {} });
  });

  it('drain prints the plan and changes nothing; --yes labels the node and the controller moves a replica off it', async () => {
    const store = recordsOf('dr-', new KubeVolumeStore(k.kc));
    // this file's nodes only: other files leave nodes whose ledgers hold claims for aborted
    // volumes until the ledger reconciler releases them (10 min), and a move onto one of those
    // extents is refused (rightly) on every pass until then
    const all = new KubeNodeInventory(k.kc);
    const inventory = { nodes: async () => (await all.nodes()).filter((n) => n.name.startsWith('dr-')) };
    const svc = new ControllerService({ store, inventory, seed: 5 });
    for (const name of ['dr-v1', 'dr-v2']) await svc.createVolume(create(name, 'dr-1'));
    // dr-v1 is in use on dr-1 with both copies in sync; dr-v2 was never staged
    await updateRecord(store, 'dr-v1', (r) => {
      for (const x of r.replicas) x.state = 'InSync';
      r.attachment = { node: 'dr-1', hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:dr-1' };
      return true;
    });
    const before = await store.list();

    const dry = drain('dr-1');
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    expect(dry.stdout).toMatch(/^Drain plan for node dr-1 \(dry run: nothing changes/);
    // the never-staged volume has no copy in sync: the most exposed, first in the order (and waits)
    expect(dry.stdout).toMatch(/\n {2}1 +dr-v2 +r0 +1\.\d GiB +[\w-]+\/[\w-]+ +0 of 2 +waits\n/);
    expect(dry.stdout).toMatch(/\n {2}2 +dr-v1 +r0 +1\.\d GiB +(?!dr-1\/)[\w-]+\/[\w-]+ +2 of 2 +moves\n/);
    expect(dry.stdout).toMatch(/dr-v2: not attached/);
    expect(dry.stdout).toMatch(/Total: 2 moves/);
    expect(await store.list()).toEqual(before);
    const node = await k.core.readNode({ name: 'dr-1' });
    expect(node.spec?.unschedulable).toBeFalsy();
    expect(node.metadata?.labels?.[EVACUATE_LABEL]).toBeUndefined();

    const yes = drain('dr-1', '--yes', '--detach');
    expect(yes.status).toBe(0);
    expect(yes.stdout).toMatch(/cordoned and labelled meshstor\.io\/evacuate=true/);
    const labelled = await k.core.readNode({ name: 'dr-1' });
    expect(labelled.spec?.unschedulable).toBe(true);
    expect(labelled.metadata?.labels?.[EVACUATE_LABEL]).toBe('true');

    const reconciler = new RelocationReconciler(
      svc.allocator,
      undefined,
      { isLeader: true },
      evacuatingNodes(k.kc),
    );
    // the controller runs this pass every resync; under load a pass may start nothing yet (each
    // result is kept so a failure shows what the passes saw)
    const passes: Awaited<ReturnType<typeof reconciler.pass>>[] = [];
    for (let i = 0; i < 10 && !passes.at(-1)?.started.length; i++) {
      if (i > 0) await sleep(1_000);
      passes.push(await reconciler.pass());
    }
    const pass = passes.at(-1) as (typeof passes)[number];
    expect(pass.started, JSON.stringify(passes)).toHaveLength(1);
    expect(pass.started[0]).toMatch(/^dr-v1 -> (?!dr-1 )[\w-]+ \(off dr-1\)$/);
    const moving = await store.get('dr-v1');
    expect(moving?.relocation?.step).toBe('adding');
    const from = moving?.replicas.find((r) => r.id === moving.relocation?.fromReplica);
    expect(from?.node).toBe('dr-1');
    const to = moving?.replicas.find((r) => r.id === moving.relocation?.toReplica);
    expect(to?.node).not.toBe('dr-1');
    // the unstaged volume waits: nobody runs its array to resync a new member
    expect(pass.started.some((s) => s.startsWith('dr-v2'))).toBe(false);

    // leave the shared apiserver as found: no evacuating node, no volumes of this file
    await k.core.patchNode(
      {
        name: 'dr-1',
        body: { spec: { unschedulable: false }, metadata: { labels: { [EVACUATE_LABEL]: null } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(await evacuatingNodes(k.kc)()).toEqual(new Set());
    for (const name of ['dr-v1', 'dr-v2']) await svc.deleteVolume({ volume_id: name, secrets: {} });
  });
});
