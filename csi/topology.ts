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
 * The placement segment a GetCapacity topology asks about. A volume is reachable from every node
 * (its members are exported over NVMe-oF), so the node key does not narrow where replicas may go.
 * external-provisioner asks per node, with the node's whole segment (node and zone keys, from
 * CSINode): the answer is then the largest volume a pod on that node can get anywhere in the
 * cluster. Narrowing that to the node's zone made a replicaCount 2 class report 0 on every node of
 * a cluster with one node per zone, and the scheduler never placed its pods. Only a topology with a
 * zone and no node key (a zone-wide segment) narrows placement to that zone.
 */
export function segmentOf(t: Topology | null | undefined): TopologySegment {
  if (t?.segments[NODE_KEY]) return {};
  const zone = t?.segments[ZONE_KEY];
  return zone ? { zone } : {};
}

/**
 * CreateVolume's `accessibility_requirements.requisite` as placement segments: replicas may go on
 * a node inside any of them. A topology with a key MeshStor does not report (NodeGetInfo gives only
 * the node and zone keys) matches no node, so it adds nothing. Undefined when no requisite is given.
 */
export function requisiteSegments(requisite: readonly Topology[] | undefined): TopologySegment[] | undefined {
  if (!requisite || requisite.length === 0) return undefined;
  const known = new Set([NODE_KEY, ZONE_KEY]);
  return requisite
    .filter((t) => Object.keys(t.segments ?? {}).every((k) => known.has(k)))
    .map((t) => {
      const seg: TopologySegment = {};
      const node = t.segments[NODE_KEY];
      const zone = t.segments[ZONE_KEY];
      if (node !== undefined) seg.node = node;
      if (zone !== undefined) seg.zone = zone;
      return seg;
    });
}
