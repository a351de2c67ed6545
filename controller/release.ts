// The one rule for freeing a deleted volume's extents: its record (the finalizer) is dropped only
// once no agent reports a partition of it. Used by DeleteVolume, the allocator's withdraw and the
// deletion reconciler. The record goes first, then its claims on the allocation ledger.
import type { NodeInfo } from '../placement/model.ts';
import { type NodeInventory, reportsPartition, type VolumeStore } from '../state/store.ts';
import { Claims, ownerOf } from './claims.ts';

/**
 * Drops a Deleting record once no agent reports a partition of it. `nodes`: the agents' reports when
 * the caller read them already (read after the records, so a wipe they show happened after the
 * deletion was recorded). Returns whether the record was dropped.
 */
export async function releaseIfWiped(
  store: VolumeStore,
  inventory: NodeInventory,
  id: string,
  nodes?: readonly NodeInfo[],
): Promise<boolean> {
  const rec = await store.get(id);
  if (rec?.phase !== 'Deleting') return false;
  if (reportsPartition(nodes ?? (await inventory.nodes()), id)) return false;
  await store.remove(id);
  // The bytes are free now: release their claims (a crash before this leaves claims no record
  // holds, which the ledger reconciler releases once they are old).
  await new Claims(store.ledger).release(ownerOf(rec), rec.replicas);
  return true;
}

/** Marks the volume Deleting (idempotent) and releases it at once if nothing is on disk. */
export async function markDeleting(store: VolumeStore, inventory: NodeInventory, id: string): Promise<void> {
  const rec = await store.get(id);
  if (!rec) return;
  if (rec.phase !== 'Deleting') {
    rec.phase = 'Deleting';
    await store.replace(rec);
  }
  await releaseIfWiped(store, inventory, id);
}
