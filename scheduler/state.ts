// The extender's view of the cluster, fed by informer events and indexed so that one filter or
// prioritize call costs O(candidate nodes + pod volumes), never O(cluster):
//   pod volume -> PVC (namespace/name) -> PV (name) -> our CSI driver's volume handle
//   -> MeshStorVolume in the placement model -> replica nodes and member states;
//   MeshStorNode -> agent health (Ready condition, fresh heartbeat) and drives in the model.
// Pure: no I/O, no clock of its own (callers pass `now`), so it is unit-tested without a cluster.

import { DRIVER_NAME, type MeshStorNode, type MeshStorVolume } from '../kube/crds.ts';
import { LiveCluster, PlacementEngine, type PodVolume } from '../placement/index.ts';
import { parseBytes } from '../placement/units.ts';
import { nodeInfoFrom, volumeInfoFrom } from '../state/placement-model.ts';
import type { ExtenderFilterResult, HostPriority, WirePod } from './wire.ts';

export interface StateOptions {
  /** A MeshStorNode whose heartbeat is older than this is an unhealthy agent. */
  heartbeatStaleMs?: number;
  /** How long an in-flight reservation for a not-yet-provisioned volume lives without news. */
  reservationTtlMs?: number;
}

/**
 * What the extender keeps of a PersistentVolumeClaim. Of a bound claim (volumeName set) it keeps
 * the volume and the request only: uid, storageClassName and selectedNode are '' there.
 */
export interface PvcInfo {
  uid: string;
  volumeName: string;
  storageClassName: string;
  requestBytes: number;
  selectedNode: string;
}

interface AgentInfo {
  ready: boolean;
  reason: string;
  heartbeatMs: number;
  /** Precomputed when the MeshStorNode arrives: the filter's test per node is one comparison. */
  healthyUntilMs: number;
}

interface InFlight {
  reservationId: string;
  node: string;
  sizeBytes: number;
  expiresAt: number;
}

/** A Kubernetes quantity in bytes (placement/units.ts parseBytes); NaN when it is not one. */
export function quantityBytes(q: string | number | undefined): number {
  if (q === undefined || q === '') return Number.NaN;
  try {
    return parseBytes(q);
  } catch {
    return Number.NaN;
  }
}

export class ExtenderState {
  private readonly live = new LiveCluster();
  readonly cluster = this.live.cluster;
  readonly engine = new PlacementEngine(this.cluster);
  private readonly heartbeatStaleMs: number;
  private readonly reservationTtlMs: number;

  private readonly pvcs = new Map<string, PvcInfo>(); // namespace/name
  private readonly pvHandles = new Map<string, string>(); // PV name -> MeshStorVolume name (our driver only)
  private readonly ourClasses = new Set<string>(); // StorageClasses whose provisioner is ours
  private readonly agents = new Map<string, AgentInfo>();
  /** PVC uid -> in-flight reservation for a volume that is not provisioned yet. */
  private readonly inFlight = new Map<string, InFlight>();

  constructor(opts: StateOptions = {}) {
    this.heartbeatStaleMs = opts.heartbeatStaleMs ?? 90_000;
    this.reservationTtlMs = opts.reservationTtlMs ?? 60_000;
  }

  sizes(): Record<string, number> {
    return {
      meshstornodes: this.agents.size,
      meshstorvolumes: this.live.volumeCount,
      persistentvolumeclaims: this.pvcs.size,
      persistentvolumes: this.pvHandles.size,
      reservations: this.inFlight.size,
    };
  }

  /**
   * What a warm-up call can ask about without changing anything: up to `count` node names and one
   * claim bound to a MeshStor volume (a bound claim reserves nothing), when there is one.
   */
  warmUpSample(count: number): { nodes: string[]; claim?: { namespace: string; name: string } } {
    const nodes: string[] = [];
    for (const n of this.agents.keys()) {
      if (nodes.length >= count) break;
      nodes.push(n);
    }
    for (const [key, info] of this.pvcs) {
      if (!info.volumeName || !this.pvHandles.has(info.volumeName)) continue;
      const [namespace = 'default', name = ''] = key.split('/');
      return { nodes, claim: { namespace, name } };
    }
    return { nodes };
  }

  // ------------------------------------------------------------------ informer events --

  setStorageClass(name: string, provisioner: string | undefined): void {
    if (provisioner === DRIVER_NAME) this.ourClasses.add(name);
    else this.ourClasses.delete(name);
  }

  deleteStorageClass(name: string): void {
    this.ourClasses.delete(name);
  }

  setPv(name: string, csiDriver: string | undefined, volumeHandle: string | undefined): void {
    if (csiDriver === DRIVER_NAME && volumeHandle) {
      // MeshStor's PVs are named as their volumes: one string for the name and the handle.
      const id = this.ownVolumeName(volumeHandle);
      this.pvHandles.set(name === volumeHandle ? id : name, id);
    } else this.pvHandles.delete(name);
  }

