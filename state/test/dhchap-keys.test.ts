// The node-pair DH-HMAC-CHAP keys and their rotation (state/dhchap-keys.ts): the order that keeps
// volumes online (target first, host second, old retired last, one key per step), and the Secret
// the Kubernetes store writes (keys in data only, never in what it may print).
import { randomBytes } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { holdsSecret } from '../../kube/redact.ts';
import {
  applied,
  fromSecret,
  KubePairKeyStore,
  keysForHost,
  keysForTarget,
  MemoryPairKeyStore,
  newPair,
  type PairKeys,
  pairSecretName,
  rotationDue,
  rotationStep,
  SECRET_TYPE,
  type SecretsApi,
  toSecret,
} from '../dhchap-keys.ts';
import { StateError } from '../errors.ts';

const fresh = () => `DHHC-1:00:${randomBytes(36).toString('base64')}:`;
const T0 = Date.parse('2026-11-28T10:00:00Z');

/** Both sides caught up with the pair as it is. */
const settled = (p: PairKeys) => applied(applied(p, 'target', p.generation), 'host', p.generation);

describe('rotation order', () => {
  it('a new pair is used by the host only once the target has it', () => {
    const p = newPair('b', 'a', fresh, T0);
    expect(keysForTarget(p)).toBe(p.current);
    expect(keysForHost(p)).toBeUndefined();
    expect(keysForHost(applied(p, 'target', 1))).toEqual(p.current);
  });

  it('one key per step; the host keeps the old pair until the target applied the new one; the host retires it', () => {
    const p = settled(newPair('b', 'a', fresh, T0));
    const s1 = rotationStep(p, fresh, T0 + 1);
    expect(s1).toBeDefined();
    if (!s1) return;
    expect(s1.generation).toBe(2);
    expect(s1.current.host).not.toBe(p.current.host);
    expect(s1.current.ctrl).toBe(p.current.ctrl);
    expect(s1.previous).toEqual(p.current);
    expect(keysForHost(s1)).toEqual(p.current); // the target still has generation 1
    expect(rotationStep(s1, fresh, T0 + 2)).toBeUndefined(); // no second step in flight
    const t = applied(s1, 'target', 2);
    expect(keysForTarget(t)).toEqual(s1.current);
    expect(keysForHost(t)).toEqual(s1.current);
    expect(rotationStep(t, fresh, T0 + 2)).toBeUndefined(); // the host has not caught up
    const h = applied(t, 'host', 2);
    expect(h.previous).toBeUndefined(); // the old key is retired
    const s2 = rotationStep(h, fresh, T0 + 3);
    expect(s2?.current.ctrl).not.toBe(p.current.ctrl);
    expect(s2?.current.host).toBe(s1.current.host);
  });

  it('a host that lags more than one generation is given nothing rather than a key the target dropped', () => {
    const p = {
      ...settled(newPair('b', 'a', fresh, T0)),
      generation: 5,
      targetApplied: 3,
      previous: undefined,
    };
    expect(keysForHost(p)).toBeUndefined();
  });

  it('is due when the keys are older than the period', () => {
    const p = newPair('b', 'a', fresh, T0);
    expect(rotationDue(p, T0 + 999, 1000)).toBe(false);
    expect(rotationDue(p, T0 + 1000, 1000)).toBe(true);
  });
});

describe('MemoryPairKeyStore', () => {
  it('create keeps the first writer, update refuses a stale version', async () => {
    const s = new MemoryPairKeyStore();
    const first = await s.create(newPair('b', 'a', fresh, T0));
    const second = await s.create(newPair('b', 'a', fresh, T0));
    expect(second.current).toEqual(first.current);
    const moved = await s.update(applied(first, 'target', 1));
    expect(moved.targetApplied).toBe(1);
    await expect(s.update(applied(first, 'host', 1))).rejects.toBeInstanceOf(StateError);
    expect(await s.get('a', 'b')).toBeUndefined(); // pairs are directed: target b, host a
  });
});

