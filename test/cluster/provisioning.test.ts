// Provisioning through the real external-provisioner sidecar (Topology and capacity tracking on),
// the real kube-scheduler and kube-controller-manager, `meshstor controller --state kube` and one
// `meshstor agent` process per node (SimulatedHost, agents reaching each other over TCP):
// a WaitForFirstConsumer claim gets its first replica on the node the scheduler picked, the PV does
// not pin pods, CSIStorageCapacity follows free space; the test plays kubelet (NodeStage/Publish
// over each agent's socket): the pod's node stages with a member over NVMe-oF, the pod moves to a
// node without a replica and stages at once, and a member relocates onto it; deletion frees the extents after the agents wipe
// them, and a bad StorageClass parameter leaves the claim Pending with an Event naming it.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mountCap } from '../../csi/test/requests.ts';
import { NODE_KEY, ZONE_KEY } from '../../csi/topology.ts';
import { DRIVER_NAME, type MeshStorVolume } from '../../kube/crds.ts';
import { GiB } from '../../placement/units.ts';
import { quantityBytes } from '../../scheduler/state.ts';
import { provisionerBinary } from '../provision/paths.ts';
import type { CsiNodeClient } from '../support/csi-client.ts';
import { MeshstorProcess } from '../support/meshstor-process.ts';
import { Kube, readyNodeStatus, startSimulatedAgent, until } from './kube.ts';

const E2E_LABEL = 'meshstor.io/e2e-provisioning';
const NODES = ['prov-n1', 'prov-n2', 'prov-n3'];
const ZONE = 'prov-zone';
let k: Kube;
let controller: MeshstorProcess;
let provisioner: ChildProcess;
let logs: string;
let dir: string;
const agents = new Map<string, { proc: MeshstorProcess; client: CsiNodeClient }>();
const agent = (n: string) => {
  const a = agents.get(n);
  if (!a) throw new Error(`no agent on ${n}`);
  return a;
};

async function createTopologyNode(name: string, zone: string) {
  const now = new Date();
  await k.core.createNode({
    body: {
      metadata: {
        name,
        labels: {
          'kubernetes.io/hostname': name,
          [NODE_KEY]: name,
          [E2E_LABEL]: 'yes',
          [ZONE_KEY]: zone,
        },
      },
      status: readyNodeStatus(now),
    },
  });
  // What kubelet registers from NodeGetInfo: our driver with the node topology key.
  await k.storage.createCSINode({
    body: {
      metadata: { name },
      spec: { drivers: [{ name: DRIVER_NAME, nodeID: name, topologyKeys: [NODE_KEY, ZONE_KEY] }] },
    },
  });
}

/** One `meshstor agent` process per node, as the DaemonSet would run: its own simulated drive and NVMe-oF port. */
async function startAgent(name: string, zone: string, kubeconfig: string, dir: string) {
  // resync 30 s, long on purpose: exports, relocation steps and wipes must follow the volumes' watch events
  agents.set(
    name,
    await startSimulatedAgent({
      node: name,
      zone,
      kubeconfig,
      dir,
      drives: '100GiB',
      resyncSeconds: 30,
    }),
  );
}

async function storageClass(name: string, parameters: Record<string, string>) {
  await k.storage.createStorageClass({
    body: {
      metadata: { name },
      provisioner: DRIVER_NAME,
      parameters,
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
      allowVolumeExpansion: true,
    },
  });
}

async function claim(name: string, sc: string, size: string) {
  await k.core.createNamespacedPersistentVolumeClaim({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: sc,
        resources: { requests: { storage: size } },
      },
    },
  });
}

async function pod(name: string, pvc: string, onNode?: string) {
  await k.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        nodeSelector: { [E2E_LABEL]: 'yes', ...(onNode ? { 'kubernetes.io/hostname': onNode } : {}) },
        containers: [
          {
            name: 'db',
            image: 'registry.invalid/never-pulled:0',
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          },
        ],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: pvc } }],
      },
    },
  });
}

async function capacities(): Promise<Record<string, number>> {
  const l = await k.storage.listNamespacedCSIStorageCapacity({ namespace: 'default' });
  const out: Record<string, number> = {};
  for (const c of l.items) {
    const node = c.nodeTopology?.matchLabels?.[NODE_KEY];
    if (node && NODES.includes(node) && c.storageClassName === 'meshstor-wffc')
      out[node] = quantityBytes(c.capacity);
  }
  return out;
}

