// Node-choice policies. MeshStor's own, and baselines modelled on how peers choose, so the
// simulator can compare them on the same workload. A policy only ranks nodes that can take the
// replica; eligibility (health, room, slots, spread) is the engine's job and the same for all.
import type { NodeState } from './cluster.ts';
import type { ExtentFit } from './drive.ts';
import { PlacementError } from './errors.ts';
import { GiB } from './units.ts';

export interface PolicyView {
  /** Every node in the model, in scan order (for policies that look at the whole cluster). */
  readonly nodes: readonly NodeState[];
  /** The largest replica extent the cluster has held (0 when none): the size big requests need. */
  readonly largestReplicaBytes: number;
  /** A uniform random number in [0, 1), from the engine's seeded generator. */
  random(): number;
}

export interface PlacementPolicy {
  readonly name: string;
  readonly description: string;
  /** Which free extent of a chosen node a replica goes into. */
  readonly extentFit: ExtentFit;
  /** Called once per decision; what it returns is handed to `score`. */
  prepare(view: PolicyView): unknown;
  /**
   * Scores at or below this mean "only when no other node can" (a kept hole, a big slot): the
   * extender ranks such nodes with those that cannot take the volume. Undefined: no such scores.
   */
  readonly lastResortBelow?: number;
  /** Higher is better; ties are broken by a seeded per-decision shuffle. */
  score(node: NodeState, needBytes: number, prepared: unknown, view: PolicyView): number;
}

const nothing = () => undefined;

/** Free share of the node left after placing the replica: spreads fill evenly across nodes. */
const leastAllocatedScore = (n: NodeState, need: number) =>
  n.capacityBytes > 0 ? (n.freeBytes - need) / n.capacityBytes : 0;

/** Weight of the less scarce resource: only breaks near-ties between equally scarce nodes. */
const SECONDARY_WEIGHT = 1e-3;

/**
 * Dominant-resource least-allocated: a replica takes bytes and one GPT entry, and the node's score
 * is the share left of whichever of the two is scarcer after placing it. Where bytes bind (large
 * volumes) this is the bytes score; where entries bind (many small volumes on big drives) it keeps
 * entries free on nodes with few drives, so replicaCount 3 volumes still find three nodes.
 */
export const dominantShareScore = (n: NodeState, need: number): number => {
  if (n.capacityBytes <= 0 || n.slotsTotal <= 0) return 0;
  const bytesLeft = (n.freeBytes - need) / n.capacityBytes;
  const slotsLeft = (n.slotsTotal - n.slotsUsed - 1) / n.slotsTotal;
  return bytesLeft < slotsLeft
    ? bytesLeft + SECONDARY_WEIGHT * slotsLeft
    : slotsLeft + SECONDARY_WEIGHT * bytesLeft;
};

/** How many of the cluster's largest holes are kept for volumes that need them. */
export const KEPT_HOLES = 3;

/**
 * The KEPT_HOLES usable nodes with the largest placeable holes (ties: scan order), and the
 * smallest of those holes. Exactly that many nodes, so a cluster of identical empty nodes keeps
 * three of them, not all.
 */
interface KeptHoles {
  nodes: Set<NodeState>;
  floor: number;
}

function keptHoles(view: PolicyView, count: number = KEPT_HOLES): KeptHoles {
  const top: NodeState[] = [];
  for (const n of view.nodes) {
    if (!n.agentHealthy || !n.schedulable || n.largestPlaceable <= 0) continue;
    const last = top[count - 1];
    if (top.length === count && last && n.largestPlaceable <= last.largestPlaceable) continue;
    let i = Math.min(top.length, count - 1);
    top[i] = n;
    while (i > 0 && (top[i - 1] as NodeState).largestPlaceable < n.largestPlaceable) {
      top[i] = top[i - 1] as NodeState;
      top[i - 1] = n;
      i--;
    }
  }
  if (top.length < count) return { nodes: new Set(), floor: 0 };
  return { nodes: new Set(top), floor: (top[count - 1] as NodeState).largestPlaceable };
}

/** The hole a best-fit replica of `need` goes into on `n` (0 when none fits). */
function bestFitHole(n: NodeState, need: number): number {
  let best = 0;
  for (const d of n.drives) {
    const h = d.smallestHoleFor(need);
    if (h > 0 && (best === 0 || h < best)) best = h;
  }
  return best;
}

/** Scores at or below this mean "only when no other node can": the extender ranks them last. */
const LAST_RESORT = -1.5;

