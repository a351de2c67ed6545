// The controller's state in Kubernetes: one MeshStorVolume per volume (spec = the layout placement
// chose, status = what agents report) and the MeshStorNodes the agents publish.
// Deleting: the object is deleted with a finalizer on it, so it stays (deletionTimestamp set) until
// the controller sees no agent reporting a partition of it and drops the finalizer.

import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { httpStatusOf, kubeErrorMessage } from '../kube/client.ts';
import {
  API_VERSION,
  GROUP,
  type MeshStorNode,
  type MeshStorVolume,
  type MeshStorVolumeStatus,
  PLURAL,
  VERSION,
} from '../kube/crds.ts';
import { type RunningInformer, startCustomInformer } from '../kube/informers.ts';
import type { Logger } from '../kube/log.ts';
import type { NodeInfo } from '../placement/model.ts';
import { readyCondition, withCondition } from './conditions.ts';
import { StateError } from './errors.ts';
import { withExpanding } from './expansion-condition.ts';
import { KubeLedger } from './kube-ledger.ts';
import { retryTransient } from './kube-retry.ts';
import type { ExtentLedger } from './ledger.ts';
import { agentReady, nodeInfoFrom, volumeInfoFrom } from './placement-model.ts';
import { snapshotFieldsOf, snapshotSpecOf } from './snapshot-objects.ts';
import type { NodeInventory, Peer, PeerDirectory, Relocation, VolumeRecord, VolumeStore } from './store.ts';

export const FINALIZER = 'meshstor.io/partitions-wiped';
const CSI_NAME = 'meshstor.io/csi-name';
const ALLOCATION = 'meshstor.io/allocation';

type Stored = MeshStorVolume & { metadata: MeshStorVolume['metadata'] & { deletionTimestamp?: string } };

const STEPS = new Set<Relocation['step']>(['adding', 'syncing', 'removing', 'done', 'cancelled']);

function relocationOf(r: MeshStorVolumeStatus['relocation']): Relocation | undefined {
  if (!r?.toNode || !r.toReplica || !r.fromReplica || !STEPS.has(r.step as Relocation['step']))
    return undefined;
  return {
    toNode: r.toNode,
    toReplica: r.toReplica,
    fromReplica: r.fromReplica,
    step: r.step as Relocation['step'],
    bytesDone: r.bytesDone,
    bytesTotal: r.bytesTotal,
  };
}

function toRecord(o: Stored): VolumeRecord {
  const v = volumeInfoFrom(o);
  return {
    id: v.id,
    name: o.metadata.annotations?.[CSI_NAME] ?? o.metadata.name,
    sizeBytes: v.sizeBytes,
    replicaCount: v.replicaCount,
    spread: v.spread,
    fsType: 'xfs',
    replicas: v.replicas,
    phase: o.metadata.deletionTimestamp ? 'Deleting' : 'Active',
    allocation: o.metadata.annotations?.[ALLOCATION],
    arrayUuid: o.status?.arrayUUID,
    relocation: relocationOf(o.status?.relocation),
    expansion: o.status?.expansion?.sizeBytes
      ? { sizeBytes: o.status.expansion.sizeBytes, waiting: o.status.expansion.waiting }
      : undefined,
    attachment: o.spec.attachment?.hostNQN
      ? { node: o.spec.attachment.node, hostNqn: o.spec.attachment.hostNQN }
      : undefined,
    ...snapshotFieldsOf(o.spec, o.status),
  };
}

/** The MeshStorVolume a new record is created as (status is the agents' to write). */
export function volumeObject(r: VolumeRecord): MeshStorVolume {
  return {
    apiVersion: API_VERSION,
    kind: 'MeshStorVolume',
    metadata: {
      name: r.id,
      finalizers: [FINALIZER],
      annotations: { [CSI_NAME]: r.name, ...(r.allocation ? { [ALLOCATION]: r.allocation } : {}) },
    },
    spec: {
      sizeBytes: r.sizeBytes,
      replicaCount: r.replicaCount,
      fsType: r.fsType,
      spread: { ...r.spread },
      replicas: r.replicas.map((x) => ({
        id: x.id,
        node: x.node,
        drive: x.drive,
        extent: { ...x.extent },
      })),
      ...snapshotSpecOf(r),
    },
  };
}

