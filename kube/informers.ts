// Informers (list + watch caches from @kubernetes/client-node) that restart themselves after an
// error and report when their first list has been delivered, so /readyz can wait for them.
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ListPromise,
  makeInformer,
} from '@kubernetes/client-node';
import { kubeErrorMessage } from './client.ts';
import { GROUP, VERSION } from './crds.ts';
import type { Logger } from './log.ts';

export interface InformerHandlers<T extends KubernetesObject> {
  /** Called for adds and updates. */
  upsert(obj: T): void;
  remove(obj: T): void;
}

export interface RunningInformer {
  readonly name: string;
  synced(): boolean;
  /** Resolves once the first list has been delivered to the handlers. */
  readonly whenSynced: Promise<void>;
  stop(): Promise<void>;
}

export function startInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  name: string,
  path: string,
  list: ListPromise<T>,
  handlers: InformerHandlers<T>,
  log: Logger,
  retryMs = 1000,
): RunningInformer {
  const informer = makeInformer<T>(kc, path, list);
  let isSynced = false;
  let stopped = false;
  let failedSinceStart = false;
  let timer: NodeJS.Timeout | undefined;
  let resolveSynced: () => void = () => {};
  const whenSynced = new Promise<void>((r) => {
    resolveSynced = r;
  });
  const guard =
    (what: string, fn: (o: T) => void) =>
    (o: T): void => {
      try {
        fn(o);
      } catch (e) {
        // One bad object must not stop the cache: log it and carry on with the rest.
        log.error(
          { informer: name, object: o.metadata?.name, err: String(e) },
          `informer ${what} handler failed`,
        );
      }
    };
  informer.on('add', guard('add', handlers.upsert));
  informer.on('update', guard('update', handlers.upsert));
  informer.on('delete', guard('delete', handlers.remove));
  const run = (): void => {
    if (stopped) return;
    failedSinceStart = false;
    informer.start().then(
      () => {
        if (!failedSinceStart && !isSynced) {
          isSynced = true;
          resolveSynced();
          log.info({ informer: name }, 'informer synced');
        }
      },
      (e: unknown) => retry(e),
    );
  };
  const retry = (e: unknown): void => {
    failedSinceStart = true;
    if (stopped) return;
    log.warn({ informer: name, err: kubeErrorMessage(e) }, `informer error, restarting in ${retryMs} ms`);
    clearTimeout(timer);
    timer = setTimeout(run, retryMs);
  };
  informer.on('error', retry);
  run();
  return {
    name,
    synced: () => isSynced,
    whenSynced,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await informer.stop();
    },
  };
}

/** An informer over one of MeshStor's cluster-scoped custom resources (its plural names it). */
export function startCustomInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  plural: string,
  handlers: InformerHandlers<T>,
  log: Logger,
): RunningInformer {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return startInformer<T>(
    kc,
    plural,
    `/apis/${GROUP}/${VERSION}/${plural}`,
    // The generated client types custom objects as `object`; the CRD schema guarantees the shape.
    async () =>
      (await custom.listClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural,
      })) as KubernetesListObject<T>,
    handlers,
    log,
  );
}
