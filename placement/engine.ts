// The placement engine: decisions over a ClusterState. Deterministic for a given state, policy and
// seed. Decisions reserve the extents they hand out, so concurrent callers never get one extent
// twice; the caller commits a reservation once its decision is written down, or releases it.
import {
  ClusterState,
  type NodeState,
  type Reservation,
  type ReservedReplica,
  type VolumeState,
} from './cluster.ts';
import type { PlacementErrorCode } from './errors.ts';
import { largestVolumeFor, replicaExtentBytes } from './geometry.ts';
import {
  type ClusterSnapshot,
  DEFAULT_SPREAD,
  type MemberState,
  type ReplicaInfo,
  type SpreadPolicy,
  type TopologySegment,
} from './model.ts';
import { meshstorPolicy, type PlacementPolicy } from './policies.ts';
import { Rng } from './rng.ts';
import {
  type NodeChoice,
  pickExtent,
  type ScanCursor,
  type SelectRequest,
  selectNodes,
  whyNoRoom,
} from './select.ts';

export const MAX_REPLICAS = 5;

export interface EngineOptions {
  policy?: PlacementPolicy;
  seed?: number;
}

export interface AllocationRequest {
  volumeId: string;
  sizeBytes: number;
  replicaCount: number;
  spread?: SpreadPolicy | undefined;
  /** WaitForFirstConsumer's selected node: gets the first replica when it can. */
  preferredNode?: string | undefined;
  /** Only nodes in this segment may hold replicas. */
  segment?: TopologySegment | undefined;
  /** Nodes that may not hold a replica (outside a CSI requisite, say). */
  excludeNodes?: ReadonlySet<string> | undefined;
  /** Caller's clock value after which the reservation may be expired. */
  expiresAt?: number | undefined;
}

export type AllocationResult =
  | { ok: true; reservation: Reservation; preferredNodeUsed: boolean }
  | { ok: false; code: PlacementErrorCode; message: string; nodeReasons: Record<string, string> };

export interface PodVolume {
  /** Set when the volume is provisioned and known to the model. */
  volumeId?: string | undefined;
  sizeBytes: number;
}

export interface NodeScore {
  node: string;
  /** 0..10, as the scheduler extender protocol wants. */
  score: number;
}

export type PlanStep =
  | {
      op: 'add-member';
      volumeId: string;
      replicaId: string;
      node: string;
      drive: string;
      start: number;
      end: number;
    }
  | { op: 'wait-in-sync'; volumeId: string; replicaId: string }
  | { op: 'mark-faulty'; volumeId: string; replicaId: string }
  | { op: 'remove-member'; volumeId: string; replicaId: string; node: string }
  | { op: 'wipe-and-free'; volumeId: string; replicaId: string; node: string; drive: string; start: number };

export interface MovePlan {
  volumeId: string;
  /** Member that leaves (undefined when only adding). */
  from?: { replicaId: string; node: string } | undefined;
  /** Member that arrives (undefined when one already exists and only removal is left). */
  to?: { replicaId: string; node: string; drive: string; start: number; end: number } | undefined;
  bytes: number;
  steps: PlanStep[];
  /** Reservation holding the new extent (when the plan was made with reserve: true). */
  reservationId?: string | undefined;
}

export type PlanResult =
  | { ok: true; noop: boolean; plan: MovePlan }
  | {
      ok: false;
      code: PlacementErrorCode;
      message: string;
      nodeReasons?: Record<string, string> | undefined;
    };

/** A new member placed to replace one (its plan holds the reservation), or why none can be. */
type Replacement =
  | { ok: true; noop: false; plan: MovePlan }
  | { ok: false; code: PlacementErrorCode; message: string };

export interface DrainPlan {
  node: string;
  moves: MovePlan[];
  unplaceable: { volumeId: string; message: string }[];
  totalBytes: number;
}

export interface ScoreOptions {
  /**
   * For a pod whose volumes are not provisioned yet: rank the nodes with room by the policy (3, 2,
   * 1 by thirds) instead of giving them all 2, so the first replica lands where the policy would
   * put it. Off by default: the extender's scores stay as they were until it opts in.
   */
  rankRoom?: boolean | undefined;
}