/** Below any dominant-share score (those lie in [-1, 1]): a kept hole is the last resort. */
const KEPT_HOLE_PENALTY = 2;

/**
 * Dominant-share least-allocated, except that a replica which would cut into one of the cluster's
 * KEPT_HOLES largest holes goes there only when no other node can take it. Least-allocated alone
 * evens fill out until every hole is too small for the biggest volumes at once; keeping the few
 * largest holes whole defers the first failed allocation (docs/adr/0003).
 */
const holeKeepingScore: PlacementPolicy['score'] = (n, need, prepared) => {
  const base = dominantShareScore(n, need);
  const kept = prepared as KeptHoles;
  if (kept.nodes.has(n) && bytesBindOn(n, need) && bestFitHole(n, need) >= kept.floor) {
    return base - KEPT_HOLE_PENALTY;
  }
  return base;
};

/**
 * Whether bytes, not GPT entries, are the scarcer resource on `n` after placing `need`: kept holes
 * are about bytes; where entries bind, keeping bytes free would only empty other nodes' tables
 * sooner (GPT-bound class: entries used at the first failure 95.3 % without this test, 100 % with).
 */
export function bytesBindOn(n: NodeState, need: number): boolean {
  if (n.capacityBytes <= 0 || n.slotsTotal <= 0) return true;
  return (n.freeBytes - need) / n.capacityBytes < (n.slotsTotal - n.slotsUsed - 1) / n.slotsTotal;
}

/**
 * How many holes of the cluster's largest replica size (`big`) placing `need` on `n` destroys:
 * 0 when the best-fit hole has room for `need` beside the big slots it holds, 1 when it does not.
 */
export function bigSlotsLost(n: NodeState, need: number, big: number): number {
  if (n.largestPlaceable < big) return 0; // no hole holds a big slot, so none can be lost
  const hole = bestFitHole(n, need);
  if (hole <= 0 || big <= 0) return 0;
  return Math.floor(hole / big) - Math.floor((hole - need) / big);
}

/** Below any dominant-share score: breaking a big slot is the last resort. */
const BIG_SLOT_PENALTY = 3;

/**
 * Dominant-share least-allocated, except that a replica which would cut a hole below a multiple
 * of the cluster's largest replica goes there only when every node would: small volumes fill the
 * slack beside big slots, so the biggest volumes still find holes when the cluster is nearly full.
 */
const slotKeepingScore: PlacementPolicy['score'] = (n, need, _prepared, view) => {
  const base = dominantShareScore(n, need);
  if (!bytesBindOn(n, need)) return base;
  return base - BIG_SLOT_PENALTY * bigSlotsLost(n, need, Math.max(need, view.largestReplicaBytes));
};

/** The previous MeshStor policy (issue 14, first session): 3 largest holes kept for last. */
export const meshstorKeptHolesPolicy: PlacementPolicy = {
  name: 'meshstor-kept-holes',
  description:
    'least-allocated node by its scarcer resource, the 3 largest holes kept for last; best-fit extent',
  extentFit: 'best',
  prepare: (view) => keptHoles(view, KEPT_HOLES),
  score: holeKeepingScore,
};

function meshstor(fit: ExtentFit, name: string, description: string): PlacementPolicy {
  return {
    name,
    description,
    extentFit: fit,
    lastResortBelow: LAST_RESORT,
    prepare: nothing,
    score: slotKeepingScore,
  };
}

export const meshstorPolicy = meshstor(
  'best',
  'meshstor',
  'least-allocated node by its scarcer resource (bytes or GPT entries); a hole is cut below a multiple of the largest replica only when every node would; best-fit extent',
);

/** Issue 14's first step alone (dominant share, no kept holes): kept so simulations can compare. */
export const meshstorDominantPolicy: PlacementPolicy = {
  name: 'meshstor-dominant',
  description: 'least-allocated node by its scarcer resource (bytes or GPT entries); best-fit extent',
  extentFit: 'best',
  prepare: nothing,
  score: dominantShareScore,
};

/** MeshStor's policy before issue 14 (bytes only): kept by name so simulations can compare. */
export const meshstorBytesPolicy: PlacementPolicy = {
  name: 'meshstor-bytes',
  description:
    'least-allocated node by share of its bytes only, best-fit extent on it (the policy of ADR 0001)',
  extentFit: 'best',
  prepare: nothing,
  score: leastAllocatedScore,
};

const mostFree: PlacementPolicy = {
  name: 'most-free',
  description: 'node with the most free bytes; largest free extent (sgdisk default)',
  extentFit: 'worst',
  prepare: nothing,
  score: (n, need) => n.freeBytes - need,
};

