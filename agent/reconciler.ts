// The agent's reconcile pass over the volumes that involve this node. Today: a volume being deleted
// has its local partitions wiped and deleted once nothing uses them (the Host refuses while an
// array, an export or a mount still holds one), then the node is re-published so the controller
// sees the partitions gone and lets the volume go. Exports to the consuming node come next.
import type { VolumeStore } from '../csi/state.ts';
import { DeviceInUseError } from './host/errors.ts';
import type { Host } from './host/types.ts';

export interface ReconcileResult {
  /** Partitions wiped and deleted, as node/drive/volume/replica. */
  wiped: string[];
  waiting: { partition: string; reason: string }[];
}

export async function reconcileDeletions(
  nodeName: string,
  host: Host,
  store: VolumeStore,
): Promise<ReconcileResult> {
  const records = await store.list();
  const deleting = new Set(records.filter((v) => v.phase === 'Deleting').map((v) => v.id));
  const out: ReconcileResult = { wiped: [], waiting: [] };
  for (const d of await host.listDrives()) {
    for (const p of d.partitions) {
      // Only partitions of volumes being deleted. One whose volume has no record at all is drift:
      // it is reported (the MeshStorNode lists it), never deleted on a guess.
      if (!p.owner || !deleting.has(p.owner.volumeId)) continue;
      const name = `${nodeName}/${d.id}/${p.owner.volumeId}/${p.owner.replicaId}`;
      try {
        await host.stopArray(p.owner.volumeId);
        await host.wipePartition(d.id, p.owner);
        await host.deletePartition(d.id, p.owner);
        out.wiped.push(name);
      } catch (e) {
        if (!(e instanceof DeviceInUseError)) throw e;
        out.waiting.push({ partition: name, reason: e.message });
      }
    }
  }
  return out;
}