export interface CapacityQuery {
  replicaCount: number;
  spread?: SpreadPolicy | undefined;
}

/**
 * Bytes a member added to an existing volume needs: never smaller than the members it joins, as md
 * refuses a device smaller than the array's members (records made by hand or by an older sizing
 * may hold more than the volume's own headroom).
 */
function memberBytes(v: { sizeBytes: number; replicas: readonly ReplicaInfo[] }): number {
  let need = replicaExtentBytes(v.sizeBytes);
  for (const r of v.replicas) if (r.state !== 'Removed') need = Math.max(need, r.extent.end - r.extent.start);
  return need;
}

export class PlacementEngine {
  readonly cluster: ClusterState;
  readonly policy: PlacementPolicy;
  private readonly rng: Rng;
  private readonly cursor: ScanCursor = { next: 0 };

  constructor(cluster: ClusterState | ClusterSnapshot, opts: EngineOptions = {}) {
    this.cluster = cluster instanceof ClusterState ? cluster : ClusterState.fromSnapshot(cluster);
    this.policy = opts.policy ?? meshstorPolicy;
    this.rng = new Rng(opts.seed ?? 1);
  }

  /** Uniform random in [0, 1) from the engine's seeded generator (simulations share it). */
  random(): number {
    return this.rng.next();
  }

  // ------------------------------------------------------------------ allocate --

  /**
   * Chooses replicaCount distinct nodes and an extent on each, and reserves them under the
   * volume id. Idempotent: a second call for a volume that is reserved or committed with the same
   * parameters returns that layout; different parameters are a conflict.
   */
  allocate(req: AllocationRequest): AllocationResult {
    const invalid = validateRequest(req);
    if (invalid) return { ok: false, code: 'invalid', message: invalid, nodeReasons: {} };
    const spread = req.spread ?? DEFAULT_SPREAD;
    const need = replicaExtentBytes(req.sizeBytes);

    const existing = this.cluster.reservations.get(req.volumeId);
    const committed = this.cluster.volumes.get(req.volumeId);
    if (existing || committed) {
      const same = committed
        ? committed.sizeBytes === req.sizeBytes && committed.replicaCount === req.replicaCount
        : existing?.replicas.length === req.replicaCount &&
          existing.replicas.every((r) => r.extent.end - r.extent.start === need);
      if (!same) {
        return {
          ok: false,
          code: 'conflict',
          message: `volume ${req.volumeId} exists with a different size or replica count`,
          nodeReasons: {},
        };
      }
      const reservation: Reservation = existing ?? {
        id: req.volumeId,
        volumeId: req.volumeId,
        replicas: (committed as VolumeState).replicas
          .filter((r) => r.state !== 'Removed')
          .map((r) => ({ replicaId: r.id, node: r.node, drive: r.drive, extent: { ...r.extent } })),
      };
      return {
        ok: true,
        reservation,
        preferredNodeUsed: reservation.replicas[0]?.node === req.preferredNode,
      };
    }

    const sel = selectNodes(
      this.cluster,
      this.policy,
      this.rng,
      {
        needBytes: need,
        count: req.replicaCount,
        spread,
        usedDomains: new Set(),
        excludeNodes: new Set(req.excludeNodes),
        preferredNodes: req.preferredNode ? [req.preferredNode] : [],
        segment: req.segment,
      },
      this.cursor,
    );
    if (!sel.ok) return { ok: false, code: 'exhausted', message: sel.message, nodeReasons: sel.nodeReasons };
    const reservation: Reservation = {
      id: req.volumeId,
      volumeId: req.volumeId,
      replicas: sel.choices.map((c, i) => reserved(`r${i}`, c)),
      expiresAt: req.expiresAt,
    };
    this.cluster.reserve(reservation);
    return { ok: true, reservation, preferredNodeUsed: sel.choices[0]?.node.name === req.preferredNode };
  }

  /** Writes an allocation down as a volume (its members Pending until agents report). */
  commit(req: AllocationRequest, state: MemberState = 'Pending'): VolumeState {
    return this.cluster.commitVolume(
      req.volumeId,
      {
        id: req.volumeId,
        sizeBytes: req.sizeBytes,
        replicaCount: req.replicaCount,
        spread: req.spread ?? DEFAULT_SPREAD,
      },
      state,
    );
  }

