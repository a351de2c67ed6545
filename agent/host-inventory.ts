// A NodeInventory read from this node's Host: what the agent publishes as its MeshStorNode.

import type { NodeInfo } from '../placement/model.ts';
import type { NodeInventory, VolumeRecord, VolumeStore } from '../state/store.ts';
import type { Host } from './host/types.ts';
import { withOwners } from './owners.ts';

/** GPT entries a drive will have once MeshStor writes a table on it (sgdisk's default). */
const DEFAULT_GPT_SLOTS = 128;

export async function nodeInfoFromHost(
  nodeName: string,
  zone: string | undefined,
  host: Host,
  records: readonly VolumeRecord[] = [],
): Promise<NodeInfo> {
  const drives = withOwners(await host.listDrives(), records, nodeName);
  return {
    name: nodeName,
    labels: { zone },
    schedulable: true,
    agentHealthy: true,
    drives: drives.map((d) => ({
      id: d.id,
      sizeBytes: d.sizeBytes,
      logicalBlockSize: d.logicalBlockSize,
      gptSlots: d.gptSlots || DEFAULT_GPT_SLOTS,
      partitions: d.partitions.map((p) => ({
        start: p.start,
        end: p.end,
        owner: p.owner,
        label: p.owner ? undefined : p.name,
      })),
    })),
  };
}

export class HostInventory implements NodeInventory {
  private readonly nodeName: string;
  private readonly zone: string | undefined;
  private readonly host: Host;
  private readonly store: VolumeStore | undefined;
  /** `store`: the records that name partitions whose GPT name was cut (see agent/owners.ts). */
  constructor(nodeName: string, zone: string | undefined, host: Host, store?: VolumeStore) {
    this.nodeName = nodeName;
    this.zone = zone;
    this.host = host;
    this.store = store;
  }
  async nodes(): Promise<NodeInfo[]> {
    const records = this.store ? await this.store.list() : [];
    return [await nodeInfoFromHost(this.nodeName, this.zone, this.host, records)];
  }
}
