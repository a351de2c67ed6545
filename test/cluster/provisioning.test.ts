// Provisioning through the real external-provisioner sidecar (Topology and capacity tracking on),
// the real kube-scheduler and kube-controller-manager, and `meshstor controller --state kube`:
// a WaitForFirstConsumer claim gets its first replica on the node the scheduler picked, the PV does
// not pin pods, CSIStorageCapacity follows free space, deletion frees the extents, and a bad
// StorageClass parameter leaves the claim Pending with an Event naming it.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NODE_KEY, ZONE_KEY } from '../../csi/topology.ts';
import { DRIVER_NAME, GROUP, type MeshStorVolume, PLURAL, VERSION } from '../../kube/crds.ts';
import { GiB } from '../../placement/units.ts';
import { quantityBytes } from '../../scheduler/state.ts';
import { provisionerBinary } from '../provision/paths.ts';
import { MeshstorProcess } from '../support/meshstor-process.ts';
import { Kube, until } from './kube.ts';

const E2E_LABEL = 'meshstor.io/e2e-provisioning';
const NODES = ['prov-n1', 'prov-n2', 'prov-n3'];
const ZONE = 'prov-zone';
let k: Kube;
let controller: MeshstorProcess;
let provisioner: ChildProcess;
let logs: string;

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
      status: {
        capacity: { cpu: '8', memory: '32Gi', pods: '110' },
        allocatable: { cpu: '8', memory: '32Gi', pods: '110' },
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'TestHarness',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
    },
  });
  // What kubelet registers from NodeGetInfo: our driver with the node topology key.
  await k.storage.createCSINode({
    body: {
      metadata: { name },
      spec: { drivers: [{ name: DRIVER_NAME, nodeID: name, topologyKeys: [NODE_KEY, ZONE_KEY] }] },
    },
  });
  await k.createMeshStorNode(name, { driveBytes: 100 * GiB, zone });
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

async function pod(name: string, pvc: string) {
  await k.core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        nodeSelector: { [E2E_LABEL]: 'yes' },
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
  await Promise.all(NODES.map((n) => createTopologyNode(n, ZONE)));
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

  const dir = mkdtempSync(join(tmpdir(), 'meshstor-prov-'));
  const socket = join(dir, 'csi.sock');
  logs = join(dir, 'csi-provisioner.log');
  controller = MeshstorProcess.kubeController(socket, kubeconfig);
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
    await quiet(
      k.custom.deleteClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL.MeshStorNode,
        name: n,
      }),
    );
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
    const vol = (await k.custom.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorVolume,
      name: pv.spec?.csi?.volumeHandle as string,
    })) as MeshStorVolume;
    expect(vol.spec.replicas?.[0]?.node).toBe(node);
    expect(vol.spec.replicas?.length).toBe(2);
    // capacity on the chosen node follows its free space
    await until('capacity to drop on the chosen node', 30_000, async () => {
      const c = await capacities();
      return (c[node] ?? Number.POSITIVE_INFINITY) < 96 * GiB ? true : undefined;
    });
  });

  it('deleting the claim deletes the PV and the MeshStorVolume, freeing its extents', async () => {
    const pvc = await k.core.readNamespacedPersistentVolumeClaim({ name: 'data-db-0', namespace: 'default' });
    const pvName = pvc.spec?.volumeName as string;
    const handle = (await k.core.readPersistentVolume({ name: pvName })).spec?.csi?.volumeHandle as string;
    await k.core.deleteNamespacedPod({ name: 'db-0', namespace: 'default', gracePeriodSeconds: 0 });
    await k.core.deleteNamespacedPersistentVolumeClaim({ name: 'data-db-0', namespace: 'default' });
    await until('the PV and the MeshStorVolume to be gone', 60_000, async () => {
      const pvs = await k.core.listPersistentVolume();
      const vols = (await k.custom.listClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL.MeshStorVolume,
      })) as {
        items: MeshStorVolume[];
      };
      const pvGone = !pvs.items.some((p) => p.metadata?.name === pvName);
      const volGone = !vols.items.some((v) => v.metadata.name === handle);
      return pvGone && volGone ? true : undefined;
    });
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