  release(reservationId: string): boolean {
    return this.cluster.release(reservationId);
  }

  // -------------------------------------------------------------------- score --

  /**
   * Scores candidate nodes for a pod (the extender's prioritize). Bytes of the pod's volumes with
   * an in-sync replica on the node dominate: any node with local bytes scores 4..10, growing with
   * the local share; a node with none scores 0..3: up to 2 for how much of the pod's data it
   * could receive by relocation, 1 when a remote in-sync replica is in its zone.
   * O(candidates + replicas of the pod's volumes).
   */
  scoreNodes(
    podVolumes: readonly PodVolume[],
    candidateNodes: readonly string[],
    opts: ScoreOptions = {},
  ): NodeScore[] {
    if (podVolumes.length === 0) return candidateNodes.map((node) => ({ node, score: 0 }));
    if (opts.rankRoom && podVolumes.every((pv) => !pv.volumeId || !this.cluster.volumes.has(pv.volumeId))) {
      return this.scoreNewVolumes(podVolumes, candidateNodes);
    }
    const local = new Map<string, number>();
    const zonesWithCopy = new Set<string>();
    const pending: { bytes: number; need: number; holders: Set<string> }[] = [];
    let total = 0;
    for (const pv of podVolumes) {
      const v = pv.volumeId ? this.cluster.volumes.get(pv.volumeId) : undefined;
      const bytes = v?.sizeBytes ?? pv.sizeBytes;
      total += bytes;
      const holders = new Set<string>();
      if (v) {
        for (const r of v.replicas) {
          if (r.state === 'Removed' || r.state === 'Faulty') continue;
          holders.add(r.node);
          if (r.state !== 'InSync') continue;
          local.set(r.node, (local.get(r.node) ?? 0) + bytes);
          const zone = this.cluster.node(r.node)?.zone;
          if (zone) zonesWithCopy.add(zone);
        }
      }
      pending.push({ bytes, need: replicaExtentBytes(bytes), holders });
    }
    if (total <= 0) return candidateNodes.map((node) => ({ node, score: 0 }));
    return candidateNodes.map((node) => {
      const localBytes = local.get(node) ?? 0;
      if (localBytes > 0) return { node, score: 3 + Math.ceil((7 * Math.min(localBytes, total)) / total) };
      const n = this.cluster.node(node);
      if (!n) return { node, score: 0 };
      let receivable = 0;
      let largest = n.agentHealthy ? n.largestPlaceable : 0;
      for (const p of pending) {
        // A member already syncing here counts as receivable; otherwise it must fit.
        if (p.holders.has(node) || largest >= p.need) {
          receivable += p.bytes;
          if (!p.holders.has(node)) largest -= p.need; // a rough budget: the same hole is not counted twice
        }
      }
      const zoneTerm = n.zone && zonesWithCopy.has(n.zone) ? 1 : 0;
      return { node, score: Math.round((2 * receivable) / total) + zoneTerm };
    });
  }

  /**
   * A pod whose volumes do not exist yet, scored so that kube-scheduler puts it (and with it the
   * first replica, which goes to the pod's node) where the policy would: nodes that can take every
   * volume score 3, 2 or 1 by thirds of the policy's ranking; nodes that can take some 1; none 0.
   */
  private scoreNewVolumes(podVolumes: readonly PodVolume[], candidateNodes: readonly string[]): NodeScore[] {
    let need = 0;
    let total = 0;
    for (const pv of podVolumes) {
      need = Math.max(need, replicaExtentBytes(pv.sizeBytes));
      total += replicaExtentBytes(pv.sizeBytes);
    }
    const view = {
      nodes: this.cluster.nodes,
      largestReplicaBytes: this.cluster.largestReplicaBytes,
      random: () => this.rng.next(),
    };
    const prepared = this.policy.prepare(view);
    const room: { node: string; score: number }[] = [];
    const scores = new Map<string, number>();
    for (const name of candidateNodes) {
      const n = this.cluster.node(name);
      if (!n?.agentHealthy || n.largestPlaceable < need) {
        scores.set(name, 0);
        continue;
      }
      if (n.freeBytes < total) {
        scores.set(name, 1);
        continue;
      }
      room.push({ node: name, score: this.policy.score(n, need, prepared, view) });
    }
    room.sort((a, b) => b.score - a.score || (a.node < b.node ? -1 : 1));
    // A node the policy takes only as a last resort (a kept hole, a big slot) is ranked with the
    // nodes that cannot take everything; the rest split 3/2/1 by thirds of the ranking.
    const floor = this.policy.lastResortBelow ?? Number.NEGATIVE_INFINITY;
    const preferred = room.filter((r) => r.score > floor);
    preferred.forEach((r, i) => {
      scores.set(r.node, 3 - Math.floor((3 * i) / preferred.length));
    });
    for (const r of room) if (r.score <= floor) scores.set(r.node, 1);
    return candidateNodes.map((node) => ({ node, score: scores.get(node) ?? 0 }));
  }

