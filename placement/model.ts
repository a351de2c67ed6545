// The placement engine's model of a cluster. Plain data: adapters translate MeshStorNode and
// MeshStorVolume resources (or scenario files) into these shapes; nothing here knows Kubernetes.

/** A byte range [start, end) on one drive. */
export interface Extent {
  start: number;
  end: number;
}

/** A partition that exists on a drive. `owner` is set when it holds a MeshStor replica. */
export interface PartitionInfo extends Extent {
  owner?: { volumeId: string; replicaId: string } | undefined;
  /** Free-form label for foreign partitions ("EFI", "root"), for reports only. */
  label?: string | undefined;
}

export interface DriveInfo {
  /** Stable id (serial / WWN), unique within its node. */
  id: string;
  sizeBytes: number;
  logicalBlockSize: number;
  /** GPT partition entries the table holds (128 unless the table was made bigger). */
  gptSlots: number;
  /** Partitions the agent saw on disk, foreign (OS) ones included. */
  partitions: PartitionInfo[];
}

export interface NodeInfo {
  name: string;
  labels: { zone?: string | undefined; rack?: string | undefined };
  schedulable: boolean;
  agentHealthy: boolean;
  drives: DriveInfo[];
}

export type MemberState = 'Pending' | 'Syncing' | 'InSync' | 'Faulty' | 'Removed';

export interface ReplicaInfo {
  id: string;
  node: string;
  drive: string;
  extent: Extent;
  state: MemberState;
}

export interface VolumeInfo {
  id: string;
  /** Usable bytes the user asked for. */
  sizeBytes: number;
  replicaCount: number;
  spread: SpreadPolicy;
  replicas: ReplicaInfo[];
  /** The node that assembles the array (where the consuming pod runs), if attached. */
  attachedNode?: string | undefined;
}

export type SpreadMode = 'required' | 'preferred' | 'none';

export interface SpreadPolicy {
  /** Which node label is the failure domain. */
  domain: 'zone' | 'rack';
  mode: SpreadMode;
}

export const DEFAULT_SPREAD: SpreadPolicy = { domain: 'zone', mode: 'preferred' };

export interface ClusterSnapshot {
  nodes: NodeInfo[];
  volumes: VolumeInfo[];
}

/** A segment of topology: nodes whose labels match every given key. Empty = the whole cluster. */
export interface TopologySegment {
  zone?: string | undefined;
  rack?: string | undefined;
  node?: string | undefined;
}
