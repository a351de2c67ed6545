// Snapshots in the state layer (docs/adr/0010-snapshots.md): a snapshot is a volume record of its
// own, marked `snapshot`, holding one extent (claimed in the ledger like any volume's) that becomes
// a detached RAID1 member of its source. The capture in progress lives in the source's record
// (`capture`), because the agent running the source's array does the work; a volume restored from
// a snapshot carries `seed` until its first stage has copied the snapshot's data in.
import type { VolumeRecord } from './store.ts';

/** What makes a volume record a snapshot. */
export interface SnapshotOf {
  /** The volume it was taken of (which may since be deleted: the snapshot outlives it). */
  source: string;
  /** RFC 3339: when the snapshot was asked for (CSI's creation_time). */
  createdAt: string;
  /** Its member is detached and complete: CSI's ready_to_use. */
  readyToUse: boolean;
  /** Taken of a volume that was never staged: it holds no data, a restore from it is a fresh volume. */
  empty?: boolean | undefined;
  /** Taken by CreateVolume for a clone (not listed by ListSnapshots): the clone volume's id. */
  forClone?: string | undefined;
}

/**
 * A capture running on the source's array: the snapshot's member is added (step adding), resyncs
 * (syncing), is detached under a filesystem freeze (detaching: recorded before the freeze, so a
 * pass that finds it thaws first), and is out (detached); the snapshot is then marked ready and
 * the capture cleared.
 */
export interface Capture {
  snapshot: string;
  step: 'adding' | 'syncing' | 'detaching' | 'detached';
  bytesDone?: number | undefined;
}

/** A volume being filled from a snapshot at its first stage. */
export interface Seed {
  snapshot: string;
  /** The snapshot's data is on the array: stage goes on as for any volume. */
  done: boolean;
  /** A clone: the volume it was cloned from (`snapshot` is then the clone's internal snapshot). */
  fromVolume?: string | undefined;
}

/** The record's snapshot id for a CSI snapshot name: never a volume's id (those never start `snap-`). */
export const SNAPSHOT_PREFIX = 'snap-';

export function isSnapshot(rec: VolumeRecord): rec is VolumeRecord & { snapshot: SnapshotOf } {
  return rec.snapshot !== undefined;
}

/** The snapshot's one member (its record has exactly one replica). */
export function snapshotMember(rec: VolumeRecord): VolumeRecord['replicas'][number] | undefined {
  return rec.replicas[0];
}

/** Active restores still reading from the snapshot: while any exists it must not be wiped. */
export function seedingFrom(records: readonly VolumeRecord[], snapshotId: string): VolumeRecord[] {
  return records.filter((r) => r.phase === 'Active' && r.seed?.snapshot === snapshotId && !r.seed.done);
}