  // -------------------------------------------------------------------- plans --

  /**
   * Plans moving one member of `volumeId` onto `newNode` (the pod's new node): add a member
   * there, wait until in sync, then remove the member the policy picks. Works from observed state,
   * so calling it again after any step resumes where things are.
   */
  planRelocation(volumeId: string, newNode: string, opts: { reserve?: boolean } = {}): PlanResult {
    const v = this.cluster.volumes.get(volumeId);
    if (!v)
      return { ok: false, code: 'not-found', message: `volume ${volumeId} is not in the cluster model` };
    const target = this.cluster.node(newNode);
    if (!target)
      return { ok: false, code: 'not-found', message: `node ${newNode} is not in the cluster model` };
    const live = v.replicas.filter((r) => r.state !== 'Removed');
    const here = live.find((r) => r.node === newNode && r.state !== 'Faulty');
    if (here && here.state === 'InSync' && live.length <= v.replicaCount) {
      return { ok: true, noop: true, plan: { volumeId, bytes: 0, steps: [] } };
    }
    const steps: PlanStep[] = [];
    let to: MovePlan['to'];
    let reservationId: string | undefined;
    let bytes = 0;
    if (!here) {
      const need = memberBytes(v);
      const why = whyNotTarget(target, need, live);
      if (why)
        return { ok: false, code: 'exhausted', message: `cannot relocate ${volumeId} to ${newNode}: ${why}` };
      const p = pickExtent(target, need, this.policy.extentFit) as {
        drive: string;
        extent: { start: number; end: number };
      };
      const replicaId = `r${v.nextReplica}`;
      to = { replicaId, node: newNode, drive: p.drive, start: p.extent.start, end: p.extent.end };
      reservationId = `${volumeId}/${replicaId}`;
      this.cluster.reserve({
        id: reservationId,
        volumeId,
        replicas: [{ replicaId, node: newNode, drive: p.drive, extent: p.extent }],
      });
      if (!opts.reserve) this.cluster.release(reservationId);
      steps.push({ op: 'add-member', volumeId, ...to }, { op: 'wait-in-sync', volumeId, replicaId });
      bytes = v.sizeBytes;
    } else if (here.state !== 'InSync') {
      steps.push({ op: 'wait-in-sync', volumeId, replicaId: here.id });
      bytes = v.sizeBytes;
    }
    // After the add, live + 1 members; drop back to replicaCount.
    const after = live.length + (here ? 0 : 1);
    const leaving =
      after > v.replicaCount
        ? this.chooseLeaving(
            v,
            live.filter((r) => r.node !== newNode),
          )
        : undefined;
    if (leaving) {
      steps.push(
        { op: 'remove-member', volumeId, replicaId: leaving.id, node: leaving.node },
        {
          op: 'wipe-and-free',
          volumeId,
          replicaId: leaving.id,
          node: leaving.node,
          drive: leaving.drive,
          start: leaving.extent.start,
        },
      );
    }
    return {
      ok: true,
      noop: false,
      plan: {
        volumeId,
        from: leaving && { replicaId: leaving.id, node: leaving.node },
        to,
        bytes,
        steps,
        reservationId: opts.reserve ? reservationId : undefined,
      },
    };
  }

