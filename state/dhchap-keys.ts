// DH-HMAC-CHAP keys per node pair, kept in one Kubernetes Secret per (target node, host node):
// the host key the host node proves to the target node's nvmet, and the controller key the target
// proves back (ADR 0007). Only the agents read and write them (a Role in the release namespace).
//
// Rotation without downtime, one key per step, in this order:
//   1. the target node's agent writes generation G+1 (one key replaced, G kept as `previous`),
//      puts it into its nvmet configfs and records `target-applied: G+1`; live controllers stay up
//      (nvmet checks keys only at connect and re-authentication);
//   2. the host node's agent sees `target-applied >= G+1`, hands the new keys to its live
//      controllers (which re-authenticate in place) and uses them for new connects; until then it
//      uses `previous`, which is what the target still has;
//   3. the host's agent records `host-applied: G+1` and drops `previous` (the old key is retired).
// A new step starts only when the previous one finished (no `previous`), so a re-authentication
// never meets a pair that differs in both keys. The keys live in `data` only: annotations, errors,
// logs and Events carry generations and node names, never a key.
import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { httpStatusOf, kubeErrorMessage } from '../kube/client.ts';
import { redactSecrets } from '../kube/redact.ts';
import { StateError } from './errors.ts';

/** A key pair in the NVMe text form (DHHC-1:...). */
export interface KeyPair {
  host: string;
  ctrl: string;
}

export interface PairKeys {
  target: string;
  host: string;
  generation: number;
  current: KeyPair;
  /** The pair before the step in flight; gone once the host applied `generation`. */
  previous?: KeyPair | undefined;
  targetApplied: number;
  hostApplied: number;
  /** When `generation` was written (ms since the epoch). */
  rotatedAt: number;
  /** Which key the last step replaced: the next step replaces the other. */
  lastReplaced: 'host' | 'ctrl';
  /** Opaque: the stored version this was read at (optimistic concurrency). */
  version?: string | undefined;
}

// --- the rotation, as pure functions of the stored state ----------------------------------------

/** What the target grants: always the newest generation (it applies first). */
export const keysForTarget = (p: PairKeys): KeyPair => p.current;

/** What the host uses: the newest once the target has it, else the one the target still has. */
export function keysForHost(p: PairKeys): KeyPair | undefined {
  if (p.targetApplied >= p.generation) return p.current;
  if (p.previous && p.targetApplied === p.generation - 1) return p.previous;
  return undefined; // the target has not taken any keys of this pair yet: not exported yet
}

/** The next step of a rotation, or undefined while one is in flight (the host has not caught up). */
export function rotationStep(p: PairKeys, fresh: () => string, now: number): PairKeys | undefined {
  if (p.previous !== undefined || p.hostApplied < p.generation || p.targetApplied < p.generation)
    return undefined;
  const replace = p.lastReplaced === 'host' ? 'ctrl' : 'host';
  return {
    ...p,
    generation: p.generation + 1,
    previous: p.current,
    current: replace === 'host' ? { ...p.current, host: fresh() } : { ...p.current, ctrl: fresh() },
    lastReplaced: replace,
    rotatedAt: now,
  };
}

/** Whether a pair is due a step: its keys are older than `maxAgeMs` (a full rotation is two steps). */
export const rotationDue = (p: PairKeys, now: number, maxAgeMs: number): boolean =>
  now - p.rotatedAt >= maxAgeMs;

/** The state after `side` applied `generation`; the host applying it retires `previous`. */
export function applied(p: PairKeys, side: 'target' | 'host', generation: number): PairKeys {
  if (side === 'target') return { ...p, targetApplied: Math.max(p.targetApplied, generation) };
  const hostApplied = Math.max(p.hostApplied, generation);
  return { ...p, hostApplied, previous: hostApplied >= p.generation ? undefined : p.previous };
}

export function newPair(target: string, host: string, fresh: () => string, now: number): PairKeys {
  return {
    target,
    host,
    generation: 1,
    current: { host: fresh(), ctrl: fresh() },
    targetApplied: 0,
    hostApplied: 0,
    rotatedAt: now,
    lastReplaced: 'ctrl',
  };
}

// --- the stores ---------------------------------------------------------------------------------

export interface PairKeyStore {
  get(target: string, host: string): Promise<PairKeys | undefined>;
  /** Creates the pair when it does not exist (another writer's creation wins); returns what is stored. */
  create(p: PairKeys): Promise<PairKeys>;
  /** Writes `p` if nothing changed since it was read (StateError 'changed' otherwise). */
  update(p: PairKeys): Promise<PairKeys>;
}

const pairKey = (target: string, host: string) => `${target}\0${host}`;

export class MemoryPairKeyStore implements PairKeyStore {
  private readonly pairs = new Map<string, PairKeys>();
  private version = 0;

  async get(target: string, host: string): Promise<PairKeys | undefined> {
    const p = this.pairs.get(pairKey(target, host));
    return p && structuredClone(p);
  }

  async create(p: PairKeys): Promise<PairKeys> {
    const k = pairKey(p.target, p.host);
    const have = this.pairs.get(k);
    if (have) return structuredClone(have);
    this.pairs.set(k, { ...structuredClone(p), version: String(++this.version) });
    return this.get(p.target, p.host) as Promise<PairKeys>;
  }

  async update(p: PairKeys): Promise<PairKeys> {
    const k = pairKey(p.target, p.host);
    if (this.pairs.get(k)?.version !== p.version) {
      throw new StateError(
        'changed',
        `the keys of ${p.target} -> ${p.host} changed since they were read; retry`,
      );
    }
    this.pairs.set(k, { ...structuredClone(p), version: String(++this.version) });
    return this.get(p.target, p.host) as Promise<PairKeys>;
  }
}

