// The controller's one state interface (as the CSI host-path driver has one): volume records, the
// allocation source of truth, and the node inventory the agents report. Implementations: in memory
// (tests, `--state memory`) and, with the CRDs, MeshStorVolume/MeshStorNode objects.
import type { NodeInfo, ReplicaInfo, SpreadPolicy } from '../placement/model.ts';

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
  /** Set once the MD array exists: from then on it is assembled, never created again. */
  arrayUuid?: string | undefined;
}

export interface VolumeStore {
  get(id: string): Promise<VolumeRecord | undefined>;
  list(): Promise<VolumeRecord[]>;
  /** Refuses (ALREADY_EXISTS) when the id exists: two controllers cannot both create one volume. */
  create(record: VolumeRecord): Promise<void>;
  /** Refuses (ABORTED) when the record changed since it was read. */
  replace(record: VolumeRecord): Promise<void>;
  remove(id: string): Promise<void>;
}

export interface NodeInventory {
  /** Nodes as their agents last reported them: drives, partitions on disk, health. */
  nodes(): Promise<NodeInfo[]>;
}
