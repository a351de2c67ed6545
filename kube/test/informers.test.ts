import type { KubernetesListObject, Watch } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  type InformerSource,
  identityOf,
  type ObjectIdentity,
  runInformer,
  versionForm,
  type WatchLike,
} from '../informers.ts';
import { makeLogger } from '../log.ts';

interface Thing {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion: string;
    managedFields?: { manager?: string }[];
  };
  spec: { wanted: string; bulky?: string };
}

const thing = (name: string, rv: string, wanted = `w-${name}`): Thing => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, managedFields: [{ manager: 'x' }] },
  spec: { wanted, bulky: 'x'.repeat(1000) },
});

/** A Watch whose events the test sends; `end` closes the stream as the apiserver would. */
class FakeWatch implements WatchLike {
  send: Parameters<Watch['watch']>[2] = () => {};
  end: Parameters<Watch['watch']>[3] = () => {};
  starts: string[] = [];
  async watch(...[, query, callback, done]: Parameters<Watch['watch']>): Promise<AbortController> {
    this.starts.push(String(query.resourceVersion));
    this.send = callback;
    this.end = done;
    return new AbortController();
  }
}

/** A list served in pages of `limit`, as the apiserver does with continue tokens. */
function pagedList(items: () => Thing[], rv: string, calls: { limit: number; _continue?: string }[]) {
  const list: InformerSource<Thing>['list'] = async (page) => {
    calls.push(page);
    const all = items();
    const from = Number(page._continue ?? 0);
    const next = from + page.limit;
    const out: KubernetesListObject<Thing> = {
      metadata: { resourceVersion: rv, ...(next < all.length ? { _continue: String(next) } : {}) },
      items: all.slice(from, next),
    };
    return out;
  };
  return list;
}

const slim = (t: Thing): Thing => ({
  metadata: {
    name: t.metadata.name,
    namespace: t.metadata.namespace,
    resourceVersion: t.metadata.resourceVersion,
  },
  spec: { wanted: t.spec.wanted },
});

