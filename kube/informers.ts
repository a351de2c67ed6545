// Informers (list + watch caches from @kubernetes/client-node) that restart themselves after an
// error and report when their first list has been delivered, so /readyz can wait for them.
//
// Memory (issue 15 §3): client-node's ListWatch keeps every object it delivered, which at 100k
// volumes is hundreds of MiB of objects the handlers already copied into their own models. Here
// its cache holds only each object's identity (name, namespace, resourceVersion: enough to skip a
// redelivered version and to tell the handlers what a relist no longer has), and the handlers
// get the object, reduced on arrival to what they read (`slim`) and referenced by nothing of ours
// once they return. The initial list is read in pages, so the whole list is never held at once.
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { kubeErrorMessage } from './client.ts';
import { GROUP, VERSION } from './crds.ts';
import type { Logger } from './log.ts';

/** What a removal tells: the informer keeps nothing else of an object after delivering it. */
export interface ObjectIdentity {
  name: string;
  namespace?: string | undefined;
}

export interface InformerHandlers<T extends KubernetesObject> {
  /** Called for adds and updates (with the object as `slim` left it). */
  upsert(obj: T): void;
  remove(id: ObjectIdentity): void;
}

/** One page of a list (`limit`, `_continue` as the apiserver's list takes them). */
export type ListPage<T extends KubernetesObject> = (page: {
  limit: number;
  _continue?: string;
}) => Promise<KubernetesListObject<T>>;

export interface InformerSource<T extends KubernetesObject> {
  /** The watch path (e.g. /api/v1/persistentvolumes). */
  path: string;
  list: ListPage<T>;
  /**
   * What of each object the handlers read, taken as it arrives (list pages and watch events), so
   * the rest is garbage at once. Must keep `metadata.name`, `namespace` and `resourceVersion`.
   * Default: the whole object.
   */
  slim?: (obj: T) => T;
}

/** The watch call ListWatch makes (client-node's Watch, or a stand-in in tests and benches). */
export type WatchLike = Pick<Watch, 'watch'>;

export interface InformerOptions {
  retryMs?: number;
  /** Objects per list request (client-go's reflector uses 500 too). */
  pageSize?: number;
}

export interface RunningInformer {
  readonly name: string;
  synced(): boolean;
  /** Resolves once the first list has been delivered to the handlers. */
  readonly whenSynced: Promise<void>;
  /** What the informer's own cache holds now: one identity per object. */
  held(): readonly KubernetesObject[];
  stop(): Promise<void>;
}

/** What ListWatch caches per object. */
type Identity = KubernetesObject & {
  metadata: { name: string; namespace?: string | undefined; resourceVersion?: string | undefined };
};

const identityOf = (o: KubernetesObject): Identity => ({
  metadata: {
    name: o.metadata?.name ?? '',
    namespace: o.metadata?.namespace,
    resourceVersion: o.metadata?.resourceVersion,
  },
});

/**
 * Hands ListWatch an identity per object while the object itself (slimmed) waits beside it for
 * the handlers; once they ran, only the identity is left in ListWatch's cache.
 */
class Arrivals<T extends KubernetesObject> {
  // Weak: an identity ListWatch drops without delivering (a version it had) takes its object along.
  private readonly waiting = new WeakMap<Identity, T>();
  private readonly slim: (o: T) => T;

  constructor(slim: ((o: T) => T) | undefined) {
    this.slim = slim ?? ((o) => o);
  }

  arrive(o: T): Identity {
    const id = identityOf(o);
    this.waiting.set(id, this.slim(o));
    return id;
  }

  /** The object for the handlers, once: nothing here holds it afterwards. */
  take(id: Identity): T | undefined {
    const o = this.waiting.get(id);
    this.waiting.delete(id);
    return o;
  }
}