async function volumeOf(claimName: string): Promise<MeshStorVolume> {
  const pvc = await k.core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace: 'default' });
  const pv = await k.core.readPersistentVolume({ name: pvc.spec?.volumeName as string });
  return await k.getMeshStorVolume(pv.spec?.csi?.volumeHandle as string);
}

/** What kubelet does for a pod on `node`: NodeStageVolume, then NodePublishVolume. */
async function stageAndPublish(node: string, volumeId: string) {
  const c = agent(node).client;
  const staging = join(dir, node, volumeId, 'globalmount');
  await c.call('NodeStageVolume', {
    volume_id: volumeId,
    staging_target_path: staging,
    volume_capability: mountCap,
  });
  await c.call('NodePublishVolume', {
    volume_id: volumeId,
    staging_target_path: staging,
    target_path: join(dir, node, 'pods', volumeId, 'mount'),
    volume_capability: mountCap,
  });
}

async function unpublishAndUnstage(node: string, volumeId: string) {
  const c = agent(node).client;
  await c.call('NodeUnpublishVolume', {
    volume_id: volumeId,
    target_path: join(dir, node, 'pods', volumeId, 'mount'),
  });
  await c.call('NodeUnstageVolume', {
    volume_id: volumeId,
    staging_target_path: join(dir, node, volumeId, 'globalmount'),
  });
}

