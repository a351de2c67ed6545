// The controller's half of snapshots and restores (docs/adr/0010-snapshots.md): a snapshot is a
// one-replica volume record marked `snapshot`, placed and claimed by the allocator like any volume
// (so its extent is held in placement and the ledger), whose member the agent running the source's
// array adds, resyncs and detaches (agent/snapshots.ts). The capture is started by writing
// `capture` into the source's record, one at a time per source; CreateSnapshot, which the CO calls
// again until the snapshot is ready, starts it again whenever it finds none running.
import { createHash } from 'node:crypto';
import { isSnapshot, SNAPSHOT_PREFIX, type SnapshotOf } from '../state/snapshots.ts';
import { updateRecord, type VolumeRecord } from '../state/store.ts';
import type { Allocator } from './allocator.ts';
import { markDeleting } from './release.ts';

/** The record id of a snapshot by its CSI name: a DNS label that no volume id can be. */
export function snapshotIdFor(name: string): string {
  return `${SNAPSHOT_PREFIX}${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

/** What a new snapshot needs. */
export interface SnapshotRequest {
  id: string;
  name: string;
  source: VolumeRecord;
  /** Taken for a clone: the clone's volume id (such snapshots are not listed). */
  forClone?: string | undefined;
}

/**
 * Places and records a snapshot of `source`, sized like it. The caller holds the snapshot id's
 * lock and has checked that no record of it exists. A source that was never staged holds no data:
 * its snapshot is ready at once and empty.
 */
export async function createSnapshotRecord(a: Allocator, req: SnapshotRequest): Promise<VolumeRecord> {
  const empty = !req.source.arrayUuid;
  const snapshot: SnapshotOf = {
    source: req.source.id,
    createdAt: new Date().toISOString(),
    readyToUse: empty,
    ...(empty ? { empty: true } : {}),
    ...(req.forClone ? { forClone: req.forClone } : {}),
  };
  const rec = await a.create({
    id: req.id,
    name: req.name,
    sizeBytes: req.source.sizeBytes,
    replicaCount: 1,
    // one member, anywhere placement finds room; near the array that will add it when it can
    spread: { mode: 'none', domain: req.source.spread.domain },
    fsType: req.source.fsType,
    preferredNode: req.source.attachment?.node,
    marks: { snapshot },
  });
  await startCapture(a, rec);
  return rec;
}

/**
 * Starts the capture of a snapshot not ready yet, when its source runs no other capture. Returns
 * whether this snapshot's capture is running now. Idempotent: a capture of this snapshot that is
 * running already is left as it is.
 */
export async function startCapture(a: Allocator, snap: VolumeRecord): Promise<boolean> {
  if (!isSnapshot(snap) || snap.snapshot.readyToUse || snap.phase !== 'Active') return false;
  const written = await updateRecord(a.store, snap.snapshot.source, (src) => {
    if (src.phase !== 'Active' || src.capture) return false;
    src.capture = { snapshot: snap.id, step: 'adding' };
    return true;
  });
  return written?.capture?.snapshot === snap.id;
}

/** Marks a snapshot Deleting; the finalizer keeps its record until its partition is wiped. */
export async function deleteSnapshotRecord(a: Allocator, id: string): Promise<void> {
  await markDeleting(a.store, a.inventory, id);
}

/** Every snapshot a user asked for (not clones' own), in a stable order: by id. */
export async function listedSnapshots(a: Allocator): Promise<(VolumeRecord & { snapshot: SnapshotOf })[]> {
  return (await a.store.list())
    .filter(isSnapshot)
    .filter((r) => r.phase === 'Active' && !r.snapshot.forClone)
    .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}