  /**
   * Which member leaves when a volume has one too many: a faulty one first, then one on an
   * unhealthy or cordoned node, then one whose removal keeps the most failure domains, then the
   * one on the fullest node. Never a sole in-sync copy while others are not in sync.
   */
  private chooseLeaving(v: VolumeState, candidates: ReplicaInfo[]): ReplicaInfo | undefined {
    if (candidates.length === 0) return undefined;
    const domain = (r: ReplicaInfo) => this.cluster.node(r.node)?.domain(v.spread.domain) ?? `?${r.node}`;
    const live = v.replicas.filter((r) => r.state !== 'Removed');
    const domainCount = new Map<string, number>();
    for (const r of live) domainCount.set(domain(r), (domainCount.get(domain(r)) ?? 0) + 1);
    const rank = (r: ReplicaInfo): number[] => {
      const n = this.cluster.node(r.node);
      return [
        r.state === 'Faulty' ? 0 : 1,
        !n?.agentHealthy ? 0 : 1,
        n && !n.schedulable ? 0 : 1,
        (domainCount.get(domain(r)) ?? 0) > 1 ? 0 : 1,
        n && n.capacityBytes > 0 ? n.freeBytes / n.capacityBytes : 0,
      ];
    };
    const sorted = [...candidates].sort((a, b) => {
      const ra = rank(a);
      const rb = rank(b);
      for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return (ra[i] as number) - (rb[i] as number);
      return a.id < b.id ? -1 : 1;
    });
    return sorted[0];
  }

  /**
   * Plans moving every member off `node`: the most exposed volumes first (fewest other in-sync
   * copies), then the largest. A member goes to the volume's consumer node when that node has
   * none and has room (the move also makes the pod local), else where the policy says.
   */
  planDrain(nodeName: string, opts: { reserve?: boolean } = {}): DrainPlan {
    this.cluster.mustNode(nodeName);
    const affected = [...this.cluster.volumes.values()].filter((v) =>
      v.replicas.some((r) => r.node === nodeName && r.state !== 'Removed'),
    );
    const otherInSync = (v: VolumeState) =>
      v.replicas.filter((r) => r.node !== nodeName && r.state === 'InSync').length;
    affected.sort(
      (a, b) => otherInSync(a) - otherInSync(b) || b.sizeBytes - a.sizeBytes || (a.id < b.id ? -1 : 1),
    );
    const moves: MovePlan[] = [];
    const unplaceable: DrainPlan['unplaceable'] = [];
    const held: string[] = [];
    for (const v of affected) {
      const res = this.planMoveOff(v.id, nodeName, { reserve: true });
      if (!res.ok || res.noop) {
        unplaceable.push({ volumeId: v.id, message: res.ok ? 'no member to move' : res.message });
        continue;
      }
      held.push(res.plan.reservationId as string);
      moves.push(res.plan);
    }
    if (!opts.reserve) {
      for (const id of held) this.cluster.release(id);
      for (const m of moves) m.reservationId = undefined;
    }
    return { node: nodeName, moves, unplaceable, totalBytes: moves.reduce((s, m) => s + m.bytes, 0) };
  }

  /**
   * Plans moving the member of one volume off `nodeName` (one volume's share of a drain): add a
   * member where the consumer runs or the policy says, wait in sync, remove the one on the node.
   * A drain whose move for a volume had to wait (another sync of it was running) resumes with this.
   */
  planMoveOff(volumeId: string, nodeName: string, opts: { reserve?: boolean } = {}): PlanResult {
    const v = this.cluster.volumes.get(volumeId);
    if (!v)
      return { ok: false, code: 'not-found', message: `volume ${volumeId} is not in the cluster model` };
    const leaving = v.replicas.find((r) => r.node === nodeName && r.state !== 'Removed');
    if (!leaving) return { ok: true, noop: true, plan: { volumeId, bytes: 0, steps: [] } };
    const res = this.placeReplacement(v, leaving, [nodeName]);
    if (res.ok && !opts.reserve) {
      this.cluster.release(res.plan.reservationId as string);
      res.plan.reservationId = undefined;
    }
    return res;
  }

