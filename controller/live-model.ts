// Feeds the controller's PlacementCache from MeshStorNode and MeshStorVolume informers.
import type { KubeConfig } from '@kubernetes/client-node';
import { type MeshStorNode, type MeshStorVolume, PLURAL } from '../kube/crds.ts';
import { type InformerHandlers, startCustomInformer } from '../kube/informers.ts';
import type { Logger } from '../kube/log.ts';
import { slimNodeForPlacement, slimVolumeForPlacement } from '../state/placement-slim.ts';
import { PlacementCache } from './placement-cache.ts';

/** What the cache takes of each object and what it does with it (also what bench/memory.ts feeds). */
export function placementCacheFeeds(cache: PlacementCache): {
  nodes: { slim: (n: MeshStorNode) => MeshStorNode; handlers: InformerHandlers<MeshStorNode> };
  volumes: { slim: (v: MeshStorVolume) => MeshStorVolume; handlers: InformerHandlers<MeshStorVolume> };
} {
  return {
    nodes: {
      slim: slimNodeForPlacement,
      handlers: { upsert: (n) => cache.setNode(n), remove: (id) => cache.deleteNode(id.name) },
    },
    volumes: {
      slim: slimVolumeForPlacement,
      handlers: { upsert: (v) => cache.setVolume(v), remove: (id) => cache.deleteVolume(id.name) },
    },
  };
}

export interface RunningPlacementCache {
  cache: PlacementCache;
  stop(): Promise<void>;
}

/** Feeds a PlacementCache from MeshStorNode and MeshStorVolume informers; synced after both first lists. */
export function startPlacementCache(
  kc: KubeConfig,
  log: Logger,
  cache = new PlacementCache(),
): RunningPlacementCache {
  const feeds = placementCacheFeeds(cache);
  const informers = [
    startCustomInformer<MeshStorNode>(kc, PLURAL.MeshStorNode, feeds.nodes.handlers, log, feeds.nodes.slim),
    startCustomInformer<MeshStorVolume>(
      kc,
      PLURAL.MeshStorVolume,
      feeds.volumes.handlers,
      log,
      feeds.volumes.slim,
    ),
  ];
  void Promise.all(informers.map((i) => i.whenSynced)).then(() => cache.markSynced());
  return { cache, stop: async () => void (await Promise.all(informers.map((i) => i.stop()))) };
}