/** The first list, page by page, each object slimmed as its page arrives. */
async function listAll<T extends KubernetesObject>(
  list: ListPage<T>,
  arrivals: Arrivals<T>,
  pageSize: number,
): Promise<KubernetesListObject<Identity>> {
  const items: Identity[] = [];
  let cont: string | undefined;
  let resourceVersion: string | undefined;
  do {
    const page = await list(cont ? { limit: pageSize, _continue: cont } : { limit: pageSize });
    for (const o of page.items) items.push(arrivals.arrive(o));
    // Every page of one list is the same snapshot: its version is where the watch starts.
    resourceVersion = page.metadata?.resourceVersion;
    cont = page.metadata?._continue || undefined;
  } while (cont);
  return { metadata: { resourceVersion }, items };
}

/** Watch events pass to ListWatch as identities, their objects slimmed for the handlers. */
function identityWatch<T extends KubernetesObject>(inner: WatchLike, arrivals: Arrivals<T>): WatchLike {
  return {
    watch: (path, query, callback, done) =>
      inner.watch(
        path,
        query,
        (phase, obj, watchObj) => {
          const isObject = phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED';
          callback(phase, isObject ? arrivals.arrive(obj as T) : obj, watchObj);
        },
        done,
      ),
  };
}

/** An informer over `source`, watching through `watch` (client-node's Watch in production). */
export function runInformer<T extends KubernetesObject>(
  watch: WatchLike,
  name: string,
  source: InformerSource<T>,
  handlers: InformerHandlers<T>,
  log: Logger,
  opts: InformerOptions = {},
): RunningInformer {
  const retryMs = opts.retryMs ?? 1000;
  const arrivals = new Arrivals<T>(source.slim);
  const informer = new ListWatch<Identity>(
    source.path,
    // ListWatch calls nothing of its Watch but watch().
    identityWatch(watch, arrivals) as Watch,
    () => listAll(source.list, arrivals, opts.pageSize ?? 500),
    false,
  );
  let isSynced = false;
  let stopped = false;
  let failedSinceStart = false;
  let timer: NodeJS.Timeout | undefined;
  let resolveSynced: () => void = () => {};
  const whenSynced = new Promise<void>((r) => {
    resolveSynced = r;
  });
  const failed = (what: string, id: Identity, e: unknown): void =>
    // One bad object must not stop the cache: log it and carry on with the rest.
    log.error(
      { informer: name, object: id.metadata.name, err: String(e) },
      `informer ${what} handler failed`,
    );
  const upsert =
    (what: string) =>
    (id: Identity): void => {
      const o = arrivals.take(id);
      if (!o) return; // delivered already (ListWatch calls each callback once per object)
      try {
        handlers.upsert(o);
      } catch (e) {
        failed(what, id, e);
      }
    };
  informer.on('add', upsert('add'));
  informer.on('update', upsert('update'));
  informer.on('delete', (id) => {
    arrivals.take(id); // a watched deletion's object: only its identity is handed on
    try {
      handlers.remove({ name: id.metadata.name, namespace: id.metadata.namespace });
    } catch (e) {
      failed('delete', id, e);
    }
  });
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
    held: () => informer.list(),
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await informer.stop();
    },
  };
}

export function startInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  name: string,
  source: InformerSource<T>,
  handlers: InformerHandlers<T>,
  log: Logger,
  opts: InformerOptions = {},
): RunningInformer {
  return runInformer(new Watch(kc), name, source, handlers, log, opts);
}

/** The list of one of MeshStor's cluster-scoped custom resources (its plural names it). */
export function customSource<T extends KubernetesObject>(
  kc: KubeConfig,
  plural: string,
  slim?: (obj: T) => T,
): InformerSource<T> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    path: `/apis/${GROUP}/${VERSION}/${plural}`,
    // The generated client types custom objects as `object`; the CRD schema guarantees the shape.
    list: async (page) =>
      (await custom.listClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural,
        ...page,
      })) as KubernetesListObject<T>,
    ...(slim ? { slim } : {}),
  };
}

/** An informer over one of MeshStor's cluster-scoped custom resources (its plural names it). */
export function startCustomInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  plural: string,
  handlers: InformerHandlers<T>,
  log: Logger,
  slim?: (obj: T) => T,
): RunningInformer {
  return startInformer<T>(kc, plural, customSource<T>(kc, plural, slim), handlers, log);
}
