// The network a SimulatedHost exports and connects through. `Fabric` is what the host needs of it;
// SimFabric is the in-process one (hosts of one process share it, and an initiator shares the
// target's Store object). NetworkSimFabric (sim-network.ts) spans processes over TCP.
import type { DhchapKeys } from './dhchap.ts';
import { ConnectRefusedError, InvalidArgumentError } from './errors.ts';
import type { ConnectSpec, ListenAddress } from './types.ts';

/** What lives on a block device: shared by a partition and the remote namespaces exporting it. */
export interface Store {
  sizeBytes: number;
  /** The MD superblock: its array, and its event count (raised by every change of the array while it is a member). */
  md?: { uuid: string; name: string; events?: number | undefined } | undefined;
  fs?: string | undefined;
  /**
   * What a detached member's data area holds: the array's filesystem when the member left it in
   * sync (a snapshot, ADR 0010). Not carried by the networked fabric's wire format.
   */
  data?: string | undefined;
}

/** The target side of a host, as a fabric reaches it. */
export interface SimTarget {
  /** The exported partition's store, or ConnectRefusedError (no such subsystem here, host not allowed, bad secret). */
  admit(at: ListenAddress, subsystemNqn: string, hostNqn: string, presented: DhchapKeys): Store;
}

/** One connected controller's namespace, as the initiator sees it. */
export interface SimNamespace {
  /** Its metadata; on a networked fabric a copy that pull and push keep in step with the target. */
  readonly store: Store;
  /** Refreshes `store` from the target. */
  pull(): Promise<void>;
  /** Writes `store`'s md and fs to the target; resolves once the target has them. */
  push(): Promise<void>;
  /** Disconnects; the `lost` callback of connect is not called. */
  close(): void;
}

export interface Fabric {
  /** `target` exports at `at` from now on; InvalidArgumentError if that is someone else's address. */
  listen(target: SimTarget, at: ListenAddress): Promise<void>;
  /** `target` exports nothing at `at` any more. */
  unlisten(target: SimTarget, at: ListenAddress): void;
  /** The subsystem is gone from `target`: every controller connected to it is dropped (their `lost` runs). */
  dropSubsystem(target: SimTarget, subsystemNqn: string): Promise<void>;
  /** Connects as `hostNqn`; `lost` runs once if the target drops the controller or goes away. */
  connect(hostNqn: string, spec: ConnectSpec, lost: () => void): Promise<SimNamespace>;
}

export const listenKey = (l: ListenAddress) => `${l.address}:${l.port}`;

export function noSubsystem(subsystemNqn: string, at: ListenAddress): ConnectRefusedError {
  return new ConnectRefusedError(`no subsystem ${subsystemNqn} at ${listenKey(at)}`);
}

export function addressTaken(at: ListenAddress, why = "another node's address"): InvalidArgumentError {
  return new InvalidArgumentError(`${listenKey(at)} is ${why}`);
}

/** Connected controllers per target and subsystem NQN. */
export class Sessions<T> {
  private readonly byTarget = new Map<SimTarget, Map<string, Set<T>>>();

  of(target: SimTarget, nqn: string): Set<T> {
    const m = this.byTarget.get(target) ?? new Map<string, Set<T>>();
    this.byTarget.set(target, m);
    const s = m.get(nqn) ?? new Set<T>();
    m.set(nqn, s);
    return s;
  }

  /** Removes and returns the subsystem's sessions. */
  take(target: SimTarget, nqn: string): T[] {
    const s = this.byTarget.get(target)?.get(nqn);
    this.byTarget.get(target)?.delete(nqn);
    return s ? [...s] : [];
  }
}

/** The network between simulated hosts of one process. */
export class SimFabric implements Fabric {
  private readonly listeners = new Map<string, SimTarget>();
  private readonly sessions = new Sessions<() => void>();

  async listen(target: SimTarget, at: ListenAddress): Promise<void> {
    const other = this.listeners.get(listenKey(at));
    if (other && other !== target) throw addressTaken(at);
    this.listeners.set(listenKey(at), target);
  }

  unlisten(target: SimTarget, at: ListenAddress): void {
    if (this.listeners.get(listenKey(at)) === target) this.listeners.delete(listenKey(at));
  }

  async dropSubsystem(target: SimTarget, subsystemNqn: string): Promise<void> {
    for (const lost of this.sessions.take(target, subsystemNqn)) lost();
  }

  async connect(hostNqn: string, spec: ConnectSpec, lost: () => void): Promise<SimNamespace> {
    const target = this.listeners.get(listenKey(spec.target));
    if (!target) throw noSubsystem(spec.subsystemNqn, spec.target);
    const store = target.admit(spec.target, spec.subsystemNqn, hostNqn, spec);
    const live = this.sessions.of(target, spec.subsystemNqn);
    live.add(lost);
    // The store is shared: there is nothing to pull or push.
    return { store, pull: async () => {}, push: async () => {}, close: () => live.delete(lost) };
  }
}
