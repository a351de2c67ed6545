// Replays a timeline against one placement policy and measures what users would feel: how full
// the cluster got before an allocation failed, how many pods run next to an in-sync replica, and
// how many bytes relocation, drain and rebuild had to move.
import { PlacementEngine } from '../placement/engine.ts';
import type { NodeInfo } from '../placement/model.ts';
import type { PlacementPolicy } from '../placement/policies.ts';
import { Rng } from '../placement/rng.ts';
import { makeNode } from './cluster-gen.ts';
import type { Scenario } from './scenario.ts';
import type { Step } from './timeline.ts';

export interface Pod {
  id: string;
  group: number;
  volumeId: string;
  node: string;
}

export interface SeriesPoint {
  t: number;
  fill: number;
  locality: number;
}

export interface PolicyMetrics {
  policy: string;
  /** Share of raw capacity allocated when the first allocation failed; null when none failed. */
  fillAtFirstFailure: number | null;
  failedAllocations: number;
  allocations: number;
  unschedulablePods: number;
  /** Share of pods on a node holding an in-sync replica of their volume, at the end. */
  locality: number;
  /** Lowest sampled locality after the first scenario event. */
  minLocality: number;
  relocationBytes: number;
  drainBytes: number;
  rebuildBytes: number;
  relocationsFailed: number;
  volumesLost: number;
  /** Volumes left with fewer in-sync members than asked for at the end. */
  volumesDegraded: number;
  finalFill: number;
  /** Standard deviation of per-drive fill (share of each drive's capacity allocated). */
  fillStddev: number;
  /** Mean over drives with free space of largest free extent / free bytes (1 = one hole). */
  freeContiguity: number;
  slotsUsedShare: number;
  maxSlotsUsed: number;
  events: number;
}

export interface PolicyRun {
  metrics: PolicyMetrics;
  series: SeriesPoint[];
}