  /**
   * Plans replacing the member(s) of `volumeId` on a lost node: mark faulty, add a member
   * (the consumer's node preferred), resync from a surviving in-sync copy, remove the lost one.
   */
  planRebuild(volumeId: string, lostNode: string, opts: { reserve?: boolean } = {}): PlanResult {
    const v = this.cluster.volumes.get(volumeId);
    if (!v)
      return { ok: false, code: 'not-found', message: `volume ${volumeId} is not in the cluster model` };
    const lost = v.replicas.find((r) => r.node === lostNode && r.state !== 'Removed');
    if (!lost) return { ok: true, noop: true, plan: { volumeId, bytes: 0, steps: [] } };
    const survivors = v.replicas.filter((r) => r.node !== lostNode && r.state === 'InSync');
    if (survivors.length === 0) {
      return {
        ok: false,
        code: 'unsafe',
        message: `volume ${volumeId}: no in-sync copy left outside ${lostNode}; nothing to rebuild from`,
      };
    }
    const res = this.placeReplacement(v, lost, [lostNode]);
    if (!res.ok) return res;
    res.plan.steps.unshift({ op: 'mark-faulty', volumeId, replicaId: lost.id });
    if (!opts.reserve) {
      this.cluster.release(res.plan.reservationId as string);
      res.plan.reservationId = undefined;
    }
    return res;
  }

  /** Reserves a new member for `v` that will replace `leaving`; the plan holds the reservation. */
  private placeReplacement(
    v: VolumeState,
    leaving: ReplicaInfo,
    avoid: string[],
    needBytes = memberBytes(v),
  ): Replacement {
    const stay = v.replicas.filter((r) => r !== leaving && r.state !== 'Removed' && r.state !== 'Faulty');
    const exclude = new Set([
      ...avoid,
      ...v.replicas.filter((r) => r.state !== 'Removed').map((r) => r.node),
    ]);
    const usedDomains = new Set(
      stay
        .map((r) => this.cluster.node(r.node)?.domain(v.spread.domain))
        .filter((d): d is string => d !== undefined),
    );
    const req: SelectRequest = {
      needBytes,
      count: 1,
      spread: v.spread,
      usedDomains,
      excludeNodes: exclude,
      preferredNodes: v.attachedNode ? [v.attachedNode] : [],
    };
    const sel = selectNodes(this.cluster, this.policy, this.rng, req, this.cursor);
    if (!sel.ok) return { ok: false, code: 'exhausted', message: `volume ${v.id}: ${sel.message}` };
    const c = sel.choices[0] as NodeChoice;
    const replicaId = `r${v.nextReplica}`;
    // Reserve under the volume's next free index; concurrent plans for one volume would collide
    // here and be refused, which is what we want.
    const reservationId = `${v.id}/${replicaId}`;
    this.cluster.reserve({ id: reservationId, volumeId: v.id, replicas: [reserved(replicaId, c)] });
    v.nextReplica++;
    const to = { replicaId, node: c.node.name, drive: c.drive, start: c.extent.start, end: c.extent.end };
    return { ok: true, noop: false, plan: moveSteps(v, leaving, to, reservationId) };
  }

  /**
   * Carries out a move plan in the model at once (simulations; the real system executes the steps
   * through the agents): the new member becomes InSync and the leaving one is removed.
   */
  applyMove(plan: MovePlan): void {
    if (plan.to) {
      const resId = plan.reservationId ?? `${plan.volumeId}/${plan.to.replicaId}`;
      if (!this.cluster.reservations.has(resId)) {
        this.cluster.reserve({
          id: resId,
          volumeId: plan.volumeId,
          replicas: [
            {
              replicaId: plan.to.replicaId,
              node: plan.to.node,
              drive: plan.to.drive,
              extent: { start: plan.to.start, end: plan.to.end },
            },
          ],
        });
      }
      this.cluster.commitReplica(resId, 'InSync');
    } else {
      const wait = plan.steps.find((s) => s.op === 'wait-in-sync');
      if (wait) this.cluster.setReplicaState(plan.volumeId, wait.replicaId, 'InSync');
    }
    if (plan.from) this.cluster.removeReplica(plan.volumeId, plan.from.replicaId);
  }

  // ------------------------------------------------------------------- expand --

