// A ClusterState kept current one object at a time, for callers fed by watch events (the
// scheduler extender, the CSI controller): a node or volume update costs O(that object), never a
// rebuild of the whole model.
import { ClusterState } from './cluster.ts';
import type { NodeInfo, VolumeInfo } from './model.ts';

/** Past this many entries the drift list is dropped: a live model is never rebuilt, so it would only grow. */
const MAX_DRIFT = 1000;

export class LiveCluster {
  readonly cluster = new ClusterState();
  /** What the model took from each node besides its health; a change reloads the node. */
  private readonly nodeKeys = new Map<string, string>();
  private readonly volumes = new Map<string, VolumeInfo>();
  /** node -> volumes with a replica there (to re-claim their extents after the node is reloaded). */
  private readonly volumesByNode = new Map<string, Set<string>>();

  get volumeCount(): number {
    return this.volumes.size;
  }

  volume(id: string): VolumeInfo | undefined {
    return this.volumes.get(id);
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
    if (existing) this.cluster.removeNode(info.name);
    this.cluster.addNode(info);
    this.reloadVolumesOn(info.name);
    this.trimDrift();
    return true;
  }

  deleteNode(name: string): void {
    this.nodeKeys.delete(name);
    if (!this.cluster.node(name)) return;
    this.cluster.removeNode(name);
    this.reloadVolumesOn(name);
  }

  setVolume(info: VolumeInfo): void {
    const old = this.volumes.get(info.id);
    if (old) for (const r of old.replicas) this.volumesByNode.get(r.node)?.delete(info.id);
    for (const r of info.replicas) {
      let s = this.volumesByNode.get(r.node);
      if (!s) {
        s = new Set();
        this.volumesByNode.set(r.node, s);
      }
      s.add(info.id);
    }
    this.volumes.set(info.id, info);
    if (this.cluster.volumes.has(info.id)) this.cluster.deleteVolume(info.id);
    this.cluster.loadVolume(info);
    this.trimDrift();
  }

  deleteVolume(id: string): void {
    const old = this.volumes.get(id);
    if (old) for (const r of old.replicas) this.volumesByNode.get(r.node)?.delete(id);
    this.volumes.delete(id);
    if (this.cluster.volumes.has(id)) this.cluster.deleteVolume(id);
  }

  private reloadVolumesOn(node: string): void {
    for (const id of this.volumesByNode.get(node) ?? []) {
      const info = this.volumes.get(id);
      if (!info) continue;
      if (this.cluster.volumes.has(id)) this.cluster.deleteVolume(id);
      this.cluster.loadVolume(info);
    }
  }

  private trimDrift(): void {
    if (this.cluster.drift.length > MAX_DRIFT) this.cluster.drift.splice(0, this.cluster.drift.length);
  }
}