export function simulatePolicy(
  s: Scenario,
  nodes: NodeInfo[],
  timeline: readonly Step[],
  policy: PlacementPolicy,
  onStep?: () => void,
): PolicyRun {
  const engine = new PlacementEngine(
    { nodes: structuredClone(nodes), volumes: [] },
    { policy, seed: s.seed },
  );
  const c = engine.cluster;
  const rng = new Rng(s.seed ^ 0x5c4ed);
  const pods = new Map<string, Pod>();
  const groups = new Map<number, string[]>();
  const m: PolicyMetrics = {
    policy: policy.name,
    fillAtFirstFailure: null,
    failedAllocations: 0,
    allocations: 0,
    unschedulablePods: 0,
    locality: 0,
    minLocality: 1,
    relocationBytes: 0,
    drainBytes: 0,
    rebuildBytes: 0,
    relocationsFailed: 0,
    volumesLost: 0,
    volumesDegraded: 0,
    finalFill: 0,
    fillStddev: 0,
    freeContiguity: 0,
    slotsUsedShare: 0,
    maxSlotsUsed: 0,
    events: 0,
  };
  const series: SeriesPoint[] = [];
  let eventsSeen = false;
  const spread = { domain: 'zone' as const, mode: s.workload.spread };

  /** MeshStor's bytes (replicas, reservations, orphans) over the space not used by the OS. */
  const fill = (): number => {
    let raw = 0;
    let used = 0;
    for (const n of c.nodes) {
      raw += n.capacityBytes - n.foreignBytes;
      used += n.capacityBytes - n.freeBytes - n.foreignBytes;
    }
    return raw > 0 ? used / raw : 0;
  };

  const isLocal = (p: Pod): boolean => {
    const v = c.volumes.get(p.volumeId);
    if (!v) return false;
    for (const r of v.replicas) if (r.node === p.node && r.state === 'InSync') return true;
    return false;
  };

  const locality = (): number => {
    if (pods.size === 0) return 1;
    let local = 0;
    for (const p of pods.values()) if (isLocal(p)) local++;
    return local / pods.size;
  };

  /** kube-scheduler with our extender: highest extender score, other scorers as a random tie-break. */
  const schedule = (
    group: number,
    volume: { volumeId?: string; sizeBytes: number },
    self?: string,
  ): string | undefined => {
    const taken = new Set(
      (groups.get(group) ?? []).filter((id) => id !== self).map((id) => pods.get(id)?.node),
    );
    const candidates = c.nodes
      .filter((n) => n.schedulable && n.agentHealthy && !taken.has(n.name))
      .map((n) => n.name);
    if (candidates.length === 0) return undefined;
    const scores = engine.scoreNodes([volume], candidates);
    const top = Math.max(...scores.map((x) => x.score));
    return rng.pick(scores.filter((x) => x.score === top)).node;
  };

  const attach = (p: Pod, node: string) => {
    p.node = node;
    const v = c.volumes.get(p.volumeId);
    if (v) v.attachedNode = node;
  };

  /** The data follows the pod: relocate a member onto its node when it has none. */
  const settle = (p: Pod) => {
    if (isLocal(p)) return;
    const plan = engine.planRelocation(p.volumeId, p.node, { reserve: true });
    if (!plan.ok) {
      m.relocationsFailed++;
      return;
    }
    if (plan.noop) return;
    engine.applyMove(plan.plan);
    m.relocationBytes += plan.plan.bytes;
  };

  const dropPod = (p: Pod) => {
    pods.delete(p.id);
    const g = groups.get(p.group);
    if (g)
      groups.set(
        p.group,
        g.filter((x) => x !== p.id),
      );
  };

  const arrive = (step: Extract<Step, { kind: 'arrival' }>) => {
    const ids: string[] = [];
    groups.set(step.group, ids);
    const groupSize = s.workload.groupSize;
    for (let i = 0; i < groupSize; i++) {
      const id = `g${step.group}-${i}`;
      const req = { volumeId: id, sizeBytes: step.sizeBytes, replicaCount: step.replicaCount, spread };
      let node: string | undefined;
      if (s.workload.binding === 'WaitForFirstConsumer') {
        node = schedule(step.group, { sizeBytes: step.sizeBytes });
        if (!node) {
          m.unschedulablePods++;
          continue;
        }
      }
      m.allocations++;
      const r = engine.allocate({ ...req, preferredNode: node });
      if (!r.ok) {
        m.failedAllocations++;
        if (m.fillAtFirstFailure === null) m.fillAtFirstFailure = fill();
        continue;
      }
      engine.commit(req, 'InSync');
      if (!node) {
        node = schedule(step.group, { volumeId: id, sizeBytes: step.sizeBytes });
        if (!node) {
          m.unschedulablePods++;
          c.deleteVolume(id);
          continue;
        }
      }
      const pod: Pod = { id, group: step.group, volumeId: id, node };
      pods.set(id, pod);
      ids.push(id);
      attach(pod, node);
      settle(pod);
    }
  };

  const remove = (group: number) => {
    for (const id of groups.get(group) ?? []) {
      const p = pods.get(id);
      if (!p) continue;
      if (c.volumes.has(p.volumeId)) c.deleteVolume(p.volumeId);
      pods.delete(id);
    }
    groups.delete(group);
  };

  const reschedule = (p: Pod) => {
    const v = c.volumes.get(p.volumeId);
    const node = schedule(p.group, { volumeId: p.volumeId, sizeBytes: v?.sizeBytes ?? 0 }, p.id);
    if (!node) {
      m.unschedulablePods++;
      return false;
    }
    attach(p, node);
    return true;
  };

  const drain = (nodeName: string) => {
    const n = c.node(nodeName);
    if (!n) return;
    n.schedulable = false;
    const moved = [...pods.values()].filter((p) => p.node === nodeName);
    for (const p of moved) reschedule(p);
    const plan = engine.planDrain(nodeName, { reserve: true });
    for (const mv of plan.moves) {
      engine.applyMove(mv);
      m.drainBytes += mv.bytes;
    }
    for (const p of moved) settle(p);
  };

  const lose = (nodeName: string) => {
    if (!c.node(nodeName)) return;
    const moved = [...pods.values()].filter((p) => p.node === nodeName);
    c.removeNode(nodeName);
    for (const p of moved) reschedule(p);
    for (const v of [...c.volumes.values()]) {
      if (!v.replicas.some((r) => r.node === nodeName)) continue;
      const plan = engine.planRebuild(v.id, nodeName, { reserve: true });
      if (plan.ok && !plan.noop) {
        engine.applyMove(plan.plan);
        m.rebuildBytes += plan.plan.bytes;
      } else if (!plan.ok && plan.code === 'unsafe') {
        m.volumesLost++;
        c.deleteVolume(v.id);
        const p = pods.get(v.id);
        if (p) dropPod(p);
      }
    }
    for (const p of moved) if (pods.has(p.id)) settle(p);
  };

  const added = new Map<string, number>();
  for (const step of timeline) {
    m.events++;
    onStep?.();
    switch (step.kind) {
      case 'arrival':
        arrive(step);
        break;
      case 'delete':
        remove(step.group);
        break;
      case 'uncordon': {
        const n = c.node(step.node);
        if (n) n.schedulable = true;
        break;
      }
      case 'sample': {
        const loc = locality();
        series.push({ t: step.t, fill: fill(), locality: loc });
        if (eventsSeen) m.minLocality = Math.min(m.minLocality, loc);
        break;
      }
      case 'event': {
        eventsSeen = true;
        const e = step.event;
        if (e.type === 'drain') drain(e.node);
        else if (e.type === 'nodeLoss') lose(e.node);
        else if (e.type === 'nodeAdded') {
          const t = s.cluster.nodeTypes.find((x) => x.name === e.nodeType);
          if (!t) throw new Error(`internal: node type ${e.nodeType} vanished after validation`);
          const k = (added.get(e.zone) ?? 0) + 1;
          added.set(e.zone, k);
          c.addNode(makeNode(`${e.zone}-new${k}`, e.zone, '0', t, s.cluster.gptSlots));
        } else if (e.type === 'evictionStorm') {
          const all = [...pods.values()];
          const count = Math.round(all.length * e.fraction);
          for (let i = 0; i < count && all.length > 0; i++) {
            const p = all.splice(rng.int(all.length), 1)[0] as Pod;
            const taken = new Set(
              (groups.get(p.group) ?? []).filter((x) => x !== p.id).map((x) => pods.get(x)?.node),
            );
            const options = c.nodes.filter((n) => n.schedulable && n.agentHealthy && !taken.has(n.name));
            if (options.length === 0) continue;
            attach(p, rng.pick(options).name);
          }
          for (const p of pods.values()) settle(p);
        }
        break;
      }
    }
  }

  m.locality = locality();
  m.finalFill = fill();
  for (const v of c.volumes.values()) {
    if (v.replicas.filter((r) => r.state === 'InSync').length < v.replicaCount) m.volumesDegraded++;
  }
  const fills: number[] = [];
  let contiguity = 0;
  let withFree = 0;
  let slotsUsed = 0;
  let slots = 0;
  for (const n of c.nodes) {
    for (const d of n.drives) {
      let mine = 0;
      let foreign = 0;
      for (const t of d.extents) {
        if (t.claim.kind === 'foreign') foreign += t.end - t.start;
        else mine += t.end - t.start;
      }
      const cap = d.capacityBytes - foreign;
      if (cap > 0) fills.push(mine / cap);
      if (d.freeBytes > 0) {
        contiguity += d.largestFree / d.freeBytes;
        withFree++;
      }
      slotsUsed += d.slotsUsed;
      slots += d.gptSlots;
      m.maxSlotsUsed = Math.max(m.maxSlotsUsed, d.slotsUsed);
    }
  }
  const mean = fills.reduce((a, b) => a + b, 0) / Math.max(1, fills.length);
  m.fillStddev = Math.sqrt(fills.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, fills.length));
  m.freeContiguity = withFree > 0 ? contiguity / withFree : 1;
  m.slotsUsedShare = slots > 0 ? slotsUsed / slots : 0;
  return { metrics: m, series };
}
