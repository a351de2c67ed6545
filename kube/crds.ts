// TypeScript shapes of the MeshStor custom resources (deploy/crds/), group meshstor.io v1alpha1.
// The apiserver validates objects against the CRDs' OpenAPI schemas; these types describe what a
// valid object looks like to the code reading it.

export const GROUP = 'meshstor.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The CSI driver name: PersistentVolumes with spec.csi.driver equal to it are MeshStor volumes. */
export const DRIVER_NAME = 'meshstor.io';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export interface Extent {
  start: number;
  end: number;
}

// ------------------------------------------------------------------ MeshStorNode --

export interface MeshStorPartition extends Extent {
  number?: number;
  partUUID?: string;
  label?: string;
  owner?: { volume: string; replica: string };
}

export interface MeshStorDrive {
  id: string;
  path?: string;
  sizeBytes: number;
  logicalBlockSize: 512 | 4096;
  gptSlots?: number;
  partitions?: MeshStorPartition[];
}

export interface MeshStorNodeSpec {
  nodeName: string;
  topology?: { zone?: string; rack?: string };
}

/** A drive the agent saw and does not manage, and why (the admin's drive selectors decide). */
export interface MeshStorSkippedDrive {
  /** Stable id: serial or WWN. */
  id: string;
  /** Kernel device path, e.g. /dev/nvme0n1. */
  path?: string;
  reason: string;
}

/** Condition types of a MeshStorNode. */
export const NODE_CONDITION = {
  /** The agent runs and reports (with a fresh heartbeat). */
  Ready: 'Ready',
  /** The kernel modules MeshStor needs are loaded; False names the missing ones and how to load them. */
  KernelModulesLoaded: 'KernelModulesLoaded',
} as const;

export interface MeshStorNodeStatus {
  observedGeneration?: number;
  heartbeatTime?: string;
  /** false while the Node is cordoned (spec.unschedulable): no new replicas go there. Absent: true. */
  schedulable?: boolean;
  hostNQN?: string;
  nvmeofAddress?: { transport: 'tcp' | 'rdma'; address: string; port: number };
  driveCount?: number;
  capacityBytes?: number;
  freeBytes?: number;
  drives?: MeshStorDrive[];
  skippedDrives?: MeshStorSkippedDrive[];
  conditions?: Condition[];
}

export interface MeshStorNode {
  apiVersion: typeof API_VERSION;
  kind: 'MeshStorNode';
  metadata: ObjectMeta;
  spec: MeshStorNodeSpec;
  status?: MeshStorNodeStatus;
}

// ---------------------------------------------------------------- MeshStorVolume --

/** A member's state: the same words as placement/model.ts MemberState (state/placement-model.ts checks they stay equal). */
export type MemberPhase = 'Pending' | 'Syncing' | 'InSync' | 'Faulty' | 'Removed';

export interface MeshStorReplica {
  id: string;
  node: string;
  drive: string;
  extent: Extent;
}

export interface MeshStorVolumeSpec {
  sizeBytes: number;
  replicaCount: number;
  volumeMode?: 'Filesystem' | 'Block';
  fsType?: 'xfs' | 'ext4';
  spread?: { domain?: 'zone' | 'rack'; mode?: 'required' | 'preferred' | 'none' };
  replicas?: MeshStorReplica[];
  /** hostNQN: the attached node's NVMe host NQN, the one host the other members are exported to. */
  attachment?: { node: string; hostNQN?: string };
  /** Set on a snapshot's own record (ADR 0010). */
  snapshot?: { source: string; createdAt: string; readyToUse?: boolean; empty?: boolean; forClone?: string };
  /** A volume restored from a snapshot (ADR 0010). */
  seed?: { snapshot: string; done?: boolean; fromVolume?: string };
}

export interface MeshStorMember {
  replicaId: string;
  node?: string;
  state: MemberPhase;
  syncPercent?: number;
  message?: string;
}

export interface MeshStorVolumeStatus {
  observedGeneration?: number;
  arrayUUID?: string;
  inSyncMembers?: number;
  members?: MeshStorMember[];
  relocation?: {
    toNode?: string;
    toReplica?: string;
    fromReplica?: string;
    step?: string;
    bytesDone?: number;
    bytesTotal?: number;
  };
  /** A snapshot being captured on this volume's array (ADR 0010). */
  capture?: { snapshot: string; step: string; bytesDone?: number };
  /** A pending expansion whose members move to larger extents first (ADR 0009). */
  expansion?: { sizeBytes?: number; waiting?: string };
  conditions?: Condition[];
}

export interface MeshStorVolume {
  apiVersion: typeof API_VERSION;
  kind: 'MeshStorVolume';
  metadata: ObjectMeta;
  spec: MeshStorVolumeSpec;
  status?: MeshStorVolumeStatus;
}

export const PLURAL = {
  MeshStorNode: 'meshstornodes',
  MeshStorVolume: 'meshstorvolumes',
  MeshStorLedger: 'meshstorledgers',
} as const;

// ---------------------------------------------------------------- MeshStorLedger --

/** Bytes on one drive that one replica of one volume holds, as the allocator claimed them. */
export interface MeshStorClaim extends Extent {
  volume: string;
  /**
   * The allocation attempt that claimed the bytes; the MeshStorVolume it wrote carries it as its
   * `meshstor.io/allocation` annotation. Two attempts for one volume never share bytes either.
   */
  allocation: string;
  replica: string;
  drive: string;
  /** RFC 3339 time of the claim. */
  claimedAt: string;
  /** Set while the reconciler checks whether the claim is orphaned (no record holds it). */
  revokedAt?: string;
}

/** One per node, named like the node: every claimed extent on its drives. */
export interface MeshStorLedger {
  apiVersion: typeof API_VERSION;
  kind: 'MeshStorLedger';
  metadata: ObjectMeta;
  spec: { claims: MeshStorClaim[]; claimCount?: number };
}
