// MeshStor's one state interface (as the CSI host-path driver has one): volume records, the
// allocation source of truth, and the node inventory the agents report. Implementations: in memory
// (tests, `--state memory`) and, with the CRDs, MeshStorVolume/MeshStorNode objects.

import type { NodeInfo, ReplicaInfo, SpreadPolicy } from '../placement/model.ts';
import { isStateError } from './errors.ts';
import type { ExtentLedger } from './ledger.ts';
import type { Capture, Seed, SnapshotOf } from './snapshots.ts';

export interface VolumeRecord {
  /** CSI volume id; the MeshStorVolume name. */
  id: string;
  /** The CreateVolume name it was made for (idempotency key). */
  name: string;
  sizeBytes: number;
  replicaCount: number;
  spread: SpreadPolicy;
  fsType: 'xfs';
  replicas: ReplicaInfo[];
  /** Deleting: DeleteVolume was called; the record (the finalizer) stays until no agent reports a partition of it. */
  phase: 'Active' | 'Deleting';
  /**
   * The allocation attempt whose ledger claims hold this record's bytes (state/ledger.ts); absent
   * on records written before the ledger, whose claims the ledger reconciler adopts.
   */
  allocation?: string | undefined;
  /** Set once the MD array exists: from then on it is assembled, never created again. */
  arrayUuid?: string | undefined;
  /**
   * The node that assembles the array (where the consuming pod runs) and its host NQN: the owners
   * of the other members export their partitions to that host only. Written by NodeStage.
   */
  attachment?: Attachment | undefined;
  /**
   * A member moving (to the attached node, off an evacuating node, or to a larger extent for an
   * expansion): added first, removed from its old place once in sync.
   */
  relocation?: Relocation | undefined;
  /** Set on a snapshot's own record (state/snapshots.ts, ADR 0010): it is never staged. */
  snapshot?: SnapshotOf | undefined;
  /** A snapshot of this volume being captured on its array (the snapshot's member added, synced, detached). */
  capture?: Capture | undefined;
  /** A volume restored from a snapshot: its first stage copies the snapshot's data in. */
  seed?: Seed | undefined;
  /**
   * A larger size ControllerExpandVolume accepted while a member could not grow in place: such
   * members move to extents of this size first (controller/expansion.ts), then `sizeBytes` grows.
   */
  expansion?: Expansion | undefined;
}

export interface Expansion {
  /** The size the volume is growing to. */
  sizeBytes: number;
  /** Why it waits now, when it waits for something other than a running move (unattached, degraded). */
  waiting?: string | undefined;
}

export interface Relocation {
  toNode: string;
  toReplica: string;
  fromReplica: string;
  /** adding -> syncing -> removing -> done; `cancelled` when the controller took the new member back. */
  step: 'adding' | 'syncing' | 'removing' | 'done' | 'cancelled';
  bytesDone?: number | undefined;
  bytesTotal?: number | undefined;
}

export interface Attachment {
  node: string;
  hostNqn: string;
}

export interface VolumeStore {
  get(id: string): Promise<VolumeRecord | undefined>;
  list(): Promise<VolumeRecord[]>;
  /** Refuses (StateError `exists`) when the id exists: two controllers cannot both create one volume. */
  create(record: VolumeRecord): Promise<void>;
  /** Refuses (StateError `changed`) when the record changed since it was read. */
  replace(record: VolumeRecord): Promise<void>;
  remove(id: string): Promise<void>;
  /** Where the allocator claims extents before it writes a record (state/ledger.ts). */
  readonly ledger: ExtentLedger;
}

/**
 * Reads the record, applies `change` and writes it back, re-reading when another writer got there
 * first (a `changed` refusal). `change` returns false when nothing needs writing. Returns the record as written.
 */
export async function updateRecord(
  store: VolumeStore,
  id: string,
  change: (rec: VolumeRecord) => boolean,
  attempts = 8,
): Promise<VolumeRecord | undefined> {
  for (let i = 1; ; i++) {
    const rec = await store.get(id);
    if (!rec || !change(rec)) return rec;
    try {
      await store.replace(rec);
      return rec;
    } catch (e) {
      if (i >= attempts || !isStateError(e, 'changed')) throw e;
      await new Promise((r) => setTimeout(r, 20 * i + Math.random() * 50));
    }
  }
}

/** Another node as the agent on it reports itself: where its NVMe-oF target listens. */
export interface Peer {
  node: string;
  hostNqn: string;
  address: { address: string; port: number };
  /** Its agent reports Ready with a fresh heartbeat. */
  ready: boolean;
}

export interface PeerDirectory {
  peer(node: string): Promise<Peer | undefined>;
}

/** Whether any agent reports a partition of the volume (of one replica, when given). */
export function reportsPartition(nodes: readonly NodeInfo[], volumeId: string, replicaId?: string): boolean {
  return nodes.some((n) =>
    n.drives.some((d) =>
      d.partitions.some(
        (p) => p.owner?.volumeId === volumeId && (replicaId === undefined || p.owner.replicaId === replicaId),
      ),
    ),
  );
}

export interface NodeInventory {
  /** Nodes as their agents last reported them: drives, partitions on disk, health. */
  nodes(): Promise<NodeInfo[]>;
}