  /**
   * The string this state already holds for a volume name, if any: a volume's name arrives in its
   * MeshStorVolume, its PV's name and handle and its PVC's volumeName, each parsed apart (issue 15
   * §3: one string per volume instead of four).
   */
  private ownVolumeName(name: string): string {
    const handle = this.pvHandles.get(name);
    if (handle === name) return handle;
    return this.live.volume(name)?.id ?? name;
  }

  deletePv(name: string): void {
    this.pvHandles.delete(name);
  }

  setPvc(namespace: string, name: string, info: PvcInfo, now: number): void {
    // A bound claim is read for its volume and request only (its uid holds no in-flight
    // reservation: binding dropped it, below), so only those are kept of it.
    this.pvcs.set(
      `${namespace}/${name}`,
      info.volumeName
        ? {
            uid: '',
            volumeName: this.ownVolumeName(info.volumeName),
            storageClassName: '',
            requestBytes: info.requestBytes,
            selectedNode: '',
          }
        : info,
    );
    const held = this.inFlight.get(info.uid);
    if (!held) return;
    if (info.volumeName) {
      this.dropInFlight(info.uid); // provisioned: the MeshStorVolume speaks for it now
    } else if (info.selectedNode && info.selectedNode !== held.node) {
      // kube-scheduler chose another node than the one we reserved on: follow its choice.
      this.dropInFlight(info.uid);
      this.reserveInFlight(info.uid, info.selectedNode, held.sizeBytes, now);
    }
  }

  deletePvc(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const info = this.pvcs.get(key);
    if (info && !info.volumeName) this.dropInFlight(info.uid);
    this.pvcs.delete(key);
  }

  setMeshStorNode(n: MeshStorNode, now: number): void {
    const name = n.metadata.name;
    const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
    const hb = n.status?.heartbeatTime ? Date.parse(n.status.heartbeatTime) : Number.NaN;
    const agent: AgentInfo = {
      ready: ready?.status === 'True',
      reason: ready
        ? `Ready=${ready.status}${ready.reason ? ` (${ready.reason}${ready.message ? `: ${ready.message}` : ''})` : ''}`
        : 'no Ready condition reported yet',
      heartbeatMs: Number.isNaN(hb) ? 0 : hb,
      healthyUntilMs: 0,
    };
    agent.healthyUntilMs = agent.ready ? agent.heartbeatMs + this.heartbeatStaleMs : Number.NEGATIVE_INFINITY;
    this.agents.set(name, agent);
    // A reload drops the reservations on the node: re-make the in-flight ones held there.
    if (!this.live.setNode(nodeInfoFrom(n, this.healthy(agent, now)))) return;
    for (const [uid, r] of [...this.inFlight]) {
      if (r.node === name) {
        this.inFlight.delete(uid);
        this.reserveInFlight(uid, name, r.sizeBytes, now, r.expiresAt);
      }
    }
  }

  deleteMeshStorNode(name: string): void {
    this.agents.delete(name);
    this.live.deleteNode(name);
    for (const [uid, r] of this.inFlight) if (r.node === name) this.inFlight.delete(uid);
  }

  setMeshStorVolume(v: MeshStorVolume): void {
    const info = volumeInfoFrom(v);
    info.id = this.ownVolumeName(info.id);
    this.live.setVolume(info);
  }

  deleteMeshStorVolume(name: string): void {
    this.live.deleteVolume(name);
  }

  private healthy(a: AgentInfo | undefined, now: number): boolean {
    return !!a && a.ready && now - a.heartbeatMs <= this.heartbeatStaleMs;
  }

  // --------------------------------------------------------------------- pod volumes --

  /**
   * The pod's MeshStor volumes: bound PVCs whose PV is ours (with the volume id), and pending
   * PVCs of one of our StorageClasses (size only, plus the PVC uid for in-flight reservations).
   */
  podVolumes(pod: WirePod): { volumes: PodVolume[]; pending: { uid: string; sizeBytes: number }[] } {
    const volumes: PodVolume[] = [];
    const pending: { uid: string; sizeBytes: number }[] = [];
    const ns = pod.metadata.namespace || 'default';
    for (const v of pod.spec?.volumes ?? []) {
      let claim: string | undefined;
      if (v.persistentVolumeClaim) claim = v.persistentVolumeClaim.claimName;
      else if (v.ephemeral) claim = `${pod.metadata.name}-${v.name}`; // generic ephemeral volume's PVC
      if (!claim) continue;
      const pvc = this.pvcs.get(`${ns}/${claim}`);
      if (!pvc) continue;
      if (pvc.volumeName) {
        const id = this.pvHandles.get(pvc.volumeName);
        if (id === undefined) continue; // not a MeshStor PV
        const known = this.live.volume(id);
        volumes.push({ volumeId: id, sizeBytes: known?.sizeBytes ?? pvc.requestBytes });
      } else if (this.ourClasses.has(pvc.storageClassName) && pvc.requestBytes > 0) {
        volumes.push({ sizeBytes: pvc.requestBytes });
        pending.push({ uid: pvc.uid, sizeBytes: pvc.requestBytes });
      }
    }
    return { volumes, pending };
  }