interface UsageStats {
  ratios: Float64Array;
  index: Map<string, number>;
}

/** Longhorn-style: the node that leaves the smallest (max-min)/mean of node usage ratios. */
const longhorn: PlacementPolicy = {
  name: 'longhorn',
  description: 'minimise the balance score (max-min)/mean of node usage after placing; largest free extent',
  extentFit: 'worst',
  prepare(view): UsageStats {
    const ratios = new Float64Array(view.nodes.length);
    const index = new Map<string, number>();
    view.nodes.forEach((n, i) => {
      ratios[i] = n.capacityBytes > 0 ? 1 - n.freeBytes / n.capacityBytes : 1;
      index.set(n.name, i);
    });
    return { ratios, index };
  },
  score(n, need, prepared) {
    const { ratios, index } = prepared as UsageStats;
    const me = index.get(n.name) ?? -1;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    let sum = 0;
    for (let i = 0; i < ratios.length; i++) {
      const r = i === me ? 1 - (n.freeBytes - need) / n.capacityBytes : (ratios[i] as number);
      if (r < min) min = r;
      if (r > max) max = r;
      sum += r;
    }
    const mean = sum / ratios.length;
    return mean > 0 ? -(max - min) / mean : 0;
  },
};

interface MayastorStats {
  maxReplicas: number;
  maxFree: number;
}

/** Mayastor-style weighted score: replica count 25, free space 40, overcommit 35. */
const mayastor: PlacementPolicy = {
  name: 'mayastor',
  description: 'weights: fewer replicas 25, free space 40, low overcommit 35; largest free extent',
  extentFit: 'worst',
  prepare(view): MayastorStats {
    let maxReplicas = 1;
    let maxFree = 1;
    for (const n of view.nodes) {
      if (n.replicas > maxReplicas) maxReplicas = n.replicas;
      if (n.freeBytes > maxFree) maxFree = n.freeBytes;
    }
    return { maxReplicas, maxFree };
  },
  score(n, need, prepared) {
    const s = prepared as MayastorStats;
    const replicaTerm = 1 - n.replicas / s.maxReplicas;
    const freeTerm = (n.freeBytes - need) / s.maxFree;
    const overcommit = n.capacityBytes > 0 ? 1 - (n.freeBytes - need) / n.capacityBytes : 1;
    return 25 * replicaTerm + 40 * freeTerm + 35 * (1 - overcommit);
  },
};

/** TopoLVM: clamp(log2(freeGiB / divisor), 1, 10), divisor 1; ties (common) break at random. */
const topolvm: PlacementPolicy = {
  name: 'topolvm',
  description:
    'clamp(log2(free GiB / 1), 1, 10): saturates on large drives, ties at random; largest free extent',
  extentFit: 'worst',
  prepare: nothing,
  score: (n) => {
    const freeGiB = n.freeBytes / GiB;
    const raw = freeGiB > 0 ? Math.floor(Math.log2(freeGiB)) : 1;
    return Math.min(10, Math.max(1, raw));
  },
};

const random: PlacementPolicy = {
  name: 'random',
  description: 'uniformly random eligible node; largest free extent',
  extentFit: 'worst',
  prepare: nothing,
  score: (_n, _need, _p, view) => view.random(),
};

/** MeshStor's node choice with other extent choices: the evidence for best-fit. */
export const meshstorWorstFit = meshstor(
  'worst',
  'meshstor-worst-fit',
  'as meshstor, but the largest free extent on the node',
);
export const meshstorFirstFit = meshstor(
  'first',
  'meshstor-first-fit',
  'as meshstor, but the first free extent that fits',
);

export const POLICIES: readonly PlacementPolicy[] = [
  meshstorPolicy,
  meshstorWorstFit,
  meshstorFirstFit,
  mostFree,
  longhorn,
  mayastor,
  topolvm,
  random,
];

/** Every policy a simulation may name: the compared set plus earlier versions of MeshStor's. */
export const ALL_POLICIES: readonly PlacementPolicy[] = [
  ...POLICIES,
  meshstorBytesPolicy,
  meshstorDominantPolicy,
  meshstorKeptHolesPolicy,
];

export function policyByName(name: string): PlacementPolicy {
  const p = ALL_POLICIES.find((x) => x.name === name);
  if (!p) {
    throw new PlacementError(
      'invalid',
      `unknown placement policy "${name}" (known: ${ALL_POLICIES.map((x) => x.name).join(', ')})`,
    );
  }
  return p;
}