beforeAll(async () => {
  const { kubeconfig } = inject('cluster');
  k = new Kube(kubeconfig);
  const bin = provisionerBinary();
  if (!bin)
    throw new Error(
      'csi-provisioner is missing: run `npm run setup:provisioner` (or set MESHSTOR_CSI_PROVISIONER)',
    );
  // One zone of their own: capacity for a {node, zone} segment is what fits in that zone, so it
  // follows these nodes' free space whatever other test files put in the shared apiserver.
  dir = mkdtempSync(join(tmpdir(), 'meshstor-prov-'));
  // MeshStorNodes other test files wrote into the shared apiserver have no agent behind them but
  // a fresh heartbeat: placement would rightly put a second replica there, and staging would then
  // wait for an agent that never comes. This file's cluster is its three agents' nodes alone.
  await k.deleteMeshStorNodesExcept(NODES);
  await Promise.all(NODES.map((n) => createTopologyNode(n, ZONE)));
  for (const n of NODES) await startAgent(n, ZONE, kubeconfig, dir);
  await k.storage.createCSIDriver({
    body: {
      metadata: { name: DRIVER_NAME },
      spec: {
        attachRequired: false,
        podInfoOnMount: false,
        storageCapacity: true,
        volumeLifecycleModes: ['Persistent'],
      },
    },
  });
  await storageClass('meshstor-wffc', { replicaCount: '2' });
  await storageClass('meshstor-bad', { replicaCount: 'two' });

  const socket = join(dir, 'csi.sock');
  logs = join(dir, 'csi-provisioner.log');
  controller = MeshstorProcess.kubeController(socket, kubeconfig, ['--resync-seconds', '1']);
  await controller.waitFor('leading');
  provisioner = spawn(
    bin,
    [
      `--csi-address=${socket}`,
      `--kubeconfig=${kubeconfig}`,
      '--feature-gates=Topology=true',
      '--leader-election=false',
      '--extra-create-metadata',
      '--enable-capacity',
      '--capacity-ownerref-level=-1',
      '--capacity-poll-interval=2s',
      '--timeout=30s',
      '--retry-interval-start=500ms',
      '--v=4',
    ],
    {
      env: { ...process.env, NAMESPACE: 'default', POD_NAMESPACE: 'default' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const out = createWriteStream(logs);
  provisioner.stdout?.pipe(out);
  provisioner.stderr?.pipe(out);
}, 120_000);

afterAll(async () => {
  provisioner?.kill('SIGTERM');
  await controller?.stop();
  for (const [name, a] of agents) {
    a.client.close();
    await a.proc.stop();
    writeFileSync(join(dir, `agent-${name}.log`), a.proc.log);
  }
  if (controller) writeFileSync(join(dir, 'controller.log'), controller.log);
  console.log(`provisioning test logs: ${dir}`);
  // Leave the shared control plane as we found it: other files schedule onto whatever nodes exist.
  const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
  for (const name of ['db-0', 'bad-0'])
    await quiet(k.core.deleteNamespacedPod({ name, namespace: 'default', gracePeriodSeconds: 0 }));
  await quiet(k.core.deleteNamespacedPersistentVolumeClaim({ name: 'data-bad', namespace: 'default' }));
  for (const sc of ['meshstor-wffc', 'meshstor-bad']) await quiet(k.storage.deleteStorageClass({ name: sc }));
  await quiet(k.storage.deleteCSIDriver({ name: DRIVER_NAME }));
  for (const n of NODES) {
    await quiet(k.core.deleteNode({ name: n }));
    await quiet(k.storage.deleteCSINode({ name: n }));
    await quiet(k.custom.deleteClusterCustomObject(k.ref('MeshStorNode', n)));
  }
});

describe('provisioning through the real external-provisioner', () => {
  it('WaitForFirstConsumer: the scheduler picks a node, its first replica lands there, the PV does not pin the pod', async () => {
    await until('CSIStorageCapacity for the three nodes', 60_000, async () => {
      const c = await capacities();
      return Object.keys(c).length === 3 && Object.values(c).every((x) => x > 90 * GiB) ? c : undefined;
    });
    await claim('data-db-0', 'meshstor-wffc', '5Gi');
    await pod('db-0', 'data-db-0');
    const node = await k.scheduledNode('db-0', 90_000);
    expect(NODES).toContain(node);
    const pvc = await k.core.readNamespacedPersistentVolumeClaim({ name: 'data-db-0', namespace: 'default' });
    expect(pvc.metadata?.annotations?.['volume.kubernetes.io/selected-node']).toBe(node);
    expect(pvc.status?.phase).toBe('Bound');
    const pv = await k.core.readPersistentVolume({ name: pvc.spec?.volumeName as string });
    expect(pv.spec?.csi?.driver).toBe(DRIVER_NAME);
    expect(pv.spec?.nodeAffinity).toBeUndefined(); // no node pinning: the pod may move
    const vol = await k.getMeshStorVolume(pv.spec?.csi?.volumeHandle as string);
    expect(vol.spec.replicas?.[0]?.node).toBe(node);
    expect(vol.spec.replicas?.length).toBe(2);
    // capacity on the chosen node follows its free space
    await until('capacity to drop on the chosen node', 30_000, async () => {
      const c = await capacities();
      return (c[node] ?? Number.POSITIVE_INFINITY) < 96 * GiB ? true : undefined;
    });
  });

  it('kubelet stages on the pod node: its own member and the other over NVMe-oF from its owner agent', async () => {
    const vol = await volumeOf('data-db-0');
    const node = await k.scheduledNode('db-0', 5_000);
    const other = vol.spec.replicas?.[1]?.node as string;
    expect(other).not.toBe(node);
    await stageAndPublish(node, vol.metadata.name);
    const staged = await until('the members to be reported in sync', 30_000, async () => {
      const v = await volumeOf('data-db-0');
      return v.status?.members?.every((m) => m.state === 'InSync') ? v : undefined;
    });
    expect(staged.spec.attachment?.node).toBe(node);
    expect(staged.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'InSync',
    });
    expect(staged.status?.arrayUUID).toBeTruthy();
    expect(staged.status?.members?.map((m) => m.node)).toEqual([node, other]);
    expect(agent(other).proc.logged('exported', { replicas: [`${vol.metadata.name}/r1 -> ${node}`] })).toBe(
      true,
    );
  });

  it('the pod moves to a node without a replica and uses the volume at once, both members over NVMe-oF', async () => {
    const vol = await volumeOf('data-db-0');
    const from = vol.spec.attachment?.node as string;
    const to = NODES.find((n) => !vol.spec.replicas?.some((r) => r.node === n)) as string;
    await k.core.deleteNamespacedPod({ name: 'db-0', namespace: 'default', gracePeriodSeconds: 0 });
    await unpublishAndUnstage(from, vol.metadata.name);
    expect((await volumeOf('data-db-0')).spec.attachment).toBeUndefined();
    await until('the pod to be gone', 30_000, async () =>
      (await k.core.listNamespacedPod({ namespace: 'default' })).items.some(
        (p) => p.metadata?.name === 'db-0',
      )
        ? undefined
        : true,
    );

    await pod('db-0', 'data-db-0', to);
    expect(await k.scheduledNode('db-0', 60_000)).toBe(to);
    await stageAndPublish(to, vol.metadata.name);
    const moved = await volumeOf('data-db-0');
    expect(moved.spec.attachment).toEqual({
      node: to,
      hostNQN: `nqn.2014-08.org.nvmexpress:uuid:meshstor-${to}`,
    });
    expect(moved.status?.arrayUUID).toBe(vol.status?.arrayUUID); // assembled, never created again
    // (the relocation may have begun already: its new member is the third one)
    const first = new Set((vol.spec.replicas ?? []).map((r) => r.id));
    expect(moved.status?.members?.filter((m) => first.has(m.replicaId)).map((m) => m.state)).toEqual([
      'InSync',
      'InSync',
    ]);
    for (const r of vol.spec.replicas ?? [])
      expect(agent(r.node).proc.log).toContain(`${vol.metadata.name}/${r.id} -> ${to}`);

    // The data follows the pod: a member is added on its node, synced, and one elsewhere removed,
    // wiped, and its extent released.
    const settled = await until('the relocation to finish', 60_000, async () => {
      const v = await volumeOf('data-db-0');
      const nodes = (v.spec.replicas ?? []).map((r) => r.node);
      return !v.status?.relocation && nodes.length === 2 && nodes.includes(to) ? v : undefined;
    });
    expect(settled.status?.members?.map((m) => m.state)).toEqual(['InSync', 'InSync']);
    expect(settled.status?.arrayUUID).toBe(vol.status?.arrayUUID);
    const left = (vol.spec.replicas ?? []).find((r) => !settled.spec.replicas?.some((x) => x.id === r.id));
    expect(left).toBeDefined();
    expect(controller.logged('relocation started', { volumes: [`${vol.metadata.name} -> ${to}`] })).toBe(
      true,
    );
    const leftNode = await k.getMeshStorNode(left?.node as string);
    const leftParts = leftNode.status?.drives?.flatMap((d) => d.partitions ?? []) ?? [];
    expect(leftParts.some((p) => p.owner?.volume === vol.metadata.name)).toBe(false);
    // kubelet unstages once the pod is deleted (next test)
    await k.core.deleteNamespacedPod({ name: 'db-0', namespace: 'default', gracePeriodSeconds: 0 });
    await unpublishAndUnstage(to, vol.metadata.name);
  });

  it('deleting the claim deletes the PV and the MeshStorVolume, freeing its extents', async () => {
    const pvc = await k.core.readNamespacedPersistentVolumeClaim({ name: 'data-db-0', namespace: 'default' });
    const pvName = pvc.spec?.volumeName as string;
    const handle = (await k.core.readPersistentVolume({ name: pvName })).spec?.csi?.volumeHandle as string;
    await k.core
      .deleteNamespacedPod({ name: 'db-0', namespace: 'default', gracePeriodSeconds: 0 })
      .catch(() => undefined); // the previous test deleted it already
    await k.core.deleteNamespacedPersistentVolumeClaim({ name: 'data-db-0', namespace: 'default' });
    await until('the PV and the MeshStorVolume to be gone', 60_000, async () => {
      const pvs = await k.core.listPersistentVolume();
      const pvGone = !pvs.items.some((p) => p.metadata?.name === pvName);
      const volGone = await k.getMeshStorVolume(handle).then(
        () => false,
        (e: { code?: number }) => e.code === 404,
      );
      return pvGone && volGone ? true : undefined;
    });
    // Gone only once every agent had wiped its partition of it.
    for (const n of NODES) {
      const parts = (await k.getMeshStorNode(n)).status?.drives?.flatMap((d) => d.partitions ?? []) ?? [];
      expect(parts.filter((p) => p.owner?.volume === handle)).toEqual([]);
    }
    // Every node held a member at some point (two at first, one more by relocation) and wiped it.
    const wiped = (n: string) =>
      agent(n)
        .proc.log.split('\n')
        .some((l) => l.includes('"msg":"wiped"') && l.includes(`/${handle}/`));
    expect(NODES.filter(wiped)).toEqual(NODES);
  });

  it('a bad StorageClass parameter leaves the claim Pending with an Event naming the parameter', async () => {
    await claim('data-bad', 'meshstor-bad', '1Gi');
    await pod('bad-0', 'data-bad');
    const message = await until('a ProvisioningFailed event', 60_000, async () => {
      const ev = await k.core.listNamespacedEvent({
        namespace: 'default',
        fieldSelector: 'involvedObject.name=data-bad',
      });
      return ev.items.find((e) => e.reason === 'ProvisioningFailed')?.message;
    });
    expect(message).toMatch(/replicaCount/);
    const pvc = await k.core.readNamespacedPersistentVolumeClaim({ name: 'data-bad', namespace: 'default' });
    expect(pvc.status?.phase).toBe('Pending');
  });
});
