// Which replica a partition holds. A GPT name has room for 36 characters, so `ms/<volume>/<replica>`
// is cut for long volume ids (a provisioner's `pvc-<uuid>` is 40 on its own) and the Host cannot
// read the owner back from it. The partition GUID is derived from volume + replica (names.ts), so
// the records say it exactly: match GUIDs, never (cut) names.
import type { VolumeRecord } from '../state/store.ts';
import { partitionUuid } from './host/names.ts';
import type { Drive, Owner, Partition } from './host/types.ts';

/** Whether the partition holds this replica (by its GUID). */
export function holds(p: Pick<Partition, 'partUuid'>, o: Owner): boolean {
  return p.partUuid === partitionUuid(o);
}

/** The replica's partition on these drives, if it exists. */
export function partitionOf(drives: readonly Drive[], o: Owner): Partition | undefined {
  const guid = partitionUuid(o);
  for (const d of drives) for (const p of d.partitions) if (p.partUuid === guid) return p;
  return undefined;
}

/**
 * The drives of `nodeName` with every partition's owner filled in from the records where its name
 * was cut. Only replicas the records place on this node can be here, so only theirs are hashed.
 * A MeshStor partition no record knows keeps no owner: it is reported, never taken for anyone's.
 */
export function withOwners(drives: Drive[], records: readonly VolumeRecord[], nodeName: string): Drive[] {
  const byGuid = new Map<string, Owner>();
  for (const v of records)
    for (const r of v.replicas) {
      if (r.node !== nodeName) continue;
      const o = { volumeId: v.id, replicaId: r.id };
      byGuid.set(partitionUuid(o), o);
    }
  return drives.map((d) => ({
    ...d,
    partitions: d.partitions.map((p) => (p.owner ? p : { ...p, owner: byGuid.get(p.partUuid) })),
  }));
}
