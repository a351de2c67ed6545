// Topology keys the driver reports in NodeGetInfo and reads in CreateVolume and GetCapacity.
import type { TopologySegment } from '../placement/model.ts';
import type { Topology } from './types.ts';

export const NODE_KEY = 'topology.meshstor.io/node';
export const ZONE_KEY = 'topology.kubernetes.io/zone';

/** The node a CreateVolume prefers (WaitForFirstConsumer's selected node comes first). */
export function preferredNode(preferred: readonly Topology[] | undefined): string | undefined {
  return preferred?.[0]?.segments[NODE_KEY] || undefined;
}

/**
 * The placement segment a GetCapacity topology asks about. A volume is reachable from every node,
 * so the node key does not narrow where replicas may go; a zone key does.
 */
export function segmentOf(t: Topology | null | undefined): TopologySegment {
  const zone = t?.segments[ZONE_KEY];
  return zone ? { zone } : {};
}