/** Secret name of a pair: node names may be 253 characters, so a hash of both. */
export function pairSecretName(target: string, host: string): string {
  const h = createHash('sha256').update(pairKey(target, host)).digest('hex').slice(0, 32);
  return `meshstor-dhchap-${h}`;
}

export const SECRET_TYPE = 'meshstor.io/dhchap';
const A = {
  target: 'meshstor.io/target-node',
  host: 'meshstor.io/host-node',
  generation: 'meshstor.io/generation',
  targetApplied: 'meshstor.io/target-applied',
  hostApplied: 'meshstor.io/host-applied',
  rotatedAt: 'meshstor.io/rotated-at',
  lastReplaced: 'meshstor.io/last-replaced',
} as const;

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) =>
  s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8');

export function toSecret(p: PairKeys, namespace: string): V1Secret {
  const data: Record<string, string> = { 'host-key': b64(p.current.host), 'ctrl-key': b64(p.current.ctrl) };
  if (p.previous) {
    data['previous-host-key'] = b64(p.previous.host);
    data['previous-ctrl-key'] = b64(p.previous.ctrl);
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: SECRET_TYPE,
    metadata: {
      name: pairSecretName(p.target, p.host),
      namespace,
      labels: { 'app.kubernetes.io/part-of': 'meshstor', 'app.kubernetes.io/component': 'dhchap' },
      annotations: {
        [A.target]: p.target,
        [A.host]: p.host,
        [A.generation]: String(p.generation),
        [A.targetApplied]: String(p.targetApplied),
        [A.hostApplied]: String(p.hostApplied),
        [A.rotatedAt]: new Date(p.rotatedAt).toISOString(),
        [A.lastReplaced]: p.lastReplaced,
      },
      ...(p.version === undefined ? {} : { resourceVersion: p.version }),
    },
    data,
  };
}

/** The pair a Secret holds; a malformed one is an error that names the Secret, never its data. */
export function fromSecret(s: V1Secret): PairKeys {
  const a = s.metadata?.annotations ?? {};
  const d = s.data ?? {};
  const name = s.metadata?.name ?? '?';
  const host = unb64(d['host-key']);
  const ctrl = unb64(d['ctrl-key']);
  const target = a[A.target];
  const hostNode = a[A.host];
  const generation = Number(a[A.generation]);
  if (!host || !ctrl || !target || !hostNode || !Number.isInteger(generation) || generation < 1) {
    throw new StateError('unavailable', `Secret ${name} is not a MeshStor DH-HMAC-CHAP pair`);
  }
  const ph = unb64(d['previous-host-key']);
  const pc = unb64(d['previous-ctrl-key']);
  return {
    target,
    host: hostNode,
    generation,
    current: { host, ctrl },
    previous: ph && pc ? { host: ph, ctrl: pc } : undefined,
    targetApplied: Number(a[A.targetApplied] ?? 0) || 0,
    hostApplied: Number(a[A.hostApplied] ?? 0) || 0,
    rotatedAt: Date.parse(a[A.rotatedAt] ?? '') || 0,
    lastReplaced: a[A.lastReplaced] === 'host' ? 'host' : 'ctrl',
    version: s.metadata?.resourceVersion,
  };
}

/** The subset of CoreV1Api the store uses (a test passes a fake). */
export type SecretsApi = Pick<
  CoreV1Api,
  'readNamespacedSecret' | 'createNamespacedSecret' | 'replaceNamespacedSecret'
>;

/** An apiserver error as a StateError whose message can hold no key (a 422 may echo the body). */
function failed(what: string, e: unknown, creating = false): StateError {
  const code = httpStatusOf(e);
  if (code === 404 && creating) return new StateError('unavailable', `${what}: its namespace does not exist`);
  if (code === 409 || code === 404)
    return new StateError('changed', `${what}: changed since it was read; retry`);
  return new StateError('unavailable', `${what}: ${redactSecrets(kubeErrorMessage(e))}`);
}

export class KubePairKeyStore implements PairKeyStore {
  private readonly api: SecretsApi;
  private readonly namespace: string;

  constructor(o: { namespace: string; kc?: KubeConfig; api?: SecretsApi }) {
    this.namespace = o.namespace;
    const api = o.api ?? o.kc?.makeApiClient(CoreV1Api);
    if (!api) throw new Error('KubePairKeyStore needs a KubeConfig or an api');
    this.api = api;
  }

  async get(target: string, host: string): Promise<PairKeys | undefined> {
    const name = pairSecretName(target, host);
    try {
      return fromSecret(await this.api.readNamespacedSecret({ name, namespace: this.namespace }));
    } catch (e) {
      if (e instanceof StateError) throw e;
      if (httpStatusOf(e) === 404) return undefined;
      throw failed(`reading Secret ${name}`, e);
    }
  }

  async create(p: PairKeys): Promise<PairKeys> {
    const body = toSecret({ ...p, version: undefined }, this.namespace);
    try {
      return fromSecret(await this.api.createNamespacedSecret({ namespace: this.namespace, body }));
    } catch (e) {
      if (httpStatusOf(e) !== 409) throw failed(`creating Secret ${body.metadata?.name}`, e, true);
      const have = await this.get(p.target, p.host); // another agent created it first: theirs wins
      if (!have) throw new StateError('changed', `Secret ${body.metadata?.name} came and went; retry`);
      return have;
    }
  }

  async update(p: PairKeys): Promise<PairKeys> {
    const body = toSecret(p, this.namespace);
    const name = body.metadata?.name ?? '';
    try {
      return fromSecret(await this.api.replaceNamespacedSecret({ name, namespace: this.namespace, body }));
    } catch (e) {
      throw failed(`writing Secret ${name}`, e);
    }
  }
}