const log = makeLogger('test', 'silent');
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('runInformer', () => {
  it('lists page by page, hands the handlers slimmed objects, watches from the list, relists after 410', async () => {
    const watch = new FakeWatch();
    const calls: { limit: number; _continue?: string }[] = [];
    let items = [thing('a', '1'), thing('b', '2'), thing('c', '3'), thing('d', '4'), thing('e', '5')];
    const got: Thing[] = [];
    const removed: ObjectIdentity[] = [];
    const inf = runInformer<Thing>(
      watch,
      'things',
      { path: '/things', list: pagedList(() => items, '10', calls), slim },
      { upsert: (t) => got.push(t), remove: (id) => removed.push(id) },
      log,
      { pageSize: 2 },
    );
    await inf.whenSynced;
    expect(calls).toEqual([{ limit: 2 }, { limit: 2, _continue: '2' }, { limit: 2, _continue: '4' }]);
    expect(got.map((t) => t.metadata.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(got[0]).toEqual({
      metadata: { name: 'a', namespace: 'ns', resourceVersion: '1' },
      spec: { wanted: 'w-a' },
    });
    expect(watch.starts).toEqual(['10']); // the watch starts where the paged list's snapshot was
    expect(inf.tracked()).toBe(5);

    // Watch: a change is delivered once per version, slimmed; a deletion tells only the identity.
    watch.send('MODIFIED', thing('b', '11', 'changed'));
    watch.send('MODIFIED', thing('b', '11', 'changed'));
    watch.send('DELETED', thing('a', '12'));
    watch.send('ADDED', thing('f', '13'));
    expect(got.slice(5)).toEqual([
      { metadata: { name: 'b', namespace: 'ns', resourceVersion: '11' }, spec: { wanted: 'changed' } },
      { metadata: { name: 'f', namespace: 'ns', resourceVersion: '13' }, spec: { wanted: 'w-f' } },
    ]);
    expect(removed).toEqual([{ name: 'a', namespace: 'ns' }]);
    expect(inf.tracked()).toBe(5);
    watch.send('DELETED', thing('a', '15')); // gone already: nothing to tell
    expect(removed).toHaveLength(1);

    // A relist (the watch's version expired) that no longer has c: removed by its identity alone;
    // objects whose version did not change are not delivered again.
    items = [thing('b', '11', 'changed'), thing('d', '14', 'new d'), thing('e', '5'), thing('f', '13')];
    watch.end({ statusCode: 410 });
    await tick();
    expect(removed).toEqual([
      { name: 'a', namespace: 'ns' },
      { name: 'c', namespace: 'ns' },
    ]);
    expect(got.slice(7).map((t) => [t.metadata.name, t.spec.wanted])).toEqual([['d', 'new d']]);
    expect(inf.tracked()).toBe(4);
    expect(watch.starts).toEqual(['10', '10']); // watching again from the new list's version
    await inf.stop();
  });

  it('a handler that throws does not stop the others, and the object is still tracked', async () => {
    const watch = new FakeWatch();
    const got: string[] = [];
    const inf = runInformer<Thing>(
      watch,
      'things',
      { path: '/things', list: pagedList(() => [thing('bad', '1'), thing('ok', '2')], '5', []) },
      {
        upsert: (t) => {
          if (t.metadata.name === 'bad') throw new Error('boom');
          got.push(t.spec.wanted);
        },
        remove: () => {},
      },
      log,
    );
    await inf.whenSynced;
    expect(got).toEqual(['w-ok']);
    expect(inf.tracked()).toBe(2);
    await inf.stop();
  });
});

describe('runInformer: custom-object lists', () => {
  it('follows `continue` as a custom-object list spells it (raw JSON), not only `_continue`', async () => {
    const items = [thing('a', '1'), thing('b', '2'), thing('c', '3')];
    const got: string[] = [];
    const inf = runInformer<Thing>(
      new FakeWatch(),
      'things',
      {
        path: '/things',
        list: async (page) => {
          const from = Number(page._continue ?? 0);
          const next = from + page.limit;
          return {
            metadata: { resourceVersion: '9', ...(next < items.length ? { continue: String(next) } : {}) },
            items: items.slice(from, next),
          } as KubernetesListObject<Thing>;
        },
      },
      { upsert: (t) => got.push(t.metadata.name), remove: () => {} },
      log,
      { pageSize: 2 },
    );
    await inf.whenSynced;
    expect(got).toEqual(['a', 'b', 'c']);
    await inf.stop();
  });
});

describe('runInformer: the watch ending', () => {
  it('resumes from the last version seen after a timeout, and retries after an error', async () => {
    const watch = new FakeWatch();
    const calls: { limit: number; _continue?: string }[] = [];
    const got: string[] = [];
    const inf = runInformer<Thing>(
      watch,
      'things',
      { path: '/things', list: pagedList(() => [thing('a', '1')], '7', calls) },
      { upsert: (t) => got.push(`${t.metadata.name}@${t.metadata.resourceVersion}`), remove: () => {} },
      log,
      { retryMs: 1 },
    );
    await inf.whenSynced;
    watch.send('MODIFIED', thing('a', '8'));
    watch.end(Object.assign(new Error('timed out'), { name: 'TimeoutError' }));
    await tick();
    watch.end(new Error('connection refused'));
    await tick();
    expect(watch.starts).toEqual(['7', '8', '8']); // no relist: the version was still good
    expect(calls).toHaveLength(1);
    expect(got).toEqual(['a@1', 'a@8']);
    expect(inf.synced()).toBe(true);
    await inf.stop();
  });
});

describe('what an informer keeps per object', () => {
  it('a key stands for its namespace and name', () => {
    expect(identityOf('ns/a')).toEqual({ namespace: 'ns', name: 'a' });
    expect(identityOf('cluster-scoped')).toEqual({ name: 'cluster-scoped' });
  });

  it('a decimal resourceVersion is kept as a number; two versions are equal exactly when their forms are', () => {
    expect(versionForm('123456789')).toBe(123456789);
    expect(versionForm('999999999999999')).toBe(999999999999999);
    // not canonical decimal integers (or too long to be exact as numbers): kept as they are
    for (const rv of ['0', '007', '1.5', 'abc', '1e3', '9999999999999999', ''])
      expect(versionForm(rv)).toBe(rv);
    expect(versionForm(undefined)).toBeUndefined();
    const versions = ['1', '01', '10', '1e1', 'x', '9999999999999999', '9999999999999998'];
    for (const a of versions) {
      for (const b of versions) expect(versionForm(a) === versionForm(b)).toBe(a === b);
    }
  });
});
