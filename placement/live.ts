// A ClusterState kept current one object at a time, for callers fed by watch events (the
// scheduler extender, the CSI controller): a node or volume update costs O(that object), never a
// rebuild of the whole model.
//
// Memory (issue 15 §3): each volume is held once, as the ClusterState's VolumeState; a reload
// (a node that changed or went) takes its copies of only the few volumes on that node, before
// removeNode marks their members Faulty, and loads them back as their records said.
import { ClusterState, type VolumeState } from './cluster.ts';
import type { NodeInfo, VolumeInfo } from './model.ts';

/** Past this many entries the drift list is dropped: a live model is never rebuilt, so it would only grow. */
const MAX_DRIFT = 1000;

export class LiveCluster {
  readonly cluster = new ClusterState();
  /** What the model took from each node besides its health; a change reloads the node. */
  private readonly nodeKeys = new Map<string, string>();
  /** node -> volumes with a replica there (to re-claim their extents after the node is reloaded). */
  private readonly volumesByNode = new Map<string, Set<string>>();

  get volumeCount(): number {
    return this.cluster.volumes.size;
  }

  volume(id: string): VolumeInfo | undefined {
    return this.cluster.volumes.get(id);
  }

  /**
   * Adds or updates a node. A health-only change is applied in place; a change of drives,
   * partitions or topology reloads the node, which drops the reservations on it, and returns true.
   */
  setNode(info: NodeInfo): boolean {
    const key = JSON.stringify([info.labels, info.schedulable, info.drives]);
    const existing = this.cluster.node(info.name);
    if (existing && this.nodeKeys.get(info.name) === key) {
      existing.agentHealthy = info.agentHealthy;
      return false;
    }
    this.nodeKeys.set(info.name, key);
    const on = this.takeVolumesOn(info.name);
    try {
      if (existing) this.cluster.removeNode(info.name);
      this.cluster.addNode(info);
    } finally {
      // Also when the node is refused (a drive id twice, a drive of size 0): its volumes stay.
      this.loadAgain(on);
      this.trimDrift();
    }
    return true;
  }

  deleteNode(name: string): void {
    this.nodeKeys.delete(name);
    if (!this.cluster.node(name)) return;
    const on = this.takeVolumesOn(name);
    this.cluster.removeNode(name);
    this.loadAgain(on);
  }

  setVolume(info: VolumeInfo): void {
    const old = this.cluster.volumes.get(info.id);
    if (old) for (const r of old.replicas) this.volumesByNode.get(r.node)?.delete(info.id);
    for (const r of info.replicas) {
      let s = this.volumesByNode.get(r.node);
      if (!s) {
        s = new Set();
        this.volumesByNode.set(r.node, s);
      }
      s.add(info.id);
    }
    if (old) this.cluster.deleteVolume(info.id);
    this.cluster.loadVolume(info);
    this.trimDrift();
  }

  deleteVolume(id: string): void {
    const old = this.cluster.volumes.get(id);
    if (!old) return;
    for (const r of old.replicas) this.volumesByNode.get(r.node)?.delete(id);
    this.cluster.deleteVolume(id);
  }

  /**
   * Copies of the volumes with a replica on `node` as they are now (their records: removeNode,
   * which marks those members Faulty, has not run yet), taken out of the model.
   */
  private takeVolumesOn(node: string): VolumeInfo[] {
    const out: VolumeInfo[] = [];
    for (const id of this.volumesByNode.get(node) ?? []) {
      const v = this.cluster.volumes.get(id);
      if (!v) continue;
      out.push(copyOf(v));
      this.cluster.deleteVolume(id);
    }
    return out;
  }

  private loadAgain(volumes: readonly VolumeInfo[]): void {
    for (const v of volumes) this.cluster.loadVolume(v);
  }

  private trimDrift(): void {
    if (this.cluster.drift.length > MAX_DRIFT) this.cluster.drift.splice(0, this.cluster.drift.length);
  }
}

/** A VolumeState's record (without the model's bookkeeping), as loadVolume takes it. */
function copyOf(v: VolumeState): VolumeInfo {
  return {
    id: v.id,
    sizeBytes: v.sizeBytes,
    replicaCount: v.replicaCount,
    spread: v.spread,
    replicas: v.replicas.map((r) => ({ ...r, extent: { ...r.extent } })),
    attachedNode: v.attachedNode,
  };
}
