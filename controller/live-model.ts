// Feeds the controller's PlacementCache from MeshStorNode and MeshStorVolume informers.
import type { KubeConfig } from '@kubernetes/client-node';
import { type MeshStorNode, type MeshStorVolume, PLURAL } from '../kube/crds.ts';
import { startCustomInformer } from '../kube/informers.ts';
import type { Logger } from '../kube/log.ts';
import { PlacementCache } from './placement-cache.ts';

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
  const informers = [
    startCustomInformer<MeshStorNode>(
      kc,
      PLURAL.MeshStorNode,
      { upsert: (n) => cache.setNode(n), remove: (n) => cache.deleteNode(n.metadata.name) },
      log,
    ),
    startCustomInformer<MeshStorVolume>(
      kc,
      PLURAL.MeshStorVolume,
      { upsert: (v) => cache.setVolume(v), remove: (v) => cache.deleteVolume(v.metadata.name) },
      log,
    ),
  ];
  void Promise.all(informers.map((i) => i.whenSynced)).then(() => cache.markSynced());
  return { cache, stop: async () => void (await Promise.all(informers.map((i) => i.stop()))) };
}
