// The agents' heartbeats as the controller's rebuild pass reads them: each MeshStorNode's
// `status.heartbeatTime` (agent/publisher.ts writes it every 10 s). A node with no MeshStorNode is
// absent from the map; one whose agent never wrote a heartbeat is NaN.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, type MeshStorNode, PLURAL, VERSION } from './crds.ts';

/**
 * Reads every MeshStorNode's last heartbeat (one list), at most once per `reuseMs` (a grace period
 * is minutes; listing a large cluster's nodes on every 10 s pass would not be).
 */
export function meshStorHeartbeats(
  kc: KubeConfig,
  reuseMs = 30_000,
): () => Promise<ReadonlyMap<string, number>> {
  const api = kc.makeApiClient(CustomObjectsApi);
  let last: { at: number; beats: Map<string, number> } | undefined;
  return async () => {
    if (last && Date.now() - last.at < reuseMs) return last.beats;
    const l = (await api.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorNode,
    })) as {
      items: MeshStorNode[];
    };
    last = { at: Date.now(), beats: heartbeatsOf(l.items) };
    return last.beats;
  };
}

/** Node name → last heartbeat (ms since the epoch, NaN when none was written). */
export function heartbeatsOf(nodes: readonly MeshStorNode[]): Map<string, number> {
  return new Map(nodes.map((n) => [n.metadata.name, Date.parse(n.status?.heartbeatTime ?? '')]));
}
