// kube/informers.ts against the real apiserver: the first list read in pages (a page size of 2, so
// a handful of objects takes several pages and the apiserver's continue tokens are followed, as
// a 100k-object list is at 500), then the watch from that list's version: a change and a deletion.
import { Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type MeshStorNode, PLURAL } from '../../kube/crds.ts';
import { customSource, type ObjectIdentity, runInformer } from '../../kube/informers.ts';
import { makeLogger } from '../../kube/log.ts';
import { GiB } from '../../placement/units.ts';
import { Kube } from './kube.ts';

let k: Kube;
const NODES = ['inf-1', 'inf-2', 'inf-3', 'inf-4', 'inf-5'];

beforeAll(async () => {
  k = new Kube(inject('cluster').kubeconfig);
  for (const n of NODES) await k.createMeshStorNode(n, { driveBytes: 10 * GiB, zone: 'iz' });
});

afterAll(async () => {
  for (const n of NODES) {
    await k.custom.deleteClusterCustomObject({ ...k.ref('MeshStorNode', n) }).catch(() => undefined);
  }
});

describe('informers on the real apiserver', () => {
  it('lists every object over several pages, then sees changes and deletions from the watch', async () => {
    const seen = new Map<string, MeshStorNode>();
    const removed: ObjectIdentity[] = [];
    const inf = runInformer<MeshStorNode>(
      new Watch(k.kc),
      'meshstornodes',
      customSource<MeshStorNode>(k.kc, PLURAL.MeshStorNode, (n) => ({
        ...n,
        status: { heartbeatTime: n.status?.heartbeatTime },
      })),
      { upsert: (n) => seen.set(n.metadata.name, n), remove: (id) => removed.push(id) },
      makeLogger('test', 'silent'),
      { pageSize: 2 },
    );
    try {
      await inf.whenSynced;
      for (const n of NODES) expect(seen.has(n), n).toBe(true);
      expect(inf.tracked()).toBe(seen.size);
      expect(seen.get('inf-1')?.status?.drives).toBeUndefined(); // slimmed on arrival

      await k.custom.deleteClusterCustomObject({ ...k.ref('MeshStorNode', 'inf-5') });
      await k.createMeshStorNode('inf-6', { driveBytes: 10 * GiB, zone: 'iz' });
      const deadline = Date.now() + 20_000;
      while ((!seen.has('inf-6') || removed.length === 0) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(removed).toEqual([{ name: 'inf-5', namespace: undefined }]);
      expect(seen.has('inf-6')).toBe(true);
    } finally {
      await inf.stop();
      await k.custom.deleteClusterCustomObject({ ...k.ref('MeshStorNode', 'inf-6') }).catch(() => undefined);
    }
  });
});