  // ---------------------------------------------------------------------------- verbs --

  /**
   * Removes only nodes that cannot serve MeshStor volumes at all: no MeshStorNode, agent not
   * Ready, or a stale heartbeat. Pods without MeshStor volumes pass everywhere (fast path).
   */
  filter(pod: WirePod, names: string[], now: number): ExtenderFilterResult & { NodeNames: string[] } {
    const { volumes } = this.podVolumes(pod);
    if (volumes.length === 0) {
      return { NodeNames: names, FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error: '' };
    }
    let ok: string[] | undefined; // allocated only once a node fails: all pass is the common case
    const failed: Record<string, string> = {};
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const a = this.agents.get(name);
      if (a !== undefined && now <= a.healthyUntilMs) {
        ok?.push(name);
        continue;
      }
      ok ??= names.slice(0, i);
      if (!a)
        failed[name] =
          'MeshStor: no agent on this node (no MeshStorNode), its volumes cannot be attached here';
      else if (!a.ready) failed[name] = `MeshStor: the node's agent is not ready: ${a.reason}`;
      else {
        // Ready but its heartbeat is stale. One text for all such nodes: kube-scheduler groups the
        // reasons of its event by exact text.
        failed[name] =
          `MeshStor: the node's agent stopped reporting (no heartbeat for over ${this.heartbeatStaleMs / 1000} s)`;
      }
    }
    // Preemption cannot bring an agent back, so these failures are unresolvable.
    return { NodeNames: ok ?? names, FailedNodes: {}, FailedAndUnresolvableNodes: failed, Error: '' };
  }

  /**
   * Scores via placement.scoreNodes (0..10). For volumes not provisioned yet, holds an in-flight
   * reservation on the best node, so pods created together see that room taken and do not all
   * pick the same node; it follows the node kube-scheduler records on the PVC, and ends when the
   * PVC binds, is deleted, or after the TTL.
   */
  prioritize(pod: WirePod, names: string[], now: number): HostPriority[] {
    const { volumes, pending } = this.podVolumes(pod);
    if (volumes.length === 0) return names.map((Host) => ({ Host, Score: 0 }));
    this.expire(now);
    // Score with this pod's own reservations given back, so it is not penalised by itself.
    const mine: [string, InFlight][] = [];
    for (const p of pending) {
      const r = this.inFlight.get(p.uid);
      if (r) mine.push([p.uid, r]);
    }
    for (const [, r] of mine) this.cluster.release(r.reservationId);
    const scores = this.engine.scoreNodes(volumes, names);
    for (const [uid, r] of mine) {
      this.inFlight.delete(uid);
      this.reserveInFlight(uid, r.node, r.sizeBytes, now, r.expiresAt);
    }
    if (pending.length > 0) {
      let best: { node: string; score: number } | undefined;
      for (const s of scores) if (!best || s.score > best.score) best = s;
      if (best) {
        for (const p of pending) {
          const held = this.inFlight.get(p.uid);
          if (held?.node === best.node) held.expiresAt = now + this.reservationTtlMs;
          else {
            if (held) this.dropInFlight(p.uid);
            this.reserveInFlight(p.uid, best.node, p.sizeBytes, now);
          }
        }
      }
    }
    return scores.map((s) => ({ Host: s.node, Score: s.score }));
  }

  // --------------------------------------------------------------------- reservations --

  private reserveInFlight(
    uid: string,
    node: string,
    sizeBytes: number,
    now: number,
    expiresAt?: number,
  ): void {
    const res = this.engine.allocate({
      volumeId: `inflight/${uid}`,
      sizeBytes,
      replicaCount: 1,
      spread: { domain: 'zone', mode: 'none' },
      segment: { node },
      expiresAt: expiresAt ?? now + this.reservationTtlMs,
    });
    // No room on that node: nothing to hold (the pod will relocate data or get a remote replica).
    if (!res.ok) return;
    this.inFlight.set(uid, {
      reservationId: res.reservation.id,
      node,
      sizeBytes,
      expiresAt: expiresAt ?? now + this.reservationTtlMs,
    });
  }

  private dropInFlight(uid: string): void {
    const r = this.inFlight.get(uid);
    if (!r) return;
    this.cluster.release(r.reservationId);
    this.inFlight.delete(uid);
  }

  /** Drops reservations past their TTL. O(reservations), which are few (pods being scheduled). */
  expire(now: number): void {
    for (const [uid, r] of this.inFlight) if (r.expiresAt <= now) this.dropInFlight(uid);
  }

  reservations(): { pvcUid: string; node: string; sizeBytes: number }[] {
    return [...this.inFlight].map(([pvcUid, r]) => ({ pvcUid, node: r.node, sizeBytes: r.sizeBytes }));
  }
}
