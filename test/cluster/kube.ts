// Helpers the cluster tier uses to create objects through the real apiserver: CRDs, API-only Nodes
// (no kubelet) with their CSINode, MeshStorNodes, MeshStorVolumes with a bound PV and PVC, pods.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  loadYaml,
  StorageV1Api,
  type V1CustomResourceDefinition,
  type V1Pod,
} from '@kubernetes/client-node';
import { loadKubeConfig } from '../../kube/client.ts';
import {
  API_VERSION,
  DRIVER_NAME,
  GROUP,
  type MeshStorNode,
  type MeshStorVolume,
  PLURAL,
  VERSION,
} from '../../kube/crds.ts';
import { GiB } from '../../placement/units.ts';
import type { VolumeStore } from '../../state/store.ts';
import { type CsiNodeClient, csiNodeClient } from '../support/csi-client.ts';
import { MeshstorProcess } from '../support/meshstor-process.ts';
import { freePort } from './control-plane.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function crdManifests(): V1CustomResourceDefinition[] {
  const dir = join(root, 'deploy/crds');
  return (
    readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      // loadYaml maps JSON names (enum, default, x-kubernetes-validations) onto the client's model;
      // a plain parse would be re-serialized without them.
      .map((f) => loadYaml<V1CustomResourceDefinition>(readFileSync(join(dir, f), 'utf8')))
  );
}

/** Creates the CRDs of deploy/crds and waits until the apiserver serves them. */
export async function applyCrds(kubeconfig: string): Promise<void> {
  await createCrds(kubeconfig, crdManifests());
}

/** Creates CRDs (one that exists already is left, when `existing` says so) and waits until served. */
export async function createCrds(
  kubeconfig: string,
  crds: V1CustomResourceDefinition[],
  existing: 'refuse' | 'keep' = 'refuse',
): Promise<void> {
  const api = loadKubeConfig(kubeconfig).makeApiClient(ApiextensionsV1Api);
  for (const crd of crds) {
    await api.createCustomResourceDefinition({ body: crd }).catch((e: unknown) => {
      if (existing === 'refuse' || (e as { code?: number }).code !== 409) throw e;
    });
    const name = crd.metadata?.name as string;
    await until(`CRD ${name} Established`, 30_000, async () => {
      const c = await api.readCustomResourceDefinition({ name });
      return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True')
        ? true
        : undefined;
    });
  }
}

export class Kube {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly storage: StorageV1Api;
  readonly custom: CustomObjectsApi;

  constructor(kubeconfig: string) {
    this.kc = loadKubeConfig(kubeconfig);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.storage = this.kc.makeApiClient(StorageV1Api);
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
  }

  /** A Node as kubelet would register it (Ready, allocatable) and the CSINode kubelet would create. */
  /** A MeshStor object by kind and name (cluster-scoped). */
  ref(kind: keyof typeof PLURAL, name: string) {
    return { group: GROUP, version: VERSION, plural: PLURAL[kind], name };
  }

  async getMeshStorNode(name: string): Promise<MeshStorNode> {
    return (await this.custom.getClusterCustomObject(this.ref('MeshStorNode', name))) as MeshStorNode;
  }

