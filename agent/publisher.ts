// What this node's agent tells the cluster: its MeshStorNode (drives with their partitions and
// owners, free space, NVMe-oF identity, a heartbeat and a Ready condition), read from the Host.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { httpStatusOf, kubeErrorMessage } from '../kube/client.ts';
import {
  API_VERSION,
  type Condition,
  GROUP,
  type MeshStorNode,
  type MeshStorNodeStatus,
  type MeshStorSkippedDrive,
  PLURAL,
  VERSION,
} from '../kube/crds.ts';
import type { VolumeRecord } from '../state/store.ts';
import type { Host } from './host/types.ts';
import { withOwners } from './owners.ts';

export interface NodeIdentity {
  nodeName: string;
  zone?: string | undefined;
  rack?: string | undefined;
  /** Where this node's NVMe-oF target listens for other nodes. */
  address: string;
  port: number;
  /** false while the Node is cordoned (node-identity.ts); left out of the status when unknown. */
  schedulable?: boolean | undefined;
}

/** What the agent found at start besides the Host's drives: drives it skipped, conditions such as KernelModulesLoaded. */
export interface NodeReport {
  skippedDrives?: MeshStorSkippedDrive[] | undefined;
  conditions?: Omit<Condition, 'lastTransitionTime'>[] | undefined;
}

/** `records`: the volume records, so partitions whose GPT name was cut still name their replica. */
export async function nodeStatus(
  id: NodeIdentity,
  host: Host,
  records: readonly VolumeRecord[] = [],
  now = new Date(),
  report: NodeReport = {},
): Promise<MeshStorNodeStatus> {
  const drives = withOwners(await host.listDrives(), records, id.nodeName);
  let capacity = 0;
  let free = 0;
  for (const d of drives) {
    capacity += d.sizeBytes;
    for (const f of d.free) free += f.end - f.start;
  }
  return {
    heartbeatTime: now.toISOString(),
    ...(id.schedulable === undefined ? {} : { schedulable: id.schedulable }),
    hostNQN: host.hostNqn,
    nvmeofAddress: { transport: 'tcp', address: id.address, port: id.port },
    driveCount: drives.length,
    capacityBytes: capacity,
    freeBytes: free,
    drives: drives.map((d) => ({
      id: d.id,
      path: d.path,
      sizeBytes: d.sizeBytes,
      logicalBlockSize: d.logicalBlockSize === 4096 ? 4096 : 512,
      gptSlots: d.gptSlots || 128,
      partitions: d.partitions.map((p) => ({
        number: p.number,
        start: p.start,
        end: p.end,
        partUUID: p.partUuid,
        ...(p.owner
          ? { owner: { volume: p.owner.volumeId, replica: p.owner.replicaId } }
          : { label: p.name || 'foreign' }),
      })),
    })),
    ...(report.skippedDrives ? { skippedDrives: report.skippedDrives } : {}),
    conditions: [
      { type: 'Ready', status: 'True', reason: 'AgentRunning', lastTransitionTime: now.toISOString() },
      ...(report.conditions ?? [])
        .filter((c) => c.type !== 'Ready')
        .map((c) => ({ ...c, lastTransitionTime: now.toISOString() })),
    ],
  };
}

export class NodePublisher {
  private readonly api: CustomObjectsApi;
  private id: NodeIdentity;
  private report: NodeReport = {};
  private readonly host: Host;

  constructor(kc: KubeConfig, id: NodeIdentity, host: Host) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.id = id;
    this.host = host;
  }

  /** A new identity (the Node was cordoned or relabelled): the next publish writes it. */
  identify(id: NodeIdentity): void {
    if (id.nodeName !== this.id.nodeName)
      throw new Error(`the publisher of ${this.id.nodeName} cannot publish ${id.nodeName}`);
    this.id = id;
  }

  /** Skipped drives and extra conditions every publish includes from now on. */
  setReport(report: NodeReport): void {
    this.report = report;
  }

  /**
   * Creates the MeshStorNode if needed, brings spec.topology up to the identity's zone and rack,
   * and writes its status from the Host; retries a conflict once.
   * Pass the volume records: without them a partition whose GPT name was cut is reported as foreign.
   */
  async publish(records: readonly VolumeRecord[] = []): Promise<void> {
    const ref = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorNode, name: this.id.nodeName };
    for (let attempt = 0; attempt < 2; attempt++) {
      let obj: MeshStorNode;
      try {
        obj = (await this.api.getClusterCustomObject(ref)) as MeshStorNode;
      } catch (e) {
        if (httpStatusOf(e) !== 404)
          throw new Error(`reading MeshStorNode ${this.id.nodeName}: ${kubeErrorMessage(e)}`);
        const body: MeshStorNode = {
          apiVersion: API_VERSION,
          kind: 'MeshStorNode',
          metadata: { name: this.id.nodeName },
          spec: { nodeName: this.id.nodeName, topology: { zone: this.id.zone, rack: this.id.rack } },
        };
        obj = (await this.api.createClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL.MeshStorNode,
          body,
        })) as MeshStorNode;
      }
      const status = await nodeStatus(this.id, this.host, records, new Date(), this.report);
      // Keep each condition's transition time while its status holds.
      for (const c of status.conditions ?? []) {
        const was = obj.status?.conditions?.find((w) => w.type === c.type);
        if (was?.status === c.status && was.lastTransitionTime) c.lastTransitionTime = was.lastTransitionTime;
      }
      try {
        const topology = { zone: this.id.zone, rack: this.id.rack };
        if (obj.spec.topology?.zone !== topology.zone || obj.spec.topology?.rack !== topology.rack) {
          obj = (await this.api.replaceClusterCustomObject({
            ...ref,
            body: { ...obj, spec: { ...obj.spec, topology } },
          })) as MeshStorNode;
        }
        await this.api.replaceClusterCustomObjectStatus({ ...ref, body: { ...obj, status } });
        return;
      } catch (e) {
        if (httpStatusOf(e) !== 409 || attempt === 1)
          throw new Error(`writing MeshStorNode ${this.id.nodeName}: ${kubeErrorMessage(e)}`);
      }
    }
  }
}
