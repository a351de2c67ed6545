// Expansion when growth in place is blocked, through the real external-resizer sidecar (csi-resizer
// v2.3.0 built from its Go module by `npm run setup:cluster`), `meshstor controller --state kube`
// and one `meshstor agent` process per node (SimulatedHost, members over the simulated NVMe-oF
// fabric on TCP). Two volumes placed one after the other on the same two drives: the first cannot
// grow in place on either node. A PVC resize of it completes: ControllerExpandVolume answers
// ABORTED while each blocked member moves to a larger extent through the relocation steps, the
// MeshStorVolume shows the pending expansion (status.expansion, Expanding condition, Events), the
// resizer retries until the volume grew, and NodeExpandVolume (the test plays kubelet) grows md
// and the filesystem while the volume stays staged and published.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mountCap } from '../../csi/test/requests.ts';
import { NODE_KEY, ZONE_KEY } from '../../csi/topology.ts';
import { DRIVER_NAME, type MeshStorVolume } from '../../kube/crds.ts';
import { replicaExtentBytes } from '../../placement/geometry.ts';
import { GiB } from '../../placement/units.ts';
import { resizerBinary } from '../nodes/paths.ts';
import { type CsiClient, csiClient } from '../support/csi-client.ts';
import { MeshstorProcess } from '../support/meshstor-process.ts';
import { Kube, readyNodeStatus, startSimulatedAgent, until } from './kube.ts';

const NODES = ['exp-n1', 'exp-n2'];
const ZONE = 'exp-zone';
const SC = 'meshstor-expand';
const PVC = 'data-expand';
let k: Kube;
let dir: string;
let controller: MeshstorProcess;
let csi: CsiClient;
let resizer: ChildProcess | undefined;
let resizerLog: string;
const agents = new Map<string, { proc: MeshstorProcess; client: CsiClient }>();
const agent = (n: string) => {
  const a = agents.get(n);
  if (!a) throw new Error(`no agent on ${n}`);
  return a;
};
const staging = (node: string, id: string) => join(dir, node, id, 'globalmount');
const target = (node: string, id: string) => join(dir, node, 'pods', id, 'mount');

async function createNode(name: string) {
  const now = new Date();
  await k.core.createNode({
    body: {
      metadata: { name, labels: { 'kubernetes.io/hostname': name, [NODE_KEY]: name, [ZONE_KEY]: ZONE } },
      status: readyNodeStatus(now),
    },
  });
}

async function startAgent(name: string, kubeconfig: string) {
  agents.set(
    name,
    await startSimulatedAgent({ node: name, zone: ZONE, kubeconfig, dir, drives: '16GiB', resyncSeconds: 2 }),
  );
}

async function createVolume(name: string): Promise<string> {
  const r = (await csi.call('CreateVolume', {
    name,
    capacity_range: { required_bytes: String(GiB) },
    volume_capabilities: [mountCap],
    parameters: { replicaCount: '2' },
  })) as { volume: { volume_id: string } };
  return r.volume.volume_id;
}

/** A PV for the volume and a claim bound to it, in the class that allows expansion. */
async function claimFor(volumeId: string) {
  await k.core.createPersistentVolume({
    body: {
      metadata: { name: volumeId },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: SC,
        claimRef: { namespace: 'default', name: PVC },
        csi: { driver: DRIVER_NAME, volumeHandle: volumeId, fsType: 'xfs' },
      },
    },
  });
  await k.core.createNamespacedPersistentVolumeClaim({
    namespace: 'default',
    body: {
      metadata: { name: PVC },
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: SC,
        volumeName: volumeId,
        resources: { requests: { storage: '1Gi' } },
      },
    },
  });
  await until('the claim to be bound', 60_000, async () => {
    const c = await k.core.readNamespacedPersistentVolumeClaim({ name: PVC, namespace: 'default' });
    return c.status?.phase === 'Bound' ? c : undefined;
  });
}