  /** Deletes every MeshStorNode but these (what other test files left in the shared apiserver). */
  async deleteMeshStorNodesExcept(keep: readonly string[]): Promise<string[]> {
    // Right after another file re-applied the CRDs, their storage may still be re-initializing
    // (429, "retry after 1 s"): wait it out.
    const list = await until('MeshStorNodes listable', 30_000, async () => {
      try {
        return (await this.custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL.MeshStorNode,
        })) as { items: MeshStorNode[] };
      } catch (e) {
        if ((e as { code?: number }).code === 429) return undefined;
        throw e;
      }
    });
    const gone = list.items.map((n) => n.metadata.name).filter((n) => !keep.includes(n));
    for (const name of gone) await this.custom.deleteClusterCustomObject(this.ref('MeshStorNode', name));
    return gone;
  }

  async getMeshStorVolume(name: string): Promise<MeshStorVolume> {
    return (await this.custom.getClusterCustomObject(this.ref('MeshStorVolume', name))) as MeshStorVolume;
  }

  /** An API-only Node (Ready, allocatable), its CSINode, and `internalIp` as its InternalIP address. */
  async createNode(
    name: string,
    opts: { zone?: string; cpu?: string; internalIp?: string } = {},
  ): Promise<void> {
    const now = new Date();
    await this.core.createNode({
      body: {
        metadata: {
          name,
          labels: {
            'kubernetes.io/hostname': name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            ...(opts.zone ? { 'topology.kubernetes.io/zone': opts.zone } : {}),
          },
          annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
        },
        spec: {},
        status: {
          capacity: { cpu: opts.cpu ?? '8', memory: '32Gi', pods: '110' },
          allocatable: { cpu: opts.cpu ?? '8', memory: '32Gi', pods: '110' },
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'TestHarness',
              message: 'created through the API by the test harness (no kubelet)',
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
          ...(opts.internalIp ? { addresses: [{ type: 'InternalIP', address: opts.internalIp }] } : {}),
        },
      },
    });
    // TaintNodesByCondition admission is off; should anything have tainted the node, lift it.
    const n = await this.core.readNode({ name });
    if (n.spec?.taints?.length) {
      n.spec.taints = [];
      await this.core.replaceNode({ name, body: n });
    }
    await this.storage.createCSINode({
      body: {
        metadata: { name },
        spec: {
          drivers: [{ name: DRIVER_NAME, nodeID: name, topologyKeys: [], allocatable: { count: 64 } }],
        },
      },
    });
  }

  /** The MeshStorNode its agent would write: one drive with `freeBytes` of room, Ready, fresh heartbeat. */
  async createMeshStorNode(
    name: string,
    opts: { driveBytes?: number; healthy?: boolean; zone?: string } = {},
  ) {
    const body: MeshStorNode = {
      apiVersion: API_VERSION,
      kind: 'MeshStorNode',
      metadata: { name },
      spec: { nodeName: name, topology: opts.zone ? { zone: opts.zone } : {} },
    };
    const created = (await this.custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorNode,
      body,
    })) as MeshStorNode;
    const size = opts.driveBytes ?? 1024 * GiB;
    created.status = {
      heartbeatTime: new Date().toISOString(),
      driveCount: 1,
      capacityBytes: size,
      freeBytes: size,
      drives: [
        { id: `${name}-nvme0`, path: '/dev/nvme0n1', sizeBytes: size, logicalBlockSize: 512, gptSlots: 128 },
      ],
      conditions: [
        {
          type: 'Ready',
          status: opts.healthy === false ? 'False' : 'True',
          reason: 'TestHarness',
          lastTransitionTime: new Date().toISOString(),
        },
      ],
    };
    await this.custom.replaceClusterCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorNode,
      name,
      body: created,
    });
  }

  /**
   * A provisioned MeshStor volume: the MeshStorVolume (replica layout in spec, members InSync in
   * status), a PV of our CSI driver pointing at it, and a PVC bound to the PV.
   */
  async createVolume(
    name: string,
    replicaNodes: string[],
    opts: { sizeBytes?: number; namespace?: string } = {},
  ): Promise<{ pvc: string }> {
    const size = opts.sizeBytes ?? 10 * GiB;
    const ns = opts.namespace ?? 'default';
    const extentBytes = Math.ceil((size + 128 * 1024 * 1024) / (1024 * 1024)) * 1024 * 1024;
    const body: MeshStorVolume = {
      apiVersion: API_VERSION,
      kind: 'MeshStorVolume',
      metadata: { name },
      spec: {
        sizeBytes: size,
        replicaCount: replicaNodes.length,
        volumeMode: 'Filesystem',
        fsType: 'xfs',
        replicas: replicaNodes.map((node, i) => ({
          id: `r${i}`,
          node,
          drive: `${node}-nvme0`,
          extent: { start: 1024 * 1024, end: 1024 * 1024 + extentBytes },
        })),
      },
    };
    const created = (await this.custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorVolume,
      body,
    })) as MeshStorVolume;
    created.status = {
      inSyncMembers: replicaNodes.length,
      members: replicaNodes.map((node, i) => ({ replicaId: `r${i}`, node, state: 'InSync' })),
    };
    await this.custom.replaceClusterCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorVolume,
      name,
      body: created,
    });
    const storage = `${Math.round(size / GiB)}Gi`;
    const pvc = `pvc-${name}`;
    await this.core.createPersistentVolume({
      body: {
        metadata: { name: `pv-${name}` },
        spec: {
          capacity: { storage },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: 'meshstor',
          claimRef: { namespace: ns, name: pvc },
          csi: { driver: DRIVER_NAME, volumeHandle: name, fsType: 'xfs' },
        },
      },
    });
    await this.core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: {
        metadata: { name: pvc },
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: 'meshstor',
          volumeName: `pv-${name}`,
          resources: { requests: { storage } },
        },
      },
    });
    await until(`PVC ${ns}/${pvc} Bound`, 30_000, async () => {
      const c = await this.core.readNamespacedPersistentVolumeClaim({ name: pvc, namespace: ns });
      return c.status?.phase === 'Bound' ? true : undefined;
    });
    return { pvc };
  }

  async createPod(name: string, pvcs: string[], opts: { namespace?: string; schedulerName?: string } = {}) {
    const ns = opts.namespace ?? 'default';
    const pod: V1Pod = {
      metadata: { name },
      spec: {
        ...(opts.schedulerName ? { schedulerName: opts.schedulerName } : {}),
        containers: [
          {
            name: 'app',
            image: 'registry.invalid/never-pulled:0', // no kubelet runs it
            resources: { requests: { cpu: '100m', memory: '64Mi' } },
            volumeMounts: pvcs.map((_, i) => ({ name: `v${i}`, mountPath: `/data${i}` })),
          },
        ],
        volumes: pvcs.map((claimName, i) => ({ name: `v${i}`, persistentVolumeClaim: { claimName } })),
      },
    };
    await this.core.createNamespacedPod({ namespace: ns, body: pod });
  }

  /** The node kube-scheduler bound the pod to. */
  async scheduledNode(name: string, timeoutMs = 60_000, namespace = 'default'): Promise<string> {
    return until(`pod ${namespace}/${name} bound to a node`, timeoutMs, async () => {
      const p = await this.core.readNamespacedPod({ name, namespace });
      return p.spec?.nodeName || undefined;
    });
  }
}

