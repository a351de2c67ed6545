// `meshstor extender`: informers feeding ExtenderState, and the HTTP server kube-scheduler calls.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CoreV1Api,
  type KubeConfig,
  StorageV1Api,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1StorageClass,
} from '@kubernetes/client-node';
import { type MeshStorNode, type MeshStorVolume, PLURAL } from '../kube/crds.ts';
import { type RunningInformer, startCustomInformer, startInformer } from '../kube/informers.ts';
import type { Logger } from '../kube/log.ts';
import { ExtenderMetrics } from './metrics.ts';
import { createExtenderApp } from './server.ts';
import { ExtenderState, quantityBytes, type StateOptions } from './state.ts';
import { warmUp } from './warm-up.ts';

export interface ExtenderOptions extends StateOptions {
  kc: KubeConfig;
  log: Logger;
  host?: string;
  port?: number;
  bodyLimit?: string;
  /** Process-wide default metrics (CPU, memory, event loop); off in tests that run several. */
  defaultMetrics?: boolean;
  /** filter+prioritize pairs the extender sends itself before /readyz turns ready (default 500; 0: none). */
  warmUpRounds?: number;
}

export interface RunningExtender {
  port: number;
  state: ExtenderState;
  metrics: ExtenderMetrics;
  /** Resolves when every cache has delivered its first list and the warm-up is done (ready). */
  whenSynced: Promise<void>;
  close(): Promise<void>;
}

export async function startExtender(opts: ExtenderOptions): Promise<RunningExtender> {
  const { kc, log } = opts;
  const state = new ExtenderState(opts);
  const metrics = new ExtenderMetrics(() => state.sizes(), opts.defaultMetrics ?? false);
  const core = kc.makeApiClient(CoreV1Api);
  const storage = kc.makeApiClient(StorageV1Api);
  const informers: RunningInformer[] = [
    startInformer<V1StorageClass>(
      kc,
      'storageclasses',
      '/apis/storage.k8s.io/v1/storageclasses',
      () => storage.listStorageClass(),
      {
        upsert: (sc) => state.setStorageClass(sc.metadata?.name ?? '', sc.provisioner),
        remove: (sc) => state.deleteStorageClass(sc.metadata?.name ?? ''),
      },
      log,
    ),
    startInformer<V1PersistentVolume>(
      kc,
      'persistentvolumes',
      '/api/v1/persistentvolumes',
      () => core.listPersistentVolume(),
      {
        upsert: (pv) =>
          state.setPv(pv.metadata?.name ?? '', pv.spec?.csi?.driver, pv.spec?.csi?.volumeHandle),
        remove: (pv) => state.deletePv(pv.metadata?.name ?? ''),
      },
      log,
    ),
    startInformer<V1PersistentVolumeClaim>(
      kc,
      'persistentvolumeclaims',
      '/api/v1/persistentvolumeclaims',
      () => core.listPersistentVolumeClaimForAllNamespaces(),
      {
        upsert: (pvc) =>
          state.setPvc(
            pvc.metadata?.namespace ?? 'default',
            pvc.metadata?.name ?? '',
            {
              uid: pvc.metadata?.uid ?? `${pvc.metadata?.namespace}/${pvc.metadata?.name}`,
              volumeName: pvc.spec?.volumeName ?? '',
              storageClassName: pvc.spec?.storageClassName ?? '',
              requestBytes: quantityBytes(pvc.spec?.resources?.requests?.storage) || 0,
              selectedNode: pvc.metadata?.annotations?.['volume.kubernetes.io/selected-node'] ?? '',
            },
            Date.now(),
          ),
        remove: (pvc) => state.deletePvc(pvc.metadata?.namespace ?? 'default', pvc.metadata?.name ?? ''),
      },
      log,
    ),
    startCustomInformer<MeshStorNode>(
      kc,
      PLURAL.MeshStorNode,
      {
        upsert: (n) => state.setMeshStorNode(n, Date.now()),
        remove: (n) => state.deleteMeshStorNode(n.metadata.name),
      },
      log,
    ),
    startCustomInformer<MeshStorVolume>(
      kc,
      PLURAL.MeshStorVolume,
      {
        upsert: (v) => state.setMeshStorVolume(v),
        remove: (v) => state.deleteMeshStorVolume(v.metadata.name),
      },
      log,
    ),
  ];
  let warmed = false;
  const ready = () => {
    const waitingFor = informers.filter((i) => !i.synced()).map((i) => i.name);
    if (waitingFor.length === 0 && !warmed) waitingFor.push('warm-up');
    return { ready: waitingFor.length === 0, waitingFor };
  };
  const app = createExtenderApp({ state, metrics, log, ready, bodyLimit: opts.bodyLimit });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port ?? 8099, opts.host ?? '127.0.0.1', (err?: Error) =>
      err ? reject(err) : resolve(s),
    );
  });
  server.keepAliveTimeout = 65_000; // longer than kube-scheduler's idle connections
  const port = (server.address() as AddressInfo).port;
  log.info({ port, host: opts.host ?? '127.0.0.1' }, 'extender listening');
  const whenSynced = Promise.all(informers.map((i) => i.whenSynced)).then(async () => {
    const rounds = opts.warmUpRounds ?? 500;
    const ms = rounds > 0 ? await warmUp(state, port, rounds) : 0;
    warmed = true;
    log.info(
      { warmUpRounds: rounds, warmUpMs: Math.round(ms) },
      'extender caches synced and warmed up: ready',
    );
  });
  return {
    port,
    state,
    metrics,
    whenSynced,
    close: async () => {
      await Promise.all(informers.map((i) => i.stop()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
