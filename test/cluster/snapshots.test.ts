// Snapshots through the standard VolumeSnapshot API (ADR 0010), with the real external-snapshotter
// (csi-snapshotter sidecar and snapshot-controller, built by `npm run setup:snapshotter`), the real
// external-provisioner, `meshstor controller --state kube` and one `meshstor agent` per node
// (SimulatedHost): a claim is staged (the test plays kubelet), a VolumeSnapshot of it becomes ready
// once the agent has added, resynced and detached the snapshot's member, and a claim restored from
// it binds and is seeded from the snapshot at its first stage.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadYaml, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mountCap } from '../../csi/test/requests.ts';
import { NODE_KEY, ZONE_KEY } from '../../csi/topology.ts';
import { DRIVER_NAME, type MeshStorVolume } from '../../kube/crds.ts';
import { provisionerBinary } from '../provision/paths.ts';
import {
  csiSnapshotterBinary,
  missingSnapshotter,
  snapshotControllerBinary,
  snapshotCrdFiles,
} from '../snapshot/paths.ts';
import type { CsiNodeClient } from '../support/csi-client.ts';
import { MeshstorProcess } from '../support/meshstor-process.ts';
import { createCrds, Kube, startSimulatedAgent, until } from './kube.ts';

const NODES = ['snap-n1', 'snap-n2'];
const ZONE = 'snap-zone';
const SC = 'meshstor-snap';
const SNAP = { group: 'snapshot.storage.k8s.io', version: 'v1' };
let k: Kube;
let dir: string;
let controller: MeshstorProcess;
const sidecars: { name: string; proc: ChildProcess }[] = [];
const agents = new Map<string, { proc: MeshstorProcess; client: CsiNodeClient }>();
let createdDriver = false;

const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
const conflictIsFine = (e: unknown) => {
  if ((e as { code?: number }).code !== 409) throw e;
};

async function startAgent(name: string, kubeconfig: string) {
  agents.set(
    name,
    await startSimulatedAgent({ node: name, zone: ZONE, kubeconfig, dir, drives: '20GiB', resyncSeconds: 2 }),
  );
}