/** A store that lists one test file's records only (their ids start with `prefix`): files share the apiserver. */
export function recordsOf(prefix: string, store: VolumeStore): VolumeStore {
  return {
    get: (id) => store.get(id),
    list: async () => (await store.list()).filter((r) => r.id.startsWith(prefix)),
    create: (r) => store.create(r),
    replace: (r) => store.replace(r),
    remove: (id) => store.remove(id),
    ledger: store.ledger,
  };
}

/**
 * One `meshstor agent` process as a node's DaemonSet pod would run it, on SimulatedHost: its CSI
 * socket in `dir`, its own drive and NVMe-oF port, kubelet's directory played by the test (`dir`).
 * Resolves once it serves, with a CSI Node client on its socket.
 */
export async function startSimulatedAgent(a: {
  node: string;
  zone: string;
  kubeconfig: string;
  dir: string;
  drives: string;
  resyncSeconds: number;
}): Promise<{ proc: MeshstorProcess; client: CsiNodeClient }> {
  const socket = join(a.dir, `${a.node}.sock`);
  const proc = new MeshstorProcess([
    'agent',
    '--host',
    'simulated',
    '--csi-socket',
    socket,
    '--node',
    a.node,
    '--zone',
    a.zone,
    '--kubeconfig',
    a.kubeconfig,
    '--resync-seconds',
    String(a.resyncSeconds),
    '--drives',
    a.drives,
    '--kubelet-dir',
    a.dir,
    '--address',
    '127.0.0.1',
    '--port',
    String(await freePort()),
  ]);
  await proc.waitFor('serving');
  return { proc, client: csiNodeClient(socket) };
}

/** A Node object that reports Ready with room for pods (no kubelet behind it: the test plays it). */
export function readyNodeStatus(now = new Date()) {
  return {
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
  };
}
