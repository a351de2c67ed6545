// This node's side of the node-pair DH-HMAC-CHAP keys (state/dhchap-keys.ts, ADR 0007). As a
// target it creates a pair the first time it exports to a host node, takes each rotation step
// when the keys are due (target first), and records what its nvmet holds; as a host it connects
// with the keys the target holds and records (and so retires the old pair) once its controllers
// have the new ones. Records are best effort: a lost race is redone by the next pass.
import {
  applied,
  keysForHost,
  keysForTarget,
  newPair,
  type PairKeyStore,
  type PairKeys,
  rotationDue,
  rotationStep,
} from '../state/dhchap-keys.ts';
import { StateError } from '../state/errors.ts';
import { type DhchapKeys, generateDhchapSecret } from './host/dhchap.ts';

/** Keys to hand the Host, and what to record once the Host took them. */
export interface KeysInUse {
  keys: DhchapKeys;
  generation: number;
  /** Records that this node's kernel holds them (call after grantHost or connect succeeded). */
  taken(): Promise<void>;
}

export const DEFAULT_ROTATE_DAYS = 30;

export class NodeKeys {
  private readonly node: string;
  private readonly store: PairKeyStore;
  private readonly rotateAfterMs: number;
  private readonly now: () => number;
  private readonly fresh: () => string;
  private readonly cacheMs: number;
  /** Pairs read lately: a pass asks once per replica, the apiserver is asked once per pair. */
  private readonly cache = new Map<string, { at: number; pair: PairKeys | undefined }>();

  constructor(o: {
    node: string;
    store: PairKeyStore;
    /** A key is replaced when older than this (each step replaces one of the two keys). */
    rotateAfterMs?: number;
    now?: () => number;
    fresh?: () => string;
    /** How long a pair read is reused (default 2 s: well inside one pass; a write replaces it). */
    cacheMs?: number;
  }) {
    this.node = o.node;
    this.store = o.store;
    this.rotateAfterMs = o.rotateAfterMs ?? (DEFAULT_ROTATE_DAYS * 86_400_000) / 2;
    this.now = o.now ?? Date.now;
    this.fresh = o.fresh ?? (() => generateDhchapSecret());
    this.cacheMs = o.cacheMs ?? 2_000;
  }

  private async read(target: string, host: string): Promise<PairKeys | undefined> {
    const k = `${target}\0${host}`;
    const hit = this.cache.get(k);
    if (hit && this.now() - hit.at < this.cacheMs) return hit.pair;
    return this.remember(await this.store.get(target, host), target, host);
  }

  private remember(pair: PairKeys | undefined, target: string, host: string): PairKeys | undefined {
    this.cache.set(`${target}\0${host}`, { at: this.now(), pair });
    return pair;
  }

  private async write(p: PairKeys, how: 'create' | 'update'): Promise<PairKeys> {
    try {
      const w = how === 'create' ? await this.store.create(p) : await this.store.update(p);
      this.remember(w, p.target, p.host);
      return w;
    } catch (e) {
      this.cache.delete(`${p.target}\0${p.host}`); // read it fresh next time
      throw e;
    }
  }

  /** As the target of `hostNode`: the keys to grant it (the pair is created, or stepped when due). */
  async forGrant(hostNode: string): Promise<KeysInUse> {
    let p =
      (await this.read(this.node, hostNode)) ??
      (await this.write(newPair(this.node, hostNode, this.fresh, this.now()), 'create'));
    const step = rotationDue(p, this.now(), this.rotateAfterMs)
      ? rotationStep(p, this.fresh, this.now())
      : undefined;
    if (step) p = await this.write(step, 'update');
    return this.inUse(p, keysForTarget(p), 'target');
  }

  /** As a host of `targetNode`: the keys its nvmet holds, or undefined before it created any. */
  async forConnect(targetNode: string): Promise<KeysInUse | undefined> {
    const p = await this.read(targetNode, this.node);
    const k = p && keysForHost(p);
    if (!p || !k) return undefined;
    return this.inUse(p, k, 'host');
  }

  private inUse(p: PairKeys, k: { host: string; ctrl: string }, side: 'target' | 'host'): KeysInUse {
    const generation = k === p.current ? p.generation : p.generation - 1;
    return {
      keys: { dhchapSecret: k.host, dhchapCtrlSecret: k.ctrl },
      generation,
      taken: async () => {
        const next = applied(p, side, generation);
        if (
          next.targetApplied === p.targetApplied &&
          next.hostApplied === p.hostApplied &&
          next.previous === p.previous
        )
          return;
        try {
          await this.write(next, 'update');
        } catch (e) {
          if (!(e instanceof StateError && e.kind === 'changed')) throw e; // another writer: the next pass records it
        }
      },
    };
  }
}
