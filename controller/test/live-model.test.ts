import { describe, expect, it } from 'vitest';
import { missingFromSlim } from '../../kube/test/read-paths.ts';
import { GiB } from '../../placement/units.ts';
import { richNode, richVolume } from '../../state/test/crd-fixtures.ts';
import { placementCacheFeeds } from '../live-model.ts';
import { PlacementCache } from '../placement-cache.ts';

const NODES = ['n1', 'n2', 'n3', 'n4'];

/** A cache fed the rich fixtures, slimmed as the informers slim them or whole. */
function fed(slimmed: boolean): PlacementCache {
  const cache = new PlacementCache({ seed: 5 });
  const { nodes, volumes } = placementCacheFeeds(cache);
  for (const [i, name] of NODES.entries()) {
    const n = richNode(name);
    if (i % 2 && n.status) n.status.schedulable = true;
    if (n.spec.topology) n.spec.topology.zone = `z${i % 2}`;
    nodes.handlers.upsert(slimmed ? nodes.slim(n) : n);
  }
  for (const v of [richVolume('vol-a', ['n1', 'n2']), richVolume('vol-b', ['n3', 'n4'])])
    volumes.handlers.upsert(slimmed ? volumes.slim(v) : v);
  return cache;
}

describe("the controller's informer slims", () => {
  it('keep every field the placement cache reads, with the same value', () => {
    const { nodes, volumes } = placementCacheFeeds(new PlacementCache());
    expect(missingFromSlim(richNode('n1'), nodes.slim, (n) => nodes.handlers.upsert(n))).toEqual([]);
    const cache = new PlacementCache();
    const feeds = placementCacheFeeds(cache);
    feeds.nodes.handlers.upsert(richNode('n1'));
    feeds.nodes.handlers.upsert(richNode('n2'));
    expect(
      missingFromSlim(richVolume('vol-a', ['n1', 'n2']), volumes.slim, (v) =>
        feeds.volumes.handlers.upsert(v),
      ),
    ).toEqual([]);
  });

  it('a cache fed slimmed objects decides as one fed whole objects', () => {
    const whole = fed(false);
    const slim = fed(true);
    expect(slim.sizes()).toEqual(whole.sizes());
    const query = { replicaCount: 2, spread: { domain: 'zone' as const, mode: 'preferred' as const } };
    expect(slim.engine.capacity({}, query)).toBe(whole.engine.capacity({}, query));
    for (const name of NODES) {
      const free = (c: PlacementCache) => c.engine.cluster.node(name)?.drives.map((d) => [d.id, d.freeBytes]);
      expect(free(slim)).toEqual(free(whole));
    }
    const req = {
      volumeId: 'new',
      sizeBytes: 5 * GiB,
      replicaCount: 2,
      spread: { domain: 'zone' as const, mode: 'preferred' as const },
    };
    const a = whole.engine.allocate(req);
    expect(a.ok).toBe(true);
    expect(slim.engine.allocate(req)).toEqual(a);
  });
});
