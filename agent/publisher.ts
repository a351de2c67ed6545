// What this node's agent tells the cluster: its MeshStorNode (drives with their partitions and
// owners, free space, NVMe-oF identity, a heartbeat and a Ready condition), read from the Host.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { httpStatusOf, kubeErrorMessage } from '../kube/client.ts';
import {
  API_VERSION,
  GROUP,
  type MeshStorNode,
  type MeshStorNodeStatus,
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
}

/** `records`: the volume records, so partitions whose GPT name was cut still name their replica. */
export async function nodeStatus(
  id: NodeIdentity,
  host: Host,
  records: readonly VolumeRecord[] = [],
  now = new Date(),
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
    conditions: [
      { type: 'Ready', status: 'True', reason: 'AgentRunning', lastTransitionTime: now.toISOString() },
    ],
  };
}

export class NodePublisher {
  private readonly api: CustomObjectsApi;
  private readonly id: NodeIdentity;
  private readonly host: Host;

  constructor(kc: KubeConfig, id: NodeIdentity, host: Host) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.id = id;
    this.host = host;
  }

  /**
   * Creates the MeshStorNode if needed and writes its status from the Host; retries a conflict once.
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
      const status = await nodeStatus(this.id, this.host, records);
      // Keep the Ready condition's transition time while it stays True.
      const was = obj.status?.conditions?.find((c) => c.type === 'Ready');
      if (was?.status === 'True' && status.conditions?.[0])
        status.conditions[0].lastTransitionTime = was.lastTransitionTime;
      try {
        await this.api.replaceClusterCustomObjectStatus({ ...ref, body: { ...obj, status } });
        return;
      } catch (e) {
        if (httpStatusOf(e) !== 409 || attempt === 1)
          throw new Error(`writing MeshStorNode ${this.id.nodeName} status: ${kubeErrorMessage(e)}`);
      }
    }
  }
}