describe('the Secret', () => {
  it('holds the keys in data only and round-trips', () => {
    const p = { ...rotationStep(settled(newPair('node-b', 'node-a', fresh, T0)), fresh, T0) } as PairKeys;
    const s = toSecret(p, 'meshstor-system');
    expect(s.type).toBe(SECRET_TYPE);
    expect(s.metadata?.name).toBe(pairSecretName('node-b', 'node-a'));
    expect(s.metadata?.name).toMatch(/^meshstor-dhchap-[0-9a-f]{32}$/);
    expect(holdsSecret(JSON.stringify(s.metadata))).toBe(false);
    expect(Object.keys(s.data ?? {}).sort()).toEqual([
      'ctrl-key',
      'host-key',
      'previous-ctrl-key',
      'previous-host-key',
    ]);
    expect(fromSecret(s)).toEqual({ ...p, version: undefined });
  });

  it('a Secret that is not a pair is refused by name, without its data', () => {
    const bad: V1Secret = {
      metadata: { name: 'x' },
      data: { 'host-key': Buffer.from(fresh()).toString('base64') },
    };
    expect(() => fromSecret(bad)).toThrow(/Secret x is not a MeshStor DH-HMAC-CHAP pair/);
  });
});

describe('KubePairKeyStore', () => {
  /** An apiserver of one namespace's Secrets: resourceVersion checked, 404 and 409 as the client throws them. */
  function fakeApi(opts: { failWith?: unknown } = {}): SecretsApi & { stored: Map<string, V1Secret> } {
    const stored = new Map<string, V1Secret>();
    let rv = 0;
    const httpError = (code: number, body: string) =>
      Object.assign(new Error(`HTTP-Code: ${code}`), { code, body });
    const api = {
      stored,
      readNamespacedSecret: async ({ name }: { name: string }) => {
        const s = stored.get(name);
        if (!s) throw httpError(404, 'not found');
        return structuredClone(s);
      },
      createNamespacedSecret: async ({ body }: { body: V1Secret }) => {
        if (opts.failWith) throw opts.failWith;
        const name = body.metadata?.name ?? '';
        if (stored.has(name)) throw httpError(409, 'exists');
        const s = { ...body, metadata: { ...body.metadata, resourceVersion: String(++rv) } };
        stored.set(name, s);
        return structuredClone(s);
      },
      replaceNamespacedSecret: async ({ name, body }: { name: string; body: V1Secret }) => {
        if (stored.get(name)?.metadata?.resourceVersion !== body.metadata?.resourceVersion)
          throw httpError(409, 'conflict');
        const s = { ...body, metadata: { ...body.metadata, resourceVersion: String(++rv) } };
        stored.set(name, s);
        return structuredClone(s);
      },
    };
    return api as unknown as SecretsApi & { stored: Map<string, V1Secret> };
  }

  it('creates, reads, updates with the version read, and loses a race cleanly', async () => {
    const api = fakeApi();
    const store = new KubePairKeyStore({ namespace: 'meshstor-system', api });
    expect(await store.get('b', 'a')).toBeUndefined();
    const made = await store.create(newPair('b', 'a', fresh, T0));
    expect(made.version).toBe('1');
    const again = await store.create(newPair('b', 'a', fresh, T0)); // another agent was first
    expect(again.current).toEqual(made.current);
    const next = await store.update(applied(made, 'target', 1));
    expect(next.targetApplied).toBe(1);
    const err = await store.update(applied(made, 'host', 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).kind).toBe('changed');
  });

  it('an apiserver error that echoes the body loses the keys on the way', async () => {
    const p = newPair('b', 'a', fresh, T0);
    const echo = Object.assign(new Error(`HTTP-Code: 422 Message: invalid ${p.current.host}`), { code: 422 });
    const store = new KubePairKeyStore({ namespace: 'meshstor-system', api: fakeApi({ failWith: echo }) });
    const err = (await store.create(p).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(StateError);
    expect(holdsSecret(err.message)).toBe(false);
  });
});