beforeAll(async () => {
  const { kubeconfig } = inject('cluster');
  k = new Kube(kubeconfig);
  const bin = resizerBinary();
  if (!existsSync(bin)) throw new Error(`csi-resizer is missing at ${bin}: run \`npm run setup:cluster\``);
  dir = mkdtempSync(join(tmpdir(), 'meshstor-expand-'));
  // this file's cluster is its own two nodes: other files' MeshStorNodes have no agent behind them
  await k.deleteMeshStorNodesExcept(NODES);
  for (const n of NODES) await createNode(n);
  for (const n of NODES) await startAgent(n, kubeconfig);
  await k.storage.createStorageClass({
    body: {
      metadata: { name: SC },
      provisioner: DRIVER_NAME,
      parameters: { replicaCount: '2' },
      allowVolumeExpansion: true,
      volumeBindingMode: 'Immediate',
      reclaimPolicy: 'Retain',
    },
  });
  const socket = join(dir, 'csi.sock');
  controller = MeshstorProcess.kubeController(socket, kubeconfig, ['--resync-seconds', '1']);
  await controller.waitFor('leading');
  csi = csiClient(socket, 'Controller');
  resizerLog = join(dir, 'csi-resizer.log');
  resizer = spawn(
    bin,
    [
      `--csi-address=${socket}`,
      `--kubeconfig=${kubeconfig}`,
      '--leader-election=false',
      '--timeout=30s',
      '--retry-interval-start=500ms',
      '--retry-interval-max=4s',
      '--v=4',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out = createWriteStream(resizerLog);
  resizer.stdout?.pipe(out);
  resizer.stderr?.pipe(out);
}, 120_000);

afterAll(async () => {
  resizer?.kill('SIGTERM');
  const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
  await quiet(k.core.deleteNamespacedPersistentVolumeClaim({ name: PVC, namespace: 'default' }));
  for (const v of ['expand-a', 'expand-b']) {
    await quiet(k.core.deletePersistentVolume({ name: v }));
    await quiet(csi?.call('DeleteVolume', { volume_id: v }) ?? Promise.resolve());
  }
  await quiet(k.storage.deleteStorageClass({ name: SC }));
  csi?.close();
  await controller?.stop();
  for (const [name, a] of agents) {
    a.client.close();
    await a.proc.stop();
    writeFileSync(join(dir, `agent-${name}.log`), a.proc.log);
  }
  if (controller) writeFileSync(join(dir, 'controller.log'), controller.log);
  console.log(`expansion test logs: ${dir}`);
  for (const n of NODES) {
    await quiet(k.core.deleteNode({ name: n }));
    await quiet(k.custom.deleteClusterCustomObject(k.ref('MeshStorNode', n)));
  }
});

describe('expansion through the real external-resizer when growth in place is blocked', () => {
  it('a PVC resize completes: each blocked member moves to a larger extent, then md and XFS grow while staged', async () => {
    // Both agents ready: the controller places across them.
    const a = await until('CreateVolume to place on both nodes', 60_000, () =>
      createVolume('expand-a').catch(() => undefined),
    );
    const b = await createVolume('expand-b');
    const before = await k.getMeshStorVolume(a);
    const after = await k.getMeshStorVolume(b);
    // best-fit put b right after a on both drives: neither member of a can grow in place to 2 GiB
    for (const r of before.spec.replicas ?? []) {
      const next = after.spec.replicas?.find((x) => x.node === r.node && x.drive === r.drive);
      expect(next?.extent.start).toBeLessThan(r.extent.start + replicaExtentBytes(2 * GiB));
      expect(next?.extent.start).toBeGreaterThanOrEqual(r.extent.end);
    }

    // kubelet stages and publishes on exp-n1 (its own member, exp-n2's over NVMe-oF)
    const c = agent('exp-n1').client;
    await c.call('NodeStageVolume', {
      volume_id: a,
      staging_target_path: staging('exp-n1', a),
      volume_capability: mountCap,
    });
    await c.call('NodePublishVolume', {
      volume_id: a,
      staging_target_path: staging('exp-n1', a),
      target_path: target('exp-n1', a),
      volume_capability: mountCap,
    });
    const staged = await until('both members in sync', 30_000, async () => {
      const v = await k.getMeshStorVolume(a);
      return v.status?.members?.length === 2 && v.status.members.every((m) => m.state === 'InSync')
        ? v
        : undefined;
    });
    await claimFor(a);

    // The user asks for 2 GiB.
    const t0 = Date.now();
    const pvc = await k.core.readNamespacedPersistentVolumeClaim({ name: PVC, namespace: 'default' });
    pvc.spec = { ...pvc.spec, resources: { requests: { storage: '2Gi' } } };
    await k.core.replaceNamespacedPersistentVolumeClaim({ name: PVC, namespace: 'default', body: pvc });

    // While the members move the record shows the pending expansion and its progress.
    const seen = new Set<string>();
    let pending: MeshStorVolume | undefined;
    const pv = await until('the resizer to grow the PV', 110_000, async () => {
      const v = await k.getMeshStorVolume(a);
      const cond = v.status?.conditions?.find((x) => x.type === 'Expanding');
      if (cond?.status === 'True') {
        seen.add(cond.reason ?? '');
        pending ??= v;
      }
      const p = await k.core.readPersistentVolume({ name: a });
      return p.spec?.capacity?.storage === '2Gi' ? p : undefined;
    });
    const controllerDone = Date.now() - t0;
    expect(pv.spec?.capacity?.storage).toBe('2Gi');
    expect(pending?.status?.expansion?.sizeBytes).toBe(2 * GiB);
    expect(seen.has('RelocatingForGrowth')).toBe(true);

    // The record: new size, both members moved (new ids, larger extents), on the same two nodes,
    // in sync, nothing pending; the old extents released.
    const grown = await k.getMeshStorVolume(a);
    expect(grown.spec.sizeBytes).toBe(2 * GiB);
    expect(grown.status?.expansion).toBeUndefined();
    expect(grown.status?.relocation).toBeUndefined();
    expect(grown.status?.conditions?.find((x) => x.type === 'Expanding')).toMatchObject({
      status: 'False',
      reason: 'Expanded',
    });
    const old = new Set(staged.spec.replicas?.map((r) => r.id));
    expect(grown.spec.replicas?.map((r) => old.has(r.id))).toEqual([false, false]);
    expect(grown.spec.replicas?.map((r) => r.node).sort()).toEqual(NODES);
    for (const r of grown.spec.replicas ?? [])
      expect(r.extent.end - r.extent.start).toBeGreaterThanOrEqual(replicaExtentBytes(2 * GiB));
    expect(grown.status?.members?.map((m) => m.state)).toEqual(['InSync', 'InSync']);
    expect(grown.status?.arrayUUID).toBe(staged.status?.arrayUUID); // the same array, never made again
    const events = await k.core.listNamespacedEvent({
      namespace: 'default',
      fieldSelector: `involvedObject.name=${a}`,
    });
    expect(events.items.filter((e) => e.reason === 'ExpansionRelocating').length).toBeGreaterThanOrEqual(1);
    // The resizer saw ABORTED (in progress) before it succeeded, and retried.
    const log = readFileSync(resizerLog, 'utf8');
    expect(log).toMatch(/Aborted desc = volume expand-a: expansion to 2147483648 bytes in progress/);
    const claim = await until('the claim to wait for the node to grow the filesystem', 30_000, async () => {
      const p = await k.core.readNamespacedPersistentVolumeClaim({ name: PVC, namespace: 'default' });
      return p.status?.conditions?.some((x) => x.type === 'FileSystemResizePending') ? p : undefined;
    });
    expect(claim.status?.conditions?.find((x) => x.type === 'FileSystemResizePending')).toBeDefined();

    // kubelet's part, while the volume stays staged and published: md and the filesystem grow online.
    const n = (await c.call('NodeExpandVolume', {
      volume_id: a,
      volume_path: target('exp-n1', a),
      capacity_range: { required_bytes: String(2 * GiB) },
    })) as { capacity_bytes: string };
    const nodeDone = Date.now() - t0;
    expect(Number(n.capacity_bytes)).toBeGreaterThanOrEqual(2 * GiB);
    const stats = (await c.call('NodeGetVolumeStats', {
      volume_id: a,
      volume_path: target('exp-n1', a),
    })) as {
      usage: { total: string; unit: string }[];
    };
    expect(Number(stats.usage.find((u) => u.unit === 'BYTES')?.total)).toBeGreaterThanOrEqual(2 * GiB);
    console.log(
      `expansion with two members moved: PV grown ${controllerDone} ms after the resize, NodeExpandVolume done at ${nodeDone} ms`,
    );
    await c.call('NodeUnpublishVolume', { volume_id: a, target_path: target('exp-n1', a) });
    await c.call('NodeUnstageVolume', { volume_id: a, staging_target_path: staging('exp-n1', a) });
  });
});