export class KubeVolumeStore implements VolumeStore {
  private readonly api: CustomObjectsApi;
  /** The MeshStorLedgers the allocator claims extents in. */
  readonly ledger: ExtentLedger;
  /** The object each record was read from, for resourceVersion-guarded writes. */
  private readonly origin = new WeakMap<VolumeRecord, Stored>();

  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.ledger = new KubeLedger(kc);
  }

  private readonly all = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorVolume };

  private ref(name: string) {
    return { ...this.all, name };
  }

  /** A record of an object read elsewhere (a watch), writable under its resourceVersion. */
  wrap(o: Stored): VolumeRecord {
    const r = toRecord(o);
    this.origin.set(r, o);
    return r;
  }

  async get(id: string): Promise<VolumeRecord | undefined> {
    try {
      return this.wrap((await retryTransient(() => this.api.getClusterCustomObject(this.ref(id)))) as Stored);
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw new StateError('unavailable', `reading MeshStorVolume ${id}: ${kubeErrorMessage(e)}`);
    }
  }

  async list(): Promise<VolumeRecord[]> {
    const l = (await retryTransient(() => this.api.listClusterCustomObject(this.all))) as { items: Stored[] };
    return l.items.map((o) => this.wrap(o));
  }

  async create(r: VolumeRecord): Promise<void> {
    const body = volumeObject(r);
    try {
      await this.api.createClusterCustomObject({ ...this.all, body });
    } catch (e) {
      if (httpStatusOf(e) === 409) throw new StateError('exists', `MeshStorVolume ${r.id} exists already`);
      throw new StateError('unavailable', `creating MeshStorVolume ${r.id}: ${kubeErrorMessage(e)}`);
    }
  }

  async replace(r: VolumeRecord): Promise<void> {
    const o = this.origin.get(r);
    if (!o) throw new Error(`internal: record ${r.id} was not read from this store`);
    try {
      if (r.phase === 'Deleting' && !o.metadata.deletionTimestamp) {
        // The finalizer keeps the object (and so its extents) until the partitions are wiped.
        await this.api.deleteClusterCustomObject({
          ...this.ref(r.id),
          body: { preconditions: { resourceVersion: o.metadata.resourceVersion } },
        });
        return;
      }
      let cur: Stored = o;
      const spec: MeshStorVolume['spec'] = {
        ...o.spec,
        sizeBytes: r.sizeBytes,
        replicas: r.replicas.map((x) => ({
          id: x.id,
          node: x.node,
          drive: x.drive,
          extent: { ...x.extent },
        })),
      };
      if (r.attachment) spec.attachment = { node: r.attachment.node, hostNQN: r.attachment.hostNqn };
      else delete spec.attachment;
      Object.assign(spec, snapshotSpecOf(r));
      if (JSON.stringify(spec) !== JSON.stringify(o.spec)) {
        cur = (await this.api.replaceClusterCustomObject({
          ...this.ref(r.id),
          body: { ...o, spec },
        })) as Stored;
      }
      const members = r.replicas.map((x) => ({ replicaId: x.id, node: x.node, state: x.state }));
      const nextStatus: MeshStorVolumeStatus = {
        ...cur.status,
        relocation: r.relocation && { ...r.relocation },
        capture: r.capture && { ...r.capture },
        expansion: r.expansion && { ...r.expansion },
        arrayUUID: r.arrayUuid,
        members,
        inSyncMembers: members.filter((m) => m.state === 'InSync').length,
        conditions: withExpanding(withCondition(cur.status?.conditions, readyCondition(r)), r),
      };
      if (JSON.stringify(nextStatus) !== JSON.stringify(cur.status ?? {})) {
        await this.api.replaceClusterCustomObjectStatus({
          ...this.ref(r.id),
          body: { ...cur, status: nextStatus },
        });
      }
    } catch (e) {
      if (httpStatusOf(e) === 409)
        throw new StateError('changed', `MeshStorVolume ${r.id} changed since it was read; retry`);
      if (httpStatusOf(e) === 404) throw new StateError('not-found', `MeshStorVolume ${r.id} does not exist`);
      throw new StateError('unavailable', `writing MeshStorVolume ${r.id}: ${kubeErrorMessage(e)}`);
    }
  }

  /** Drops the finalizer: the apiserver then removes the object (its deletion was requested). */
  async remove(id: string): Promise<void> {
    try {
      const o = (await this.api.getClusterCustomObject(this.ref(id))) as Stored;
      if (!o.metadata.deletionTimestamp) {
        await this.api.deleteClusterCustomObject({
          ...this.ref(id),
          body: { preconditions: { resourceVersion: o.metadata.resourceVersion } },
        });
        return this.remove(id);
      }
      const finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
      await this.api.replaceClusterCustomObject({
        ...this.ref(id),
        body: { ...o, metadata: { ...o.metadata, finalizers } },
      });
    } catch (e) {
      if (httpStatusOf(e) === 404) return;
      if (httpStatusOf(e) === 409)
        throw new StateError(
          'changed',
          `MeshStorVolume ${id} changed while its finalizer was removed; retry`,
        );
      throw new StateError('unavailable', `removing MeshStorVolume ${id}: ${kubeErrorMessage(e)}`);
    }
  }
}

