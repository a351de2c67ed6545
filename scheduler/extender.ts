// `meshstor extender`: informers feeding ExtenderState (feeds.ts), the verbs kube-scheduler calls (mutual TLS,
// door.ts) and the probes and metrics on a port of their own.
import { createServer } from 'node:http';
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
import { closeServer, type Door, listen, privateSocket, verbsServer } from './door.ts';
import { extenderFeeds } from './feeds.ts';
import { ExtenderMetrics } from './metrics.ts';
import { createProbesApp, createVerbsApp } from './server.ts';
import { ExtenderState, type StateOptions } from './state.ts';
import { warmUp } from './warm-up.ts';

export interface ExtenderOptions extends StateOptions {
  kc: KubeConfig;
  log: Logger;
  /** How the verbs are served: mutual TLS, or plain HTTP only when asked for by name. */
  door: Door;
  /** Address of both listeners (default 127.0.0.1). */
  host?: string;
  /** Port of the verbs (default 8099; 0: any free port). */
  port?: number;
  /** Port of /healthz, /readyz and /metrics, plain HTTP (default 0: any free port). */
  probePort?: number;
  bodyLimit?: string;
  /** Process-wide default metrics (CPU, memory, event loop); off in tests that run several. */
  defaultMetrics?: boolean;
  /** filter+prioritize pairs the extender sends itself before /readyz turns ready (default 500; 0: none). */
  warmUpRounds?: number;
}

export interface RunningExtender {
  /** The verbs' port. */
  port: number;
  /** The probes' and metrics' port. */
  probePort: number;
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
  const feeds = extenderFeeds(state);
  const informers: RunningInformer[] = [
    startInformer<V1StorageClass>(
      kc,
      'storageclasses',
      {
        path: '/apis/storage.k8s.io/v1/storageclasses',
        list: (page) => storage.listStorageClass(page),
        slim: feeds.storageClasses.slim,
      },
      feeds.storageClasses.handlers,
      log,
    ),
    startInformer<V1PersistentVolume>(
      kc,
      'persistentvolumes',
      {
        path: '/api/v1/persistentvolumes',
        list: (page) => core.listPersistentVolume(page),
        slim: feeds.persistentVolumes.slim,
      },
      feeds.persistentVolumes.handlers,
      log,
    ),
    startInformer<V1PersistentVolumeClaim>(
      kc,
      'persistentvolumeclaims',
      {
        path: '/api/v1/persistentvolumeclaims',
        list: (page) => core.listPersistentVolumeClaimForAllNamespaces(page),
        slim: feeds.persistentVolumeClaims.slim,
      },
      feeds.persistentVolumeClaims.handlers,
      log,
    ),
    startCustomInformer<MeshStorNode>(
      kc,
      PLURAL.MeshStorNode,
      feeds.meshStorNodes.handlers,
      log,
      feeds.meshStorNodes.slim,
    ),
    startCustomInformer<MeshStorVolume>(
      kc,
      PLURAL.MeshStorVolume,
      feeds.meshStorVolumes.handlers,
      log,
      feeds.meshStorVolumes.slim,
    ),
  ];
  let warmed = false;
  const ready = () => {
    const waitingFor = informers.filter((i) => !i.synced()).map((i) => i.name);
    if (waitingFor.length === 0 && !warmed) waitingFor.push('warm-up');
    return { ready: waitingFor.length === 0, waitingFor };
  };
  const verbs = createVerbsApp({ state, metrics, log, bodyLimit: opts.bodyLimit });
  const host = opts.host ?? '127.0.0.1';
  const server = verbsServer(opts.door, verbs, log);
  server.keepAliveTimeout = 65_000; // longer than kube-scheduler's idle connections
  const probes = createProbesApp({ metrics, ready });
  const probeServer = createServer(probes);
  let port: number;
  let probePort: number;
  try {
    port = await listen(server, opts.port ?? 8099, host);
    probePort = await listen(probeServer, opts.probePort ?? 0, host);
  } catch (e) {
    await Promise.all(informers.map((i) => i.stop()));
    await Promise.all([closeServer(server), closeServer(probeServer)]);
    throw e;
  }
  const scheme = 'tls' in opts.door ? 'https (client certificate required)' : 'http (INSECURE)';
  log.info({ port, probePort, host, scheme }, 'extender listening');
  const whenSynced = Promise.all(informers.map((i) => i.whenSynced)).then(async () => {
    const rounds = opts.warmUpRounds ?? 500;
    let ms = 0;
    if (rounds > 0) {
      // Best effort, like the calls themselves: without a socket (no writable temp directory, say)
      // the extender is ready unwarmed rather than never.
      try {
        const socket = await privateSocket(verbs);
        try {
          ms = await warmUp(state, { socketPath: socket.socketPath }, rounds);
        } finally {
          await socket.close();
        }
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'warm-up skipped');
      }
    }
    warmed = true;
    log.info(
      { warmUpRounds: rounds, warmUpMs: Math.round(ms) },
      'extender caches synced and warmed up: ready',
    );
  });
  return {
    port,
    probePort,
    state,
    metrics,
    whenSynced,
    close: async () => {
      await Promise.all(informers.map((i) => i.stop()));
      await Promise.all([closeServer(server), closeServer(probeServer)]);
    },
  };
}
