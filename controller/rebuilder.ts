// The record side of a rebuild (pure functions; the reconciler is rebuild.ts): which nodes are
// gone, which volumes lost a member on one, in what order they are rebuilt, how many rebuilds a
// node may carry, and the record changes. A rebuild is a move whose leaving member is the lost
// one: the attached node's agent adds the new member, md resyncs it, the lost member is marked
// Removed (agent/relocation.ts, the same steps as a relocation), and its node wipes the partition
// when it comes back (agent/reconciler.ts). ADR 0008.
import { ClusterState } from '../placement/cluster.ts';
import { PlacementEngine } from '../placement/engine.ts';
import type { NodeInfo, VolumeInfo } from '../placement/model.ts';
import { reportsPartition, type VolumeRecord } from '../state/store.ts';
import { relocationEnded } from './relocator.ts';

type Replica = VolumeRecord['replicas'][number];

/**
 * How a node looks from its agent's heartbeat (its MeshStorNode's `status.heartbeatTime`):
 * `up` within `staleMs` (90 s, as peers count it); `down` after that; `lost` once it has been down
 * for the grace period — counted from its last heartbeat, or from when this controller first saw
 * its MeshStorNode missing. Only a lost node's members are rebuilt: one back within the grace
 * period is caught up from the bitmap instead (agent/catch-up.ts).
 */
export type NodeState = 'up' | 'down' | 'lost';

export interface LivenessTimes {
  /** How long a heartbeat counts as fresh (ms). */
  staleMs: number;
  /** How long a node is down before its members are rebuilt (ms). */
  graceMs: number;
}

export const DEFAULT_LIVENESS: LivenessTimes = { staleMs: 90_000, graceMs: 10 * 60_000 };

/** The last heartbeat of each node that has a MeshStorNode (ms since the epoch; NaN: none written yet). */
export type Heartbeats = ReadonlyMap<string, number>;

/**
 * The state of every node: from its heartbeat, or for a node with no MeshStorNode, from
 * `missingSince` (updated here: nodes seen missing now are added, nodes back are dropped).
 */
export function nodeStates(
  beats: Heartbeats,
  named: Iterable<string>,
  missingSince: Map<string, number>,
  now: number,
  t: LivenessTimes,
): Map<string, NodeState> {
  const out = new Map<string, NodeState>();
  for (const n of missingSince.keys()) if (beats.has(n)) missingSince.delete(n);
  for (const n of new Set([...beats.keys(), ...named])) {
    let last = beats.get(n);
    if (last === undefined) {
      if (!missingSince.has(n)) missingSince.set(n, now);
      last = missingSince.get(n) as number;
      // Missing: down at once (nothing serves it), lost after the grace period.
      out.set(n, now - last >= t.graceMs ? 'lost' : 'down');
      continue;
    }
    const age = Number.isNaN(last) ? Number.POSITIVE_INFINITY : now - last;
    out.set(n, age <= t.staleMs ? 'up' : age >= t.graceMs ? 'lost' : 'down');
  }
  return out;
}

/** A move (relocation or rebuild) whose steps run now: it holds a resync on two nodes. */
export function moveRunning(rec: VolumeRecord): boolean {
  const step = rec.relocation?.step;
  return step === 'adding' || step === 'syncing' || step === 'removing';
}

/** Members that count as copies now: in sync, on a node that is up. */
export function inSyncOnLiveNodes(rec: VolumeRecord, state: ReadonlyMap<string, NodeState>): Replica[] {
  return rec.replicas.filter((r) => r.state === 'InSync' && state.get(r.node) === 'up');
}

export type RebuildNeed =
  /** Rebuild `lost` now (the attached node runs the array and adds the new member). */
  | { kind: 'rebuild'; lost: Replica; attached: string }
  /** A member is lost but the rebuild cannot start; `reason` says why (an Event, a log line). */
  | { kind: 'blocked'; lost: Replica; reason: string }
  /** A member's node is down, within its grace period: it is caught up if it returns in time. */
  | { kind: 'grace'; down: Replica };

