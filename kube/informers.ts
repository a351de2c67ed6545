// Informers (list + watch, over client-node's Watch) that restart themselves after an error and
// report when their first list has been delivered, so /readyz can wait for them.
//
// Memory (issue 15 §3): client-node's ListWatch keeps every object it delivered (hundreds of MiB
// at 100k volumes, copies of what the handlers already hold in their models) and collects a whole
// list before delivering any of it. Here the list is read in pages and each object is handed on
// as its page arrives, reduced to what its handler reads (`slim`); the informer itself keeps only
// each object's identity and resourceVersion (to skip a version it delivered, and to tell the
// handlers what a relist no longer has): one Map entry of its key and version, the version a
// number when it is one.
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
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
  /** How many objects it tracks (it keeps their identities and versions, nothing else). */
  tracked(): number;
  stop(): Promise<void>;
}

const keyOf = (m: { name?: string; namespace?: string } | undefined): string =>
  m?.namespace ? `${m.namespace}/${m.name ?? ''}` : (m?.name ?? '');

/** The identity a key stands for (namespaces and names never contain '/'). */
export function identityOf(key: string): ObjectIdentity {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * A resourceVersion as the informer keeps it: a canonical decimal integer (what the apiserver
 * hands out, an etcd revision) as a number, which a Map holds without a string of its own per
 * object; anything else as it is. Two versions are equal exactly when their forms are.
 */
export type VersionForm = number | string | undefined;
export function versionForm(rv: string | undefined): VersionForm {
  return rv !== undefined && /^[1-9][0-9]{0,14}$/.test(rv) ? Number(rv) : rv;
}

/**
 * The continue token of a list page: `_continue` as client-node's typed lists deserialize it,
 * `continue` as a custom-object list arrives (raw JSON, not deserialized).
 */
export function continueOf(meta: { _continue?: string; continue?: string } | undefined): string | undefined {
  return meta?._continue || meta?.continue || undefined;
}

const isGone = (e: unknown): boolean => {
  const x = e as { statusCode?: number; code?: number } | null | undefined;
  return x?.statusCode === 410 || x?.code === 410;
};
const isTimeout = (e: unknown): boolean =>
  (e as { name?: string } | null | undefined)?.name === 'TimeoutError';

/**
 * List (in pages, each object handed on as its page arrives), then watch from the list's version;
 * a watch that ends is resumed from the last version seen, one whose version expired (410) lists
 * again and removes what the new list no longer has. What it keeps per object is its identity
 * and version (to skip a version it delivered already); the objects go to the handlers only.
 */
export function runInformer<T extends KubernetesObject>(
  watch: WatchLike,
  name: string,
  source: InformerSource<T>,
  handlers: InformerHandlers<T>,
  log: Logger,
  opts: InformerOptions = {},
): RunningInformer {
  const retryMs = opts.retryMs ?? 1000;
  const pageSize = opts.pageSize ?? 500;
  const slim = source.slim ?? ((o: T) => o);
  /** key (namespace/name) -> the version delivered: all it keeps per object (issue 15 §3). */
  const known = new Map<string, VersionForm>();
  let resourceVersion = '';
  let isSynced = false;
  let stopped = false;
  let request: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** Quiet reconnects back off (1 s doubling to 30 s); any event resets it, as ListWatch does. */
  let reconnectMs = 0;
  let resolveSynced: () => void = () => {};
  const whenSynced = new Promise<void>((r) => {
    resolveSynced = r;
  });

  const failed = (what: string, object: string, e: unknown): void =>
    // One bad object must not stop the cache: log it and carry on with the rest.
    log.error({ informer: name, object, err: String(e) }, `informer ${what} handler failed`);
  const upsert = (o: T, seen?: Set<string>): void => {
    const m = o.metadata;
    const key = keyOf(m);
    seen?.add(key);
    const had = known.has(key);
    const was = known.get(key);
    const version = versionForm(m?.resourceVersion);
    if (was !== undefined && was === version) return;
    known.set(key, version);
    try {
      handlers.upsert(slim(o));
    } catch (e) {
      failed(had ? 'update' : 'add', key, e);
    }
  };
  const remove = (key: string): void => {
    if (!known.has(key)) return;
    known.delete(key);
    try {
      handlers.remove(identityOf(key));
    } catch (e) {
      failed('delete', key, e);
    }
  };

  const list = async (): Promise<void> => {
    const seen = new Set<string>();
    let cont: string | undefined;
    let version: string | undefined;
    do {
      const page = await source.list(cont ? { limit: pageSize, _continue: cont } : { limit: pageSize });
      if (stopped) return;
      for (const o of page.items) upsert(o, seen);
      // Every page of one list is the same snapshot: its version is where the watch starts.
      version = page.metadata?.resourceVersion;
      cont = continueOf(page.metadata);
    } while (cont);
    for (const key of [...known.keys()]) if (!seen.has(key)) remove(key);
    resourceVersion = version ?? '';
  };

  const onEvent = (phase: string, obj: T & { code?: number }): void => {
    if (phase === 'ERROR') {
      if (obj.code === 410) resourceVersion = ''; // the stream ends next; then list again
      return;
    }
    if (phase === 'ADDED' || phase === 'MODIFIED') upsert(obj);
    else if (phase === 'DELETED') remove(keyOf(obj.metadata));
    reconnectMs = 0;
    resourceVersion = obj.metadata?.resourceVersion || resourceVersion;
  };
  const onDone = (err: unknown): void => {
    request = undefined;
    if (stopped) return;
    if (isGone(err)) resourceVersion = '';
    else if (err && !isTimeout(err)) {
      retry(err);
      return;
    }
    if (isTimeout(err)) reconnectMs = 0; // the timeout throttled it already
    const wait = reconnectMs;
    reconnectMs = Math.min(reconnectMs > 0 ? reconnectMs * 2 : 1000, 30_000);
    clearTimeout(timer);
    timer = setTimeout(run, wait);
  };

  const run = (): void => {
    if (stopped) return;
    void (async () => {
      if (!resourceVersion) await list();
      if (stopped) return;
      request = await watch.watch(source.path, { resourceVersion }, onEvent, onDone);
      if (stopped) request.abort();
      if (!isSynced) {
        isSynced = true;
        resolveSynced();
        log.info({ informer: name, objects: known.size }, 'informer synced');
      }
    })().catch(retry);
  };
  const retry = (e: unknown): void => {
    if (stopped) return;
    log.warn({ informer: name, err: kubeErrorMessage(e) }, `informer error, restarting in ${retryMs} ms`);
    clearTimeout(timer);
    timer = setTimeout(run, retryMs);
  };
  run();
  return {
    name,
    synced: () => isSynced,
    whenSynced,
    tracked: () => known.size,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      request?.abort();
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
