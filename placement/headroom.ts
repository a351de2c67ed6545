// The rebuild reserve: enough free space outside any one node to re-create every member that node
// holds. When the node holding the most MeshStor bytes could not be rebuilt elsewhere, a node loss
// would leave volumes short of copies until someone adds capacity: that is worth reporting early.
import type { ClusterState } from './cluster.ts';

export interface RebuildReserve {
  /** MeshStor bytes on the node that holds the most (what its loss would have to rebuild). */
  neededBytes: number;
  /** Free bytes on the other healthy, schedulable nodes. */
  freeElsewhereBytes: number;
  /** The node whose loss is the worst case ('' for an empty cluster). */
  node: string;
  /** Whether the reserve holds: a loss of `node` could be rebuilt, bytes-wise. */
  ok: boolean;
}

/**
 * Bytes only: fragmentation and spread can make a rebuild fail even when this says ok, so treat
 * it as a necessary condition. O(nodes).
 */
export function rebuildReserve(cluster: ClusterState): RebuildReserve {
  let totalFree = 0;
  let worst = { node: '', used: 0, free: 0 };
  for (const n of cluster.nodes) {
    const free = n.agentHealthy && n.schedulable ? n.freeBytes : 0;
    totalFree += free;
    const used = n.capacityBytes - n.freeBytes - n.foreignBytes;
    if (used > worst.used) worst = { node: n.name, used, free };
  }
  const freeElsewhereBytes = totalFree - worst.free;
  return {
    neededBytes: worst.used,
    freeElsewhereBytes,
    node: worst.node,
    ok: freeElsewhereBytes >= worst.used,
  };
}