/** What a volume needs, given the nodes' states; undefined: nothing. */
export function rebuildNeeded(
  rec: VolumeRecord,
  state: ReadonlyMap<string, NodeState>,
): RebuildNeed | undefined {
  // A snapshot (ADR 0010) is one detached copy, never an array a new member could resync into;
  // a capture under way changes the source's raid-devices itself, so a rebuild waits for it.
  if (rec.phase !== 'Active' || moveRunning(rec) || rec.snapshot || rec.capture) return undefined;
  const live = rec.replicas.filter((r) => r.state !== 'Removed' && r.state !== 'Pending');
  const lost = live.find((r) => state.get(r.node) === 'lost');
  if (!lost) {
    const down = live.find((r) => state.get(r.node) === 'down');
    return down ? { kind: 'grace', down } : undefined;
  }
  const blocked = (reason: string): RebuildNeed => ({ kind: 'blocked', lost, reason });
  if (inSyncOnLiveNodes(rec, state).length === 0)
    return blocked('no in-sync copy on a live node to rebuild from; it waits for a lost node to return');
  const attached = rec.attachment?.node;
  if (!attached)
    return blocked(
      'not attached: no node runs its array to resync a new member; it is rebuilt once a pod stages it',
    );
  if (state.get(attached) !== 'up')
    return blocked(
      `its attached node ${attached} is not up; the array is rebuilt where the pod is staged next`,
    );
  const removed = rec.replicas.find((r) => r.state === 'Removed');
  if (rec.replicas.length > rec.replicaCount && removed) {
    // The record holds at most replicaCount + 1 members (the CRD's rule): a removed member whose
    // node has not wiped it yet takes the slot the new member would need.
    return blocked(
      `${removed.id} on ${removed.node} was removed and is not wiped yet; its node must return (or its MeshStorNode be deleted) first`,
    );
  }
  return { kind: 'rebuild', lost, attached };
}

/** Rebuild order: the fewest in-sync copies on live nodes first (one left goes first), then the largest. */
export function rebuildOrder<T extends { rec: VolumeRecord }>(
  items: readonly T[],
  state: ReadonlyMap<string, NodeState>,
): T[] {
  const copies = (r: VolumeRecord) => inSyncOnLiveNodes(r, state).length;
  return [...items].sort(
    (a, b) =>
      copies(a.rec) - copies(b.rec) || b.rec.sizeBytes - a.rec.sizeBytes || (a.rec.id < b.rec.id ? -1 : 1),
  );
}

/**
 * Full resyncs running per node: each running move (relocation or rebuild) loads the node that
 * runs the array (it reads the copy and drives the resync) and the new member's node (it writes).
 */
export function resyncsPerNode(records: readonly VolumeRecord[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of records) {
    if (r.phase !== 'Active' || !moveRunning(r) || !r.relocation) continue;
    for (const n of new Set([r.attachment?.node, r.relocation.toNode])) {
      if (n) out.set(n, (out.get(n) ?? 0) + 1);
    }
  }
  return out;
}

/** The placement engine a rebuild decides on: nodes that are not up take no new member. */
export function rebuildEngine(
  nodes: readonly NodeInfo[],
  records: readonly VolumeRecord[],
  state: ReadonlyMap<string, NodeState>,
): PlacementEngine {
  return new PlacementEngine(
    ClusterState.fromSnapshot({
      nodes: nodes.map((n) => ({ ...n, agentHealthy: n.agentHealthy && state.get(n.name) === 'up' })),
      // the pod's node is preferred for the new member (local reads from then on)
      volumes: records.map(volumeModel),
    }),
  );
}

/** A record as placement sees a volume, with the node its array runs on. */
export function volumeModel(r: VolumeRecord): VolumeInfo {
  return {
    id: r.id,
    sizeBytes: r.sizeBytes,
    replicaCount: r.replicaCount,
    spread: r.spread,
    replicas: r.replicas,
    attachedNode: r.attachment?.node,
  };
}

/**
 * After a move ended: a Removed member whose node is not up stays in the record until its node
 * wipes it (or its MeshStorNode is gone), but the move itself is over, so it no longer holds the
 * volume. Drops Removed members no agent reports any more; clears an ended move whose Removed
 * members are all on nodes that are not up. Returns the members dropped (undefined: no change).
 */
export function tidyRemoved(
  rec: VolumeRecord,
  nodes: readonly NodeInfo[],
  state: ReadonlyMap<string, NodeState>,
): Replica[] | undefined {
  if (rec.phase !== 'Active' || moveRunning(rec)) return undefined;
  const ended = rec.relocation !== undefined && relocationEnded(rec);
  const removed = rec.replicas.filter((x) => x.state === 'Removed');
  // An ended move whose leaving node is up is the relocation reconciler's to release.
  if (ended && removed.some((x) => state.get(x.node) === 'up')) return undefined;
  const dropped = removed.filter((x) => !reportsPartition(nodes, rec.id, x.id));
  if (dropped.length === 0 && !ended) return undefined;
  rec.replicas = rec.replicas.filter((x) => !dropped.includes(x));
  rec.relocation = undefined;
  return dropped;
}
