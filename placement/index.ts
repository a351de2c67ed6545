// Public surface of the placement engine. Nothing here imports Kubernetes or Node I/O.
export {
  ClusterState,
  type Drift,
  NodeState,
  type Reservation,
  type ReservedReplica,
  type VolumeState,
} from './cluster.ts';
export { type Claim, DriveState, type ExtentFit } from './drive.ts';
export {
  type AllocationRequest,
  type AllocationResult,
  type CapacityQuery,
  type DrainPlan,
  type EngineOptions,
  MAX_REPLICAS,
  type MovePlan,
  type NodeScore,
  PlacementEngine,
  type PlanResult,
  type PlanStep,
  type PodVolume,
  type ScoreOptions,
} from './engine.ts';
export { PlacementError, type PlacementErrorCode } from './errors.ts';
export { largestVolumeFor, replicaExtentBytes, usableRange } from './geometry.ts';
export { type RebuildReserve, rebuildReserve } from './headroom.ts';
export { LiveCluster } from './live.ts';
export * from './model.ts';
export {
  compareSyncs,
  DEFAULT_MOVE_POLICY,
  type MovePolicy,
  type QueuedSync,
  relocationDelayHours,
  type SyncKind,
  syncHours,
} from './moves.ts';
export {
  ALL_POLICIES,
  dominantShareScore,
  KEPT_HOLES,
  meshstorBytesPolicy,
  meshstorDominantPolicy,
  meshstorPolicy,
  type PlacementPolicy,
  POLICIES,
  policyByName,
} from './policies.ts';
export { Rng } from './rng.ts';
export * from './units.ts';