  /**
   * Can every member of `volumeId` grow in place to hold `newSizeBytes`? Each member's partition
   * keeps its start and takes the free bytes right after it. Members that cannot are named; moving
   * them to a larger extent first is a relocation (planRelocation) the caller can run.
   */
  planExpand(
    volumeId: string,
    newSizeBytes: number,
  ):
    | { ok: true; grows: { replicaId: string; node: string; drive: string; start: number; newEnd: number }[] }
    | { ok: false; code: PlacementErrorCode; message: string } {
    const v = this.cluster.volumes.get(volumeId);
    if (!v)
      return { ok: false, code: 'not-found', message: `volume ${volumeId} is not in the cluster model` };
    if (!Number.isSafeInteger(newSizeBytes) || newSizeBytes <= 0) {
      return {
        ok: false,
        code: 'invalid',
        message: `new size must be a positive integer (got ${newSizeBytes})`,
      };
    }
    const { grows, blocked } = this.growthInPlace(v, newSizeBytes);
    if (blocked.length > 0) {
      const names = blocked.map((r) => `${r.id} on ${r.node}/${r.drive}`).join(', ');
      return {
        ok: false,
        code: 'exhausted',
        message: `volume ${volumeId} cannot grow in place to ${newSizeBytes} bytes: the space after ${names} is taken`,
      };
    }
    return { ok: true, grows };
  }

  /** Which live members can grow in place to hold `newSizeBytes`, and which are blocked. */
  private growthInPlace(v: VolumeState, newSizeBytes: number) {
    const need = replicaExtentBytes(newSizeBytes);
    const grows = [];
    const blocked: ReplicaInfo[] = [];
    for (const r of v.replicas) {
      if (r.state === 'Removed' || r.state === 'Faulty') continue;
      const newEnd = r.extent.start + need;
      if (newEnd <= r.extent.end) continue;
      const d = this.cluster.node(r.node)?.drive(r.drive);
      if (d?.isFree({ start: r.extent.end, end: newEnd })) {
        grows.push({ replicaId: r.id, node: r.node, drive: r.drive, start: r.extent.start, newEnd });
      } else blocked.push(r);
    }
    return { grows, blocked };
  }

  /**
   * Expansion when growth in place is blocked: plans moving the first member that cannot grow in
   * place to a new extent already of the size `newSizeBytes` needs (add, wait in sync, remove, as
   * any relocation). On the member's own node when one of its drives has room, so the spread and
   * the volume's local leg stay as they are; else where a replacement would go (the attached
   * node first, then the spread rules). A noop when no member is blocked (planExpand then grows
   * every member in place). The caller runs one move at a time and asks again after each.
   */
  planGrowMove(volumeId: string, newSizeBytes: number, opts: { reserve?: boolean } = {}): PlanResult {
    const v = this.cluster.volumes.get(volumeId);
    if (!v)
      return { ok: false, code: 'not-found', message: `volume ${volumeId} is not in the cluster model` };
    if (!Number.isSafeInteger(newSizeBytes) || newSizeBytes <= 0)
      return {
        ok: false,
        code: 'invalid',
        message: `new size must be a positive integer (got ${newSizeBytes})`,
      };
    const leaving = this.growthInPlace(v, newSizeBytes).blocked[0];
    if (!leaving) return { ok: true, noop: true, plan: { volumeId, bytes: 0, steps: [] } };
    // never smaller than the members it joins (md refuses a smaller device)
    const need = Math.max(replicaExtentBytes(newSizeBytes), memberBytes(v));
    const home = this.cluster.node(leaving.node);
    const here =
      home?.agentHealthy && home.schedulable ? pickExtent(home, need, this.policy.extentFit) : undefined;
    let res: Replacement;
    if (home && here) {
      const replicaId = `r${v.nextReplica}`;
      const reservationId = `${v.id}/${replicaId}`;
      this.cluster.reserve({
        id: reservationId,
        volumeId: v.id,
        replicas: [{ replicaId, node: home.name, drive: here.drive, extent: { ...here.extent } }],
      });
      v.nextReplica++;
      const to = {
        replicaId,
        node: home.name,
        drive: here.drive,
        start: here.extent.start,
        end: here.extent.end,
      };
      res = { ok: true, noop: false, plan: moveSteps(v, leaving, to, reservationId) };
    } else {
      res = this.placeReplacement(v, leaving, [], need);
      if (!res.ok)
        return {
          ok: false,
          code: res.code,
          message: `volume ${volumeId} cannot grow in place to ${newSizeBytes} bytes and no node has room for ${leaving.id} at that size: ${res.message}`,
        };
    }
    if (!opts.reserve) {
      this.cluster.release(res.plan.reservationId as string);
      res.plan.reservationId = undefined;
    }
    return res;
  }

