// Replays a timeline against one placement policy, in simulated time, and measures what users
// would feel: how full the cluster got before an allocation failed, how long pods ran away from
// their data, and how long and how many bytes relocation, drain and rebuild took. Syncs take
// bytes / bandwidth, a node runs a bounded number at once, and a volume stays remote (and a lost
// node's volumes degraded) until the sync that fixes it ends.
import type { VolumeState } from '../placement/cluster.ts';
import { type MovePlan, PlacementEngine } from '../placement/engine.ts';
import { rebuildReserve } from '../placement/headroom.ts';
import type { NodeInfo } from '../placement/model.ts';
import { relocationDelayHours, type SyncKind } from '../placement/moves.ts';
import type { PlacementPolicy } from '../placement/policies.ts';
import { Rng } from '../placement/rng.ts';
import { nodesToScore } from '../placement/select.ts';
import { makeNode } from './cluster-gen.ts';
import { TimeHeap } from './heap.ts';
import { finalStats, type PlacementRow, placementRows } from './measure.ts';
import type { Scenario } from './scenario.ts';
import { type Sync, SyncQueue } from './syncs.ts';
import type { Step } from './timeline.ts';

export interface Pod {
  id: string;
  group: number;
  volumeId: string;
  node: string;
  /** Bumped on every move, so a relocation check scheduled for an earlier stay is ignored. */
  epoch: number;
  /** Whether an in-sync member of its volume is on its node (kept current, counted in localPods). */
  local: boolean;
}

export interface SeriesPoint {
  t: number;
  fill: number;
  locality: number;
  /** Syncs running or waiting. */
  syncs: number;
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
  /** Bytes resynced by members whose node came back under its own name (instead of a rebuild). */
  catchUpBytes: number;
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
  /** Usable bytes of the volumes whose allocation failed. */
  failedBytes: number;
  /** Share of GPT entries in use when the first allocation failed; null when none failed. */
  slotsAtFirstFailure: number | null;
  /** Share of pod-hours a pod ran next to an in-sync replica of its volume. */
  timeLocality: number;
  /** Pod-hours run with the volume only over the network. */
  remotePodHours: number;
  /** Bytes copied by relocation, drain, rebuild and catch-up per volume allocated. */
  bytesMovedPerVolume: number;
  /** Mean and worst hours from a scenario event until the last sync it caused ended. */
  meanSettleHours: number;
  maxSettleHours: number;
  /** Most syncs running into one node at once; most running or waiting in the cluster. */
  peakSyncsPerNode: number;
  peakSyncsQueued: number;
  /** Syncs (and their bytes) still running or waiting at the end. */
  syncsUnfinished: number;
  /** First sampled hour when a loss of the fullest node could not be rebuilt bytes-wise. */
  reserveEatenAtHour: number | null;
  /** Hours (at sample resolution) the rebuild reserve was eaten. */
  reserveEatenHours: number;
  /** Timed events (sync ends, relocation checks) processed besides the timeline's steps. */
  timedEvents: number;
}

export interface EventSettle {
  /** Index in the scenario's events. */
  index: number;
  t: number;
  /** Hours until the last sync the event caused ended; null when some never ended. */
  hours: number | null;
}

export interface PolicyRun {
  metrics: PolicyMetrics;
  series: SeriesPoint[];
  settle: EventSettle[];
  placements: PlacementRow[];
  /** Wall-clock milliseconds the replay took (never written to the outputs: not deterministic). */
  wallMs: number;
}

type Timed =
  | { t: number; seq: number; kind: 'sync-done'; sync: Sync }
  | { t: number; seq: number; kind: 'relocate'; pod: string; epoch: number; cause: number };

