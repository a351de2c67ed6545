import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { MeshStorNode } from '../../kube/crds.ts';
import { missingFromSlim } from '../../kube/test/read-paths.ts';
import { richNode, richVolume } from '../../state/test/crd-fixtures.ts';
import { type ExtenderFeeds, extenderFeeds } from '../feeds.ts';
import { ExtenderState } from '../state.ts';
import { pod } from './fixtures.ts';

const NOW = 1_000_000;

// Core objects as the apiserver sends them, with the fields the extender does not read set too.
const storageClass = (name: string, provisioner: string): V1StorageClass => ({
  apiVersion: 'storage.k8s.io/v1',
  kind: 'StorageClass',
  metadata: { name, uid: `uid-${name}`, resourceVersion: '3', annotations: { a: 'b' } },
  provisioner,
  parameters: { replicas: '2' },
  reclaimPolicy: 'Delete',
  volumeBindingMode: 'WaitForFirstConsumer',
  allowVolumeExpansion: true,
});

const persistentVolume = (name: string, handle: string): V1PersistentVolume => ({
  apiVersion: 'v1',
  kind: 'PersistentVolume',
  metadata: {
    name,
    uid: `uid-${name}`,
    resourceVersion: '9',
    annotations: { 'pv.kubernetes.io/provisioned-by': 'meshstor.io' },
    finalizers: ['kubernetes.io/pv-protection'],
    managedFields: [{ manager: 'csi-provisioner', operation: 'Update', apiVersion: 'v1' }],
  },
  spec: {
    capacity: { storage: '10Gi' },
    accessModes: ['ReadWriteOnce'],
    claimRef: { kind: 'PersistentVolumeClaim', namespace: 'default', name: `claim-${name}` },
    persistentVolumeReclaimPolicy: 'Delete',
    storageClassName: 'meshstor',
    volumeMode: 'Filesystem',
    csi: { driver: 'meshstor.io', volumeHandle: handle, fsType: 'xfs', volumeAttributes: { k: 'v' } },
  },
  status: { phase: 'Bound' },
});

const claim = (
  name: string,
  volumeName: string | undefined,
  selectedNode?: string,
): V1PersistentVolumeClaim => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: {
    name,
    namespace: 'apps',
    uid: `uid-${name}`,
    resourceVersion: '12',
    annotations: {
      'volume.kubernetes.io/storage-provisioner': 'meshstor.io',
      ...(selectedNode ? { 'volume.kubernetes.io/selected-node': selectedNode } : {}),
    },
    finalizers: ['kubernetes.io/pvc-protection'],
  },
  spec: {
    accessModes: ['ReadWriteOnce'],
    resources: { requests: { storage: '10Gi' }, limits: { storage: '20Gi' } },
    storageClassName: 'meshstor',
    volumeMode: 'Filesystem',
    ...(volumeName ? { volumeName } : {}),
  },
  status: { phase: volumeName ? 'Bound' : 'Pending', capacity: { storage: '10Gi' } },
});

/** Every object kind the extender watches, one or more of each, whole. */
function objects() {
  return {
    storageClasses: [storageClass('meshstor', 'meshstor.io'), storageClass('other', 'x.csi')],
    meshStorNodes: [richNode('n1', NOW), richNode('n2', NOW), richNode('n3', NOW)].map((n, i) => {
      if (i === 2 && n.status) n.status.schedulable = true;
      return n;
    }),
    meshStorVolumes: [richVolume('vol-a', ['n1', 'n2'])],
    persistentVolumes: [persistentVolume('pv-a', 'vol-a')],
    persistentVolumeClaims: [
      claim('bound', 'pv-a'),
      claim('waiting', undefined, 'n3'),
      claim('new', undefined),
    ],
  };
}

type Kind = keyof ReturnType<typeof objects>;
const KINDS: Kind[] = [
  'storageClasses',
  'meshStorNodes',
  'meshStorVolumes',
  'persistentVolumes',
  'persistentVolumeClaims',
];

/** Feeds every object to a fresh state, slimmed as the informers slim it or whole. */
function fed(slimmed: boolean): ExtenderState {
  const state = new ExtenderState();
  const feeds = extenderFeeds(state, () => NOW);
  const all = objects();
  for (const kind of KINDS) {
    const feed = feeds[kind] as ExtenderFeeds[Kind] & {
      slim: (o: object) => object;
      handlers: { upsert(o: object): void };
    };
    for (const o of all[kind]) feed.handlers.upsert(slimmed ? feed.slim(o) : o);
  }
  return state;
}

describe("the extender's informer slims", () => {
  it('keep every field its handlers read, with the same value', () => {
    const all = objects();
    for (const kind of KINDS) {
      for (const o of all[kind]) {
        const feed = extenderFeeds(new ExtenderState(), () => NOW)[kind] as ExtenderFeeds[Kind] & {
          slim: (o: object) => object;
          handlers: { upsert(o: object): void };
        };
        expect(
          missingFromSlim(o, feed.slim, (x) => feed.handlers.upsert(x)),
          `${kind} ${o.metadata?.name}`,
        ).toEqual([]);
      }
    }
  });

  it('the check sees a field a handler reads that a slim dropped', () => {
    const feed = extenderFeeds(new ExtenderState(), () => NOW).meshStorNodes;
    const noRack = (n: MeshStorNode): MeshStorNode => {
      const s = feed.slim(n);
      s.spec.topology = { zone: n.spec.topology?.zone };
      return s;
    };
    expect(missingFromSlim(richNode('n1'), noRack, (n) => feed.handlers.upsert(n))).toEqual([
      'spec.topology.rack = r7 (slim: undefined)',
    ]);
  });

  it('an extender fed slimmed objects answers as one fed whole objects', () => {
    const whole = fed(false);
    const slim = fed(true);
    expect(slim.sizes()).toEqual(whole.sizes());
    const p = pod('p', ['bound', 'waiting', 'new'], 'apps');
    expect(slim.podVolumes(p)).toEqual(whole.podVolumes(p));
    expect(slim.podVolumes(p).volumes).toHaveLength(3); // the fixture reaches every branch read
    const names = ['n1', 'n2', 'n3', 'none'];
    expect(slim.filter(p, names, NOW + 1000)).toEqual(whole.filter(p, names, NOW + 1000));
    expect(slim.filter(p, names, NOW + 10 * 60_000)).toEqual(whole.filter(p, names, NOW + 10 * 60_000));
    expect(slim.prioritize(p, names, NOW + 1000)).toEqual(whole.prioritize(p, names, NOW + 1000));
    expect(slim.reservations()).toEqual(whole.reservations());
  });
});
