// What each of the extender's informers takes of an object (its slim) and does with it (its
// handlers), in one place: used by startExtender (extender.ts, which adds what to list and watch)
// and by bench/memory.ts (so the bench measures what the extender holds). A handler reads only
// what its slim keeps: test/feeds.test.ts records every field a handler reads of a whole object
// and checks the slim has it, and that an ExtenderState fed slimmed objects answers as one fed
// whole objects.
import type {
  KubernetesObject,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1StorageClass,
} from '@kubernetes/client-node';
import type { MeshStorNode, MeshStorVolume } from '../kube/crds.ts';
import type { InformerHandlers } from '../kube/informers.ts';
import { slimNodeForPlacement, slimVolumeForPlacement } from '../state/placement-slim.ts';
import { type ExtenderState, quantityBytes } from './state.ts';

const SELECTED_NODE = 'volume.kubernetes.io/selected-node';

/** Name, namespace, uid and resourceVersion of a core object (uid: the PVC's in-flight key). */
function meta(m: V1StorageClass['metadata']): V1StorageClass['metadata'] {
  return m && { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion };
}

export function slimStorageClass(sc: V1StorageClass): V1StorageClass {
  return { metadata: meta(sc.metadata), provisioner: sc.provisioner };
}

export function slimPersistentVolume(pv: V1PersistentVolume): V1PersistentVolume {
  const csi = pv.spec?.csi;
  return {
    metadata: meta(pv.metadata),
    spec: csi ? { csi: { driver: csi.driver, volumeHandle: csi.volumeHandle } } : {},
  };
}

export function slimPersistentVolumeClaim(pvc: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
  const selected = pvc.metadata?.annotations?.[SELECTED_NODE];
  const storage = pvc.spec?.resources?.requests?.storage;
  return {
    metadata: {
      ...meta(pvc.metadata),
      ...(selected === undefined ? {} : { annotations: { [SELECTED_NODE]: selected } }),
    },
    spec: {
      volumeName: pvc.spec?.volumeName,
      storageClassName: pvc.spec?.storageClassName,
      ...(storage === undefined ? {} : { resources: { requests: { storage } } }),
    },
  };
}

/** One informer of the extender: what it takes of each object and what it does with it. */
export interface Feed<T extends KubernetesObject> {
  slim: (o: T) => T;
  handlers: InformerHandlers<T>;
}

export interface ExtenderFeeds {
  storageClasses: Feed<V1StorageClass>;
  persistentVolumes: Feed<V1PersistentVolume>;
  persistentVolumeClaims: Feed<V1PersistentVolumeClaim>;
  meshStorNodes: Feed<MeshStorNode>;
  meshStorVolumes: Feed<MeshStorVolume>;
}

/** The extender's informers into `state`; `now` is the clock of the handlers that need one. */
export function extenderFeeds(state: ExtenderState, now: () => number = Date.now): ExtenderFeeds {
  return {
    storageClasses: {
      slim: slimStorageClass,
      handlers: {
        upsert: (sc) => state.setStorageClass(sc.metadata?.name ?? '', sc.provisioner),
        remove: (id) => state.deleteStorageClass(id.name),
      },
    },
    persistentVolumes: {
      slim: slimPersistentVolume,
      handlers: {
        upsert: (pv) =>
          state.setPv(pv.metadata?.name ?? '', pv.spec?.csi?.driver, pv.spec?.csi?.volumeHandle),
        remove: (id) => state.deletePv(id.name),
      },
    },
    persistentVolumeClaims: {
      slim: slimPersistentVolumeClaim,
      handlers: {
        upsert: (pvc) =>
          state.setPvc(
            pvc.metadata?.namespace ?? 'default',
            pvc.metadata?.name ?? '',
            {
              uid: pvc.metadata?.uid ?? `${pvc.metadata?.namespace}/${pvc.metadata?.name}`,
              volumeName: pvc.spec?.volumeName ?? '',
              storageClassName: pvc.spec?.storageClassName ?? '',
              requestBytes: quantityBytes(pvc.spec?.resources?.requests?.storage) || 0,
              selectedNode: pvc.metadata?.annotations?.[SELECTED_NODE] ?? '',
            },
            now(),
          ),
        remove: (id) => state.deletePvc(id.namespace ?? 'default', id.name),
      },
    },
    meshStorNodes: {
      slim: slimNodeForPlacement,
      handlers: {
        upsert: (n) => state.setMeshStorNode(n, now()),
        remove: (id) => state.deleteMeshStorNode(id.name),
      },
    },
    meshStorVolumes: {
      slim: slimVolumeForPlacement,
      handlers: {
        upsert: (v) => state.setMeshStorVolume(v),
        remove: (id) => state.deleteMeshStorVolume(id.name),
      },
    },
  };
}