  // ----------------------------------------------------------------- capacity --

  /**
   * The largest volume `allocate` can place with this replica count and spread using only nodes
   * of `segment` (what CSI GetCapacity reports as maximum_volume_size for the segment). Exact:
   * each node can take one replica up to its largest placeable extent, so the answer is the
   * replicaCount-th largest of those (one per failure domain under required spread).
   */
  capacity(segment: TopologySegment, query: CapacityQuery): number {
    const spread = query.spread ?? DEFAULT_SPREAD;
    const best: number[] = [];
    const perDomain = new Map<string, number>();
    for (const n of this.cluster.nodes) {
      if (!n.agentHealthy || !n.schedulable || !n.matches(segment) || n.largestPlaceable <= 0) continue;
      if (spread.mode === 'required') {
        const d = n.domain(spread.domain);
        perDomain.set(d, Math.max(perDomain.get(d) ?? 0, n.largestPlaceable));
      } else best.push(n.largestPlaceable);
    }
    const pool = spread.mode === 'required' ? [...perDomain.values()] : best;
    if (pool.length < query.replicaCount) return 0;
    pool.sort((a, b) => b - a);
    return largestVolumeFor(pool[query.replicaCount - 1] as number);
  }
}

/** The plan of one move: `to` is added, synced, then `leaving` is removed and its extent freed. */
function moveSteps(
  v: VolumeState,
  leaving: ReplicaInfo,
  to: NonNullable<MovePlan['to']>,
  reservationId: string,
): MovePlan {
  return {
    volumeId: v.id,
    from: { replicaId: leaving.id, node: leaving.node },
    to,
    bytes: v.sizeBytes,
    reservationId,
    steps: [
      { op: 'add-member', volumeId: v.id, ...to },
      { op: 'wait-in-sync', volumeId: v.id, replicaId: to.replicaId },
      { op: 'remove-member', volumeId: v.id, replicaId: leaving.id, node: leaving.node },
      {
        op: 'wipe-and-free',
        volumeId: v.id,
        replicaId: leaving.id,
        node: leaving.node,
        drive: leaving.drive,
        start: leaving.extent.start,
      },
    ],
  };
}

function reserved(replicaId: string, c: NodeChoice): ReservedReplica {
  return { replicaId, node: c.node.name, drive: c.drive, extent: { ...c.extent } };
}

/** A relocation target is where the pod already runs, so a cordon does not matter there. */
function whyNotTarget(n: NodeState, need: number, live: ReplicaInfo[]): string | undefined {
  if (!n.agentHealthy) return 'agent is not healthy';
  if (live.some((r) => r.node === n.name && r.state !== 'Faulty')) return 'already holds a member';
  return whyNoRoom(n, need);
}

function validateRequest(req: AllocationRequest): string | undefined {
  if (typeof req.volumeId !== 'string' || req.volumeId.length === 0)
    return 'volumeId must be a non-empty string';
  if (!Number.isSafeInteger(req.sizeBytes) || req.sizeBytes <= 0) {
    return `sizeBytes must be a positive integer (got ${req.sizeBytes})`;
  }
  if (!Number.isInteger(req.replicaCount) || req.replicaCount < 1 || req.replicaCount > MAX_REPLICAS) {
    return `replicaCount must be an integer from 1 to ${MAX_REPLICAS} (got ${req.replicaCount})`;
  }
  const spread = req.spread;
  if (spread) {
    if (!['zone', 'rack'].includes(spread.domain))
      return `spread.domain must be zone or rack (got ${spread.domain})`;
    if (!['required', 'preferred', 'none'].includes(spread.mode)) {
      return `spread.mode must be required, preferred or none (got ${spread.mode})`;
    }
  }
  return undefined;
}
