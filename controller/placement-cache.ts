// The CSI controller's placement inputs kept in memory: MeshStorNodes and MeshStorVolumes as the
// informers deliver them, applied one object at a time to a live placement model, so CreateVolume
// and GetCapacity cost a decision, not a list of the cluster. Pure: no I/O and no clock of its own
// (the informer wiring is in kube-store.ts; callers pass `now`).
//
// The cache may lag the apiserver. That is safe because it never decides alone: the controller
// claims each decision's extents in the nodes' allocation ledgers under their resourceVersion
// before it writes the record (allocator.ts, docs/adr/0004-allocation-ledger.md). A stale cache
// can only make a claim fail and the controller retry. To keep even that rare, the controller's own
// records stay reserved here ("overlays") from the decision until the informer delivers them.

import type { MeshStorNode, MeshStorVolume } from '../kube/crds.ts';
import { LiveCluster, PlacementEngine, type PlacementPolicy, type Reservation } from '../placement/index.ts';
import { agentReady, nodeInfoFrom, volumeInfoFrom } from '../state/placement-model.ts';
import { AllocatorRefusal } from './errors.ts';

export interface PlacementCacheOptions {
  policy?: PlacementPolicy | undefined;
  seed?: number | undefined;
  /**
   * How long this controller's own record stays reserved when the informer never delivers it
   * (it was deleted again before the watch saw it). Normally the informer delivers it in
   * milliseconds and the overlay ends then.
   */
  overlayTtlMs?: number;
}

interface Overlay {
  reservation: Reservation;
  expiresAt: number;
}

export class PlacementCache {
  private readonly live = new LiveCluster();
  readonly engine: PlacementEngine;
  private readonly overlayTtlMs: number;
  /** volume id -> its record as this controller wrote it, until the informer delivers it. */
  private readonly overlays = new Map<string, Overlay>();
  private isSynced = false;
  private resolveSynced: () => void = () => {};
  /** Resolves once the first lists of nodes and volumes have been applied. */
  readonly whenSynced = new Promise<void>((r) => {
    this.resolveSynced = r;
  });

  constructor(opts: PlacementCacheOptions = {}) {
    this.engine = new PlacementEngine(this.live.cluster, { policy: opts.policy, seed: opts.seed });
    this.overlayTtlMs = opts.overlayTtlMs ?? 120_000;
  }

  synced(): boolean {
    return this.isSynced;
  }

  markSynced(): void {
    this.isSynced = true;
    this.resolveSynced();
  }

  /**
   * Waits up to `ms` for the first lists, then answers UNAVAILABLE: a decision on a half-loaded
   * model could see free space that is taken (only a retry, but a pointless one) or report less
   * capacity than there is. The callers (external-provisioner) retry UNAVAILABLE with backoff.
   */
  async ensureSynced(ms: number): Promise<void> {
    if (this.isSynced) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    });
    await Promise.race([this.whenSynced, timeout]);
    clearTimeout(timer);
    if (!this.isSynced) {
      throw new AllocatorRefusal(
        'unavailable',
        'the controller is still loading MeshStorNodes and MeshStorVolumes; retry',
      );
    }
  }

  sizes(): { nodes: number; volumes: number; overlays: number } {
    return {
      nodes: this.live.cluster.nodes.length,
      volumes: this.live.volumeCount,
      overlays: this.overlays.size,
    };
  }

  // ------------------------------------------------------------------ informer events --

  setNode(n: MeshStorNode): void {
    if (!this.live.setNode(nodeInfoFrom(n, agentReady(n)))) return;
    // The reload dropped every reservation touching the node: hold our own records again.
    for (const [id, o] of this.overlays) {
      if (!o.reservation.replicas.some((r) => r.node === n.metadata.name)) continue;
      this.holdAgain(id, o);
    }
  }

  deleteNode(name: string): void {
    this.live.deleteNode(name);
  }

  setVolume(v: MeshStorVolume): void {
    this.drop(v.metadata.name); // the record itself speaks for its extents from now on
    this.live.setVolume(volumeInfoFrom(v));
  }

  deleteVolume(name: string): void {
    this.drop(name);
    this.live.deleteVolume(name);
  }

  // ------------------------------------------------------------ the controller's writes --

  /** The reservation id a decision for this volume is made under (never the id of a loaded volume). */
  static reservationId(volumeId: string): string {
    return `new/${volumeId}`;
  }

  /**
   * Before a decision for this volume: its earlier decision (a record taken back) no longer
   * holds anything, and overlays the informer never confirmed are dropped after their TTL.
   */
  prepare(volumeId: string, now: number): void {
    this.drop(volumeId);
    for (const [id, o] of this.overlays) if (o.expiresAt <= now) this.drop(id);
  }

  /** The decision's reservation stays as an overlay: its record is being written. */
  hold(volumeId: string, reservation: Reservation, now: number): void {
    this.overlays.set(volumeId, { reservation, expiresAt: now + this.overlayTtlMs });
  }

  /** Stops holding this controller's record (not written, taken back, or delivered). */
  drop(volumeId: string): void {
    const o = this.overlays.get(volumeId);
    if (!o) return;
    this.overlays.delete(volumeId);
    this.live.cluster.release(o.reservation.id);
  }

  private holdAgain(volumeId: string, o: Overlay): void {
    if (this.live.cluster.reservations.has(o.reservation.id)) return;
    try {
      this.live.cluster.reserve(o.reservation);
    } catch {
      // The node lost that drive or the bytes are reported taken now: nothing left to hold, and
      // the ledger decides whether the record stands.
      this.overlays.delete(volumeId);
    }
  }
}