function sidecar(name: string, bin: string, args: string[]) {
  const proc = spawn(bin, args, {
    env: { ...process.env, NAMESPACE: 'default', POD_NAMESPACE: 'default' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = createWriteStream(join(dir, `${name}.log`));
  proc.stdout?.pipe(out);
  proc.stderr?.pipe(out);
  sidecars.push({ name, proc });
}

async function claim(name: string, dataSource?: { kind: string; name: string; apiGroup: string }) {
  await k.core.createNamespacedPersistentVolumeClaim({
    namespace: 'default',
    body: {
      metadata: { name },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: SC,
        resources: { requests: { storage: '1Gi' } },
        ...(dataSource ? { dataSource } : {}),
      },
    },
  });
}

async function boundVolume(name: string): Promise<MeshStorVolume> {
  const pvc = await until(`claim ${name} Bound`, 60_000, async () => {
    const c = await k.core.readNamespacedPersistentVolumeClaim({ name, namespace: 'default' });
    return c.status?.phase === 'Bound' ? c : undefined;
  });
  const pv = await k.core.readPersistentVolume({ name: pvc.spec?.volumeName as string });
  return k.getMeshStorVolume(pv.spec?.csi?.volumeHandle as string);
}

const staging = (node: string, id: string) => join(dir, node, id, 'globalmount');

async function stage(node: string, id: string) {
  const c = agents.get(node)?.client as CsiNodeClient;
  await c.call('NodeStageVolume', {
    volume_id: id,
    staging_target_path: staging(node, id),
    volume_capability: mountCap,
  });
}

async function unstage(node: string, id: string) {
  const c = agents.get(node)?.client as CsiNodeClient;
  await c.call('NodeUnstageVolume', { volume_id: id, staging_target_path: staging(node, id) });
}

interface VolumeSnapshot {
  status?: { readyToUse?: boolean; boundVolumeSnapshotContentName?: string; error?: { message?: string } };
}
interface VolumeSnapshotContent {
  status?: { readyToUse?: boolean; snapshotHandle?: string; restoreSize?: number };
}

beforeAll(async () => {
  const { kubeconfig } = inject('cluster');
  k = new Kube(kubeconfig);
  const missing = missingSnapshotter();
  const provisioner = provisionerBinary();
  if (missing || !provisioner)
    throw new Error(missing ?? 'csi-provisioner is missing: run `npm run setup:provisioner`');
  dir = mkdtempSync(join(tmpdir(), 'meshstor-snap-'));
  // the snapshot.storage.k8s.io CRDs of the snapshotter's release (another run may have made them)
  const crds = (snapshotCrdFiles() as string[]).map((f) =>
    loadYaml<V1CustomResourceDefinition>(readFileSync(f, 'utf8')),
  );
  await createCrds(kubeconfig, crds, 'keep');
  await k.deleteMeshStorNodesExcept(NODES);
  for (const n of NODES) {
    await k.createNode(n, { zone: ZONE });
    // what kubelet registers from NodeGetInfo: the driver with its topology keys
    await k.storage.deleteCSINode({ name: n });
    await k.storage.createCSINode({
      body: {
        metadata: { name: n },
        spec: { drivers: [{ name: DRIVER_NAME, nodeID: n, topologyKeys: [NODE_KEY, ZONE_KEY] }] },
      },
    });
    const node = await k.core.readNode({ name: n });
    node.metadata = {
      ...node.metadata,
      labels: { ...node.metadata?.labels, [NODE_KEY]: n, [ZONE_KEY]: ZONE },
    };
    await k.core.replaceNode({ name: n, body: node });
    await startAgent(n, kubeconfig);
  }
  await k.storage
    .createCSIDriver({
      body: {
        metadata: { name: DRIVER_NAME },
        spec: { attachRequired: false, podInfoOnMount: false, volumeLifecycleModes: ['Persistent'] },
      },
    })
    .then(() => {
      createdDriver = true;
    }, conflictIsFine);
  await k.storage.createStorageClass({
    body: {
      metadata: { name: SC },
      provisioner: DRIVER_NAME,
      parameters: { replicaCount: '2', spread: 'none' },
      volumeBindingMode: 'Immediate',
      reclaimPolicy: 'Delete',
    },
  });
  await k.custom.createClusterCustomObject({
    ...SNAP,
    plural: 'volumesnapshotclasses',
    body: {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshotClass',
      metadata: { name: SC },
      driver: DRIVER_NAME,
      deletionPolicy: 'Delete',
    },
  });

  const socket = join(dir, 'csi.sock');
  controller = MeshstorProcess.kubeController(socket, kubeconfig, ['--resync-seconds', '1']);
  await controller.waitFor('leading');
  const common = [`--kubeconfig=${kubeconfig}`, '--leader-election=false', '--v=4'];
  sidecar('csi-provisioner', provisioner, [
    `--csi-address=${socket}`,
    ...common,
    '--feature-gates=Topology=true',
    '--timeout=30s',
    '--retry-interval-start=500ms',
  ]);
  sidecar('csi-snapshotter', csiSnapshotterBinary() as string, [
    `--csi-address=${socket}`,
    ...common,
    '--timeout=30s',
  ]);
  sidecar('snapshot-controller', snapshotControllerBinary() as string, common);
}, 180_000);

afterAll(async () => {
  for (const s of sidecars) s.proc.kill('SIGTERM');
  await controller?.stop();
  for (const [name, a] of agents) {
    a.client.close();
    await a.proc.stop();
    writeFileSync(join(dir, `agent-${name}.log`), a.proc.log);
  }
  if (controller) writeFileSync(join(dir, 'controller.log'), controller.log);
  console.log(`snapshot test logs: ${dir}`);
  await quiet(
    k.custom.deleteNamespacedCustomObject({
      ...SNAP,
      namespace: 'default',
      plural: 'volumesnapshots',
      name: 'snap-1',
    }),
  );
  for (const name of ['snap-src', 'snap-restored'])
    await quiet(k.core.deleteNamespacedPersistentVolumeClaim({ name, namespace: 'default' }));
  await quiet(k.custom.deleteClusterCustomObject({ ...SNAP, plural: 'volumesnapshotclasses', name: SC }));
  await quiet(k.storage.deleteStorageClass({ name: SC }));
  if (createdDriver) await quiet(k.storage.deleteCSIDriver({ name: DRIVER_NAME }));
  for (const n of NODES) {
    await quiet(k.core.deleteNode({ name: n }));
    await quiet(k.storage.deleteCSINode({ name: n }));
    await quiet(k.custom.deleteClusterCustomObject(k.ref('MeshStorNode', n)));
  }
});

describe('VolumeSnapshot through the real external-snapshotter', () => {
  let source: MeshStorVolume;
  let handle: string;

  it('a staged claim: VolumeSnapshot → VolumeSnapshotContent ready once its member is detached', async () => {
    await claim('snap-src');
    source = await boundVolume('snap-src');
    const node = source.spec.replicas?.[0]?.node as string;
    await stage(node, source.metadata.name);
    await until('the source in sync', 30_000, async () => {
      const v = await k.getMeshStorVolume(source.metadata.name);
      return v.status?.members?.length === 2 && v.status.members.every((m) => m.state === 'InSync')
        ? v
        : undefined;
    });

    await k.custom.createNamespacedCustomObject({
      ...SNAP,
      namespace: 'default',
      plural: 'volumesnapshots',
      body: {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshot',
        metadata: { name: 'snap-1' },
        spec: { volumeSnapshotClassName: SC, source: { persistentVolumeClaimName: 'snap-src' } },
      },
    });
    const vs = await until('VolumeSnapshot snap-1 readyToUse', 120_000, async () => {
      const o = (await k.custom.getNamespacedCustomObject({
        ...SNAP,
        namespace: 'default',
        plural: 'volumesnapshots',
        name: 'snap-1',
      })) as VolumeSnapshot;
      return o.status?.readyToUse ? o : undefined;
    });
    const vsc = (await k.custom.getClusterCustomObject({
      ...SNAP,
      plural: 'volumesnapshotcontents',
      name: vs.status?.boundVolumeSnapshotContentName as string,
    })) as VolumeSnapshotContent;
    expect(vsc.status?.readyToUse).toBe(true);
    expect(vsc.status?.restoreSize).toBe(1024 ** 3);
    handle = vsc.status?.snapshotHandle as string;
    // the snapshot's own MeshStorVolume: its source, ready, one member; the source whole again
    const snap = await k.getMeshStorVolume(handle);
    expect(snap.spec.snapshot).toMatchObject({ source: source.metadata.name, readyToUse: true });
    expect(snap.spec.replicas).toHaveLength(1);
    const after = await k.getMeshStorVolume(source.metadata.name);
    expect(after.status?.capture).toBeUndefined();
    expect(after.status?.members?.filter((m) => m.state === 'InSync')).toHaveLength(2);
  });

  it('a claim from the snapshot binds, and is seeded from it at its first stage', async () => {
    await claim('snap-restored', {
      apiGroup: 'snapshot.storage.k8s.io',
      kind: 'VolumeSnapshot',
      name: 'snap-1',
    });
    const restored = await boundVolume('snap-restored');
    expect(restored.spec.seed).toMatchObject({ snapshot: handle, done: false });
    const node = restored.spec.replicas?.[0]?.node as string;
    await stage(node, restored.metadata.name);
    const seeded = await k.getMeshStorVolume(restored.metadata.name);
    expect(seeded.spec.seed?.done).toBe(true);
    await unstage(node, restored.metadata.name);
    await unstage(source.spec.replicas?.[0]?.node as string, source.metadata.name);
  });
});