export function simulatePolicy(
  s: Scenario,
  nodes: NodeInfo[],
  timeline: readonly Step[],
  policy: PlacementPolicy,
  onStep?: () => void,
): PolicyRun {
  const wall0 = performance.now();
  const engine = new PlacementEngine(
    { nodes: structuredClone(nodes), volumes: [] },
    { policy, seed: s.seed },
  );
  const c = engine.cluster;
  const rng = new Rng(s.seed ^ 0x5c4ed);
  const pods = new Map<string, Pod>();
  const groups = new Map<number, string[]>();
  const m = emptyMetrics(policy.name);
  const series: SeriesPoint[] = [];
  let eventsSeen = false;
  const spread = { domain: 'zone' as const, mode: s.workload.spread };

  // ---- time --------------------------------------------------------------------------------
  let now = 0;
  let seq = 0;
  let localPods = 0;
  let podHours = 0;
  let localPodHours = 0;
  const heap = new TimeHeap<Timed>();
  const perSyncBytesPerSecond = Math.min(
    s.sync.perSyncCap,
    Math.min(s.sync.driveBandwidth, s.sync.networkBandwidth) / s.sync.concurrentPerNode,
  );
  const syncs = new SyncQueue(
    s.sync.concurrentPerNode,
    () => perSyncBytesPerSecond * 3600,
    (sy) => heap.push({ t: sy.endsAt as number, seq: seq++, kind: 'sync-done', sync: sy }),
  );
  /** Syncs of each volume that have not ended. */
  const inflight = new Map<string, Set<Sync>>();
  /** Per scenario event: syncs it caused still open, and when the last one ended. */
  const causeOpen = new Map<number, number>();
  const causeDone = new Map<number, number>();
  /** Nodes being drained, with the volumes whose move off them waits for another sync to end. */
  const draining = new Map<string, Set<string>>();

  const advance = (t: number) => {
    const dt = t - now;
    if (dt > 0) {
      podHours += pods.size * dt;
      localPodHours += localPods * dt;
      now = t;
    }
  };

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

  const refreshPod = (p: Pod) => {
    const local = isLocal(p);
    if (local !== p.local) localPods += local ? 1 : -1;
    p.local = local;
  };

  const locality = (): number => (pods.size === 0 ? 1 : localPods / pods.size);

  let scanStart = 0;
  /** kube-scheduler with our extender: highest extender score, other scorers as a random tie-break. */
  const schedule = (
    group: number,
    volume: { volumeId?: string; sizeBytes: number },
    self?: string,
  ): string | undefined => {
    const taken = new Set(
      (groups.get(group) ?? []).filter((id) => id !== self).map((id) => pods.get(id)?.node),
    );
    const feasible = c.nodes
      .filter((n) => n.schedulable && n.agentHealthy && !taken.has(n.name))
      .map((n) => n.name);
    if (feasible.length === 0) return undefined;
    // kube-scheduler scores only percentageOfNodesToScore of the feasible nodes, from where the
    // previous cycle stopped.
    const window = nodesToScore(feasible.length);
    const from = scanStart % feasible.length;
    const candidates =
      window >= feasible.length
        ? feasible
        : [
            ...feasible.slice(from, from + window),
            ...feasible.slice(0, Math.max(0, from + window - feasible.length)),
          ];
    scanStart = from + window;
    const scores = engine.scoreNodes([volume], candidates, { rankRoom: s.workload.extenderRanksRoom });
    let top = Number.NEGATIVE_INFINITY;
    for (const x of scores) if (x.score > top) top = x.score;
    return rng.pick(scores.filter((x) => x.score === top)).node;
  };

  // ---- syncs ---------------------------------------------------------------------------------
  const startMove = (kind: SyncKind, plan: MovePlan, cause: number) => {
    if (!plan.to) {
      // Nothing to copy: only a surplus member leaves.
      if (plan.from) c.removeReplica(plan.volumeId, plan.from.replicaId);
      return;
    }
    c.commitReplica(plan.reservationId ?? `${plan.volumeId}/${plan.to.replicaId}`, 'Syncing');
    queueSync(kind, plan.volumeId, plan.to.node, plan.bytes, plan.to.replicaId, plan.from?.replicaId, cause);
  };

  /** A sync into `toReplica` (already Syncing), queued on its node and counted for its cause. */
  const queueSync = (
    kind: SyncKind,
    volumeId: string,
    target: string,
    bytes: number,
    toReplica: string,
    fromReplica: string | undefined,
    cause: number,
  ) => {
    const sy: Sync = {
      seq: seq++,
      kind,
      volumeId,
      target,
      bytes,
      toReplica,
      fromReplica,
      cause,
      queuedAt: now,
      cancelled: false,
    };
    const set = inflight.get(volumeId) ?? new Set();
    set.add(sy);
    inflight.set(volumeId, set);
    if (cause >= 0) causeOpen.set(cause, (causeOpen.get(cause) ?? 0) + 1);
    syncs.enqueue(sy, now);
  };

  const closeSync = (sy: Sync) => {
    const set = inflight.get(sy.volumeId);
    set?.delete(sy);
    if (set && set.size === 0) inflight.delete(sy.volumeId);
    if (sy.cause >= 0) {
      causeOpen.set(sy.cause, (causeOpen.get(sy.cause) ?? 1) - 1);
      causeDone.set(sy.cause, now);
    }
    syncs.finish(sy, now);
  };

  const cancelSync = (sy: Sync) => {
    if (sy.cancelled) return;
    sy.cancelled = true;
    closeSync(sy);
  };

  const syncDone = (sy: Sync) => {
    if (sy.cancelled) return;
    closeSync(sy);
    const v = c.volumes.get(sy.volumeId);
    const to = v?.replicas.find((r) => r.id === sy.toReplica);
    if (!v || !to || to.state !== 'Syncing') return;
    c.setReplicaState(v.id, to.id, 'InSync');
    const from = sy.fromReplica ? v.replicas.find((r) => r.id === sy.fromReplica) : undefined;
    if (from) c.removeReplica(v.id, from.id);
    if (sy.kind === 'relocation') m.relocationBytes += sy.bytes;
    else if (sy.kind === 'drain') m.drainBytes += sy.bytes;
    else if (sy.kind === 'catch-up') m.catchUpBytes += sy.bytes;
    else m.rebuildBytes += sy.bytes;
    const p = pods.get(v.id);
    if (p) settle(p, sy.cause);
    for (const [node, waiting] of draining) {
      if (waiting.delete(v.id)) moveOff(v, node, sy.cause);
    }
  };

  const cancelVolumeSyncs = (volumeId: string) => {
    for (const sy of [...(inflight.get(volumeId) ?? [])]) cancelSync(sy);
  };

  // ---- pods and data following them ---------------------------------------------------------
  const attach = (p: Pod, node: string) => {
    p.node = node;
    p.epoch++;
    const v = c.volumes.get(p.volumeId);
    if (v) v.attachedNode = node;
    refreshPod(p);
  };

  /** The data follows the pod, once it has stayed long enough for the move to be worth it. */
  const settle = (p: Pod, cause: number) => {
    refreshPod(p);
    if (p.local) return;
    const v = c.volumes.get(p.volumeId);
    if (!v) return;
    const delay = relocationDelayHours(v.sizeBytes, perSyncBytesPerSecond, s.moves);
    heap.push({ t: now + delay, seq: seq++, kind: 'relocate', pod: p.id, epoch: p.epoch, cause });
  };

  const relocate = (e: Extract<Timed, { kind: 'relocate' }>) => {
    const p = pods.get(e.pod);
    if (!p || p.epoch !== e.epoch || p.local) return;
    // One move per volume at a time; the running one's end settles the pod again.
    if (inflight.has(p.volumeId)) return;
    const plan = engine.planRelocation(p.volumeId, p.node, { reserve: true });
    if (!plan.ok) {
      // The controller keeps reconciling: room may free up (deletes, other moves).
      m.relocationsFailed++;
      // A retry is the controller's routine, no longer the event's cost (settle times).
      heap.push({ ...e, t: now + s.moves.retryHours, seq: seq++, cause: -1 });
      return;
    }
    if (!plan.noop) startMove('relocation', plan.plan, e.cause);
  };

  const dropPod = (p: Pod) => {
    if (p.local) localPods--;
    pods.delete(p.id);
    const g = groups.get(p.group);
    if (g)
      groups.set(
        p.group,
        g.filter((x) => x !== p.id),
      );
  };

  const deleteVolume = (id: string) => {
    cancelVolumeSyncs(id);
    for (const waiting of draining.values()) waiting.delete(id);
    c.deleteVolume(id);
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
        m.failedBytes += step.sizeBytes;
        if (m.fillAtFirstFailure === null) {
          m.fillAtFirstFailure = fill();
          m.slotsAtFirstFailure = slotShare();
        }
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
      const pod: Pod = { id, group: step.group, volumeId: id, node, epoch: 0, local: false };
      pods.set(id, pod);
      ids.push(id);
      attach(pod, node);
      settle(pod, -1);
    }
  };

  const slotShare = (): number => {
    let used = 0;
    let total = 0;
    for (const n of c.nodes) {
      used += n.slotsUsed;
      total += n.slotsTotal;
    }
    return total > 0 ? used / total : 0;
  };

  const remove = (group: number) => {
    for (const id of groups.get(group) ?? []) {
      const p = pods.get(id);
      if (!p) continue;
      if (c.volumes.has(p.volumeId)) deleteVolume(p.volumeId);
      if (p.local) localPods--;
      pods.delete(id);
    }
    groups.delete(group);
  };

  const reschedule = (p: Pod, cause: number) => {
    const v = c.volumes.get(p.volumeId);
    const node = schedule(p.group, { volumeId: p.volumeId, sizeBytes: v?.sizeBytes ?? 0 }, p.id);
    if (!node) {
      m.unschedulablePods++;
      return;
    }
    attach(p, node);
    settle(p, cause);
  };

  // ---- events ----------------------------------------------------------------------------------
  const moveOff = (v: VolumeState, node: string, cause: number) => {
    if (inflight.has(v.id)) {
      draining.get(node)?.add(v.id);
      return;
    }
    const plan = engine.planMoveOff(v.id, node, { reserve: true });
    if (plan.ok && !plan.noop) startMove('drain', plan.plan, cause);
  };

  const drain = (nodeName: string, cause: number) => {
    const n = c.node(nodeName);
    if (!n) return;
    n.schedulable = false;
    draining.set(nodeName, new Set());
    for (const p of [...pods.values()]) if (p.node === nodeName) reschedule(p, cause);
    const plan = engine.planDrain(nodeName, { reserve: true });
    for (const mv of plan.moves) {
      if (inflight.has(mv.volumeId)) {
        c.release(mv.reservationId as string);
        draining.get(nodeName)?.add(mv.volumeId);
      } else startMove('drain', mv, cause);
    }
  };

  /** Nodes that are down but will come back under their own name, with when they went down. */
  const away = new Map<string, number>();

  const lose = (nodeName: string, cause: number, returns = false) => {
    const node = c.node(nodeName);
    if (!node) return;
    // Syncs into the lost node end with it; their half-made members go too.
    for (const [volumeId, set] of [...inflight]) {
      for (const sy of [...set]) {
        if (sy.target !== nodeName) continue;
        cancelSync(sy);
        c.removeReplica(volumeId, sy.toReplica, { force: true });
      }
    }
    draining.delete(nodeName);
    if (returns) {
      // Down, not gone: its drives keep their partitions, its members are Faulty until it returns.
      node.agentHealthy = false;
      node.schedulable = false;
      away.set(nodeName, now);
      for (const v of c.volumes.values()) {
        for (const r of v.replicas) if (r.node === nodeName && r.state !== 'Removed') r.state = 'Faulty';
      }
    } else c.removeNode(nodeName);
    for (const p of [...pods.values()]) if (p.node === nodeName) reschedule(p, cause);
    for (const v of [...c.volumes.values()]) {
      const lost = v.replicas.find((r) => r.node === nodeName);
      if (!lost) continue;
      // A drain already copying this member elsewhere is its rebuild.
      if ([...(inflight.get(v.id) ?? [])].some((sy) => sy.fromReplica === lost.id)) continue;
      rebuild(v, nodeName, cause, !returns);
    }
  };

  /**
   * Rebuilds `v`'s member on `nodeName` elsewhere; when no in-sync copy is left to copy from, the
   * volume is lost if its data went with the node or drive (`dataGone`), else it waits.
   */
  const rebuild = (v: VolumeState, nodeName: string, cause: number, dataGone: boolean) => {
    const plan = engine.planRebuild(v.id, nodeName, { reserve: true });
    if (plan.ok && !plan.noop) startMove('rebuild', plan.plan, cause);
    else if (!plan.ok && plan.code === 'unsafe' && dataGone) {
      m.volumesLost++;
      deleteVolume(v.id);
      const p = pods.get(v.id);
      if (p) dropPod(p);
      return;
    }
    const p = pods.get(v.id);
    if (p) refreshPod(p);
  };

  /** One drive of a node fails: its members are rebuilt elsewhere; the node and its pods stay. */
  const failDrive = (nodeName: string, index: number, cause: number) => {
    const d = c.node(nodeName)?.drives[index];
    if (!d) return; // the node was lost earlier
    for (const [volumeId, set] of [...inflight]) {
      for (const sy of [...set]) {
        const to = c.volumes.get(volumeId)?.replicas.find((r) => r.id === sy.toReplica);
        if (sy.target !== nodeName || to?.drive !== d.id) continue;
        cancelSync(sy);
        c.removeReplica(volumeId, sy.toReplica, { force: true });
      }
    }
    const hit = [...c.volumes.values()].filter((v) =>
      v.replicas.some((r) => r.node === nodeName && r.drive === d.id && r.state !== 'Removed'),
    );
    c.removeDrive(nodeName, d.id);
    for (const v of hit) rebuild(v, nodeName, cause, true);
  };

  /**
   * A lost node back under its own name: each member still on it catches up what its volume wrote
   * while it was away instead of being rebuilt (a rebuild still copying is cancelled); a member
   * whose rebuild finished was removed then and its space is free again.
   */
  const comeBack = (nodeName: string, cause: number) => {
    const node = c.node(nodeName);
    const since = away.get(nodeName);
    if (!node || since === undefined) return;
    away.delete(nodeName);
    node.agentHealthy = true;
    node.schedulable = true;
    for (const v of c.volumes.values()) {
      const back = v.replicas.find((r) => r.node === nodeName && r.state === 'Faulty');
      if (!back) continue;
      for (const sy of [...(inflight.get(v.id) ?? [])]) {
        if (sy.fromReplica !== back.id) continue;
        cancelSync(sy);
        c.removeReplica(v.id, sy.toReplica, { force: true });
      }
      if (!v.replicas.some((r) => r.state === 'InSync')) {
        back.state = 'InSync'; // it holds the newest data: nothing was written while it was away
      } else {
        back.state = 'Syncing';
        const written = Math.round((now - since) * s.sync.writtenPerVolumeHour);
        queueSync('catch-up', v.id, nodeName, Math.min(v.sizeBytes, written), back.id, undefined, cause);
      }
      const p = pods.get(v.id);
      if (p) refreshPod(p);
    }
  };

  const storm = (fraction: number, zone: string | undefined, cause: number) => {
    const all = [...pods.values()].filter((p) => zone === undefined || c.node(p.node)?.zone === zone);
    const count = Math.round(all.length * fraction);
    for (let i = 0; i < count && all.length > 0; i++) {
      const p = all.splice(rng.int(all.length), 1)[0] as Pod;
      const taken = new Set(
        (groups.get(p.group) ?? []).filter((x) => x !== p.id).map((x) => pods.get(x)?.node),
      );
      const options = c.nodes.filter((n) => n.schedulable && n.agentHealthy && !taken.has(n.name));
      if (options.length === 0) continue;
      attach(p, rng.pick(options).name);
      settle(p, cause);
    }
  };

  const runTimedUntil = (t: number) => {
    for (let e = heap.peek(); e && e.t <= t; e = heap.peek()) {
      heap.pop();
      advance(e.t);
      m.timedEvents++;
      if (e.kind === 'sync-done') syncDone(e.sync);
      else relocate(e);
    }
    advance(t);
  };

  const added = new Map<string, number>();
  const eventTimes: { index: number; t: number }[] = [];
  for (const step of timeline) {
    runTimedUntil(step.t);
    m.events++;
    onStep?.();
    switch (step.kind) {
      case 'arrival':
        arrive(step);
        break;
      case 'delete':
        remove(step.group);
        break;
      case 'return':
        comeBack(step.node, step.index);
        break;
      case 'uncordon': {
        const n = c.node(step.node);
        if (n) n.schedulable = true;
        draining.delete(step.node);
        break;
      }
      case 'sample': {
        const loc = locality();
        series.push({ t: step.t, fill: fill(), locality: loc, syncs: syncs.inFlight });
        if (eventsSeen) m.minLocality = Math.min(m.minLocality, loc);
        if (!rebuildReserve(c).ok) {
          if (m.reserveEatenAtHour === null) m.reserveEatenAtHour = step.t;
          m.reserveEatenHours += s.sampleEveryHours;
        }
        break;
      }
      case 'event': {
        eventsSeen = true;
        const e = step.event;
        const cause = step.index;
        eventTimes.push({ index: cause, t: step.t });
        if (e.type === 'drain') drain(e.node, cause);
        else if (e.type === 'nodeLoss') lose(e.node, cause, e.returnAfterHours !== undefined);
        else if (e.type === 'driveFailure') failDrive(e.node, e.drive, cause);
        else if (e.type === 'zoneOutage') {
          for (const n of c.nodes.filter((x) => x.zone === e.zone).map((x) => x.name)) lose(n, cause);
        } else if (e.type === 'nodeAdded') {
          const t = s.cluster.nodeTypes.find((x) => x.name === e.nodeType);
          if (!t) throw new Error(`internal: node type ${e.nodeType} vanished after validation`);
          const k = (added.get(e.zone) ?? 0) + 1;
          added.set(e.zone, k);
          c.addNode(makeNode(`${e.zone}-new${k}`, e.zone, '0', t, s.cluster.gptSlots));
        } else if (e.type === 'evictionStorm') storm(e.fraction, e.zone, cause);
        break;
      }
    }
  }

  m.locality = locality();
  m.finalFill = fill();
  for (const v of c.volumes.values()) {
    if (v.replicas.filter((r) => r.state === 'InSync').length < v.replicaCount) m.volumesDegraded++;
  }
  finalStats(c, m);
  m.timeLocality = podHours > 0 ? localPodHours / podHours : 1;
  m.remotePodHours = podHours - localPodHours;
  const placed = m.allocations - m.failedAllocations;
  m.bytesMovedPerVolume =
    placed > 0 ? (m.relocationBytes + m.drainBytes + m.rebuildBytes + m.catchUpBytes) / placed : 0;
  m.peakSyncsPerNode = syncs.peakPerNode;
  m.peakSyncsQueued = syncs.peakTotal;
  m.syncsUnfinished = syncs.inFlight;
  const settleList: EventSettle[] = eventTimes.map(({ index, t }) => ({
    index,
    t,
    hours: (causeOpen.get(index) ?? 0) > 0 ? null : Math.max(0, (causeDone.get(index) ?? t) - t),
  }));
  const settled = settleList.map((x) => x.hours).filter((h): h is number => h !== null);
  m.meanSettleHours = settled.length > 0 ? settled.reduce((a, b) => a + b, 0) / settled.length : 0;
  m.maxSettleHours = settled.length > 0 ? Math.max(...settled) : 0;
  return {
    metrics: m,
    series,
    settle: settleList,
    placements: placementRows(c),
    wallMs: performance.now() - wall0,
  };
}

function emptyMetrics(policy: string): PolicyMetrics {
  return {
    policy,
    fillAtFirstFailure: null,
    failedAllocations: 0,
    allocations: 0,
    unschedulablePods: 0,
    locality: 0,
    minLocality: 1,
    relocationBytes: 0,
    drainBytes: 0,
    rebuildBytes: 0,
    catchUpBytes: 0,
    relocationsFailed: 0,
    volumesLost: 0,
    volumesDegraded: 0,
    finalFill: 0,
    fillStddev: 0,
    freeContiguity: 0,
    slotsUsedShare: 0,
    maxSlotsUsed: 0,
    events: 0,
    failedBytes: 0,
    slotsAtFirstFailure: null,
    timeLocality: 1,
    remotePodHours: 0,
    bytesMovedPerVolume: 0,
    meanSettleHours: 0,
    maxSettleHours: 0,
    peakSyncsPerNode: 0,
    peakSyncsQueued: 0,
    syncsUnfinished: 0,
    reserveEatenAtHour: null,
    reserveEatenHours: 0,
    timedEvents: 0,
  };
}