/** Nodes as their agents publish them in MeshStorNode status. */
export class KubeNodeInventory implements NodeInventory {
  private readonly api: CustomObjectsApi;
  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async nodes(): Promise<NodeInfo[]> {
    const all = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorNode };
    const l = (await retryTransient(() => this.api.listClusterCustomObject(all))) as {
      items: MeshStorNode[];
    };
    return l.items.map((n) => nodeInfoFrom(n, agentReady(n)));
  }
}

/** Peers from the MeshStorNodes their agents publish; a stale heartbeat means not ready. */
export class KubePeerDirectory implements PeerDirectory {
  private readonly api: CustomObjectsApi;
  private readonly staleMs: number;
  constructor(kc: KubeConfig, staleMs = 90_000) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.staleMs = staleMs;
  }

  async peer(node: string): Promise<Peer | undefined> {
    let n: MeshStorNode;
    try {
      n = (await retryTransient(() =>
        this.api.getClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL.MeshStorNode,
          name: node,
        }),
      )) as MeshStorNode;
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw new StateError('unavailable', `reading MeshStorNode ${node}: ${kubeErrorMessage(e)}`);
    }
    const s = n.status;
    if (!s?.hostNQN || !s.nvmeofAddress) return undefined;
    const beat = s.heartbeatTime ? Date.parse(s.heartbeatTime) : Number.NaN;
    return {
      node,
      hostNqn: s.hostNQN,
      address: { address: s.nvmeofAddress.address, port: s.nvmeofAddress.port },
      ready: agentReady(n) && Date.now() - beat <= this.staleMs,
    };
  }
}

/**
 * MeshStorVolumes as a watch keeps them, for the agent: its passes list every volume each few
 * seconds, which read from the apiserver would cost O(cluster) per node per pass. Reading one record
 * and every write still go to the apiserver (resourceVersion-guarded), so a lagging cache only
 * delays a pass. `onChange` hears of every change with the object before and after.
 */
export class WatchedVolumeStore implements VolumeStore {
  private readonly inner: KubeVolumeStore;
  private readonly objects = new Map<string, Stored>();
  private informer: RunningInformer | undefined;

  constructor(inner: KubeVolumeStore) {
    this.inner = inner;
  }

  start(
    kc: KubeConfig,
    log: Logger,
    onChange?: (before: MeshStorVolume | undefined, after: MeshStorVolume | undefined) => void,
  ) {
    this.informer = startCustomInformer<MeshStorVolume>(
      kc,
      PLURAL.MeshStorVolume,
      {
        // deletionTimestamp arrives as the JSON string it is; only its presence is read.
        upsert: (v) => {
          const o = v as Stored;
          const before = this.objects.get(o.metadata.name);
          this.objects.set(o.metadata.name, o);
          onChange?.(before, o);
        },
        remove: ({ name }) => {
          const before = this.objects.get(name);
          this.objects.delete(name);
          onChange?.(before, undefined);
        },
      },
      log,
    );
    return this.informer;
  }

  async stop(): Promise<void> {
    await this.informer?.stop();
  }

  get ledger(): ExtentLedger {
    return this.inner.ledger;
  }

  async list(): Promise<VolumeRecord[]> {
    // Until the first list arrived the cache knows nothing: ask the apiserver.
    if (!this.informer?.synced()) return this.inner.list();
    return [...this.objects.values()].map((o) => this.inner.wrap(o));
  }

  get(id: string) {
    return this.inner.get(id);
  }
  create(r: VolumeRecord) {
    return this.inner.create(r);
  }
  replace(r: VolumeRecord) {
    return this.inner.replace(r);
  }
  remove(id: string) {
    return this.inner.remove(id);
  }
}
