// Choosing nodes, and an extent on each, for new replicas. One O(nodes) scan per decision over
// per-node aggregates; spread is handled by keeping the best few candidates per failure domain.
import type { ClusterState, NodeState } from './cluster.ts';
import type { ExtentFit } from './drive.ts';
import type { Extent, SpreadPolicy, TopologySegment } from './model.ts';
import type { PlacementPolicy, PolicyView } from './policies.ts';
import { mix32, type Rng } from './rng.ts';
import { formatBytes } from './units.ts';

export interface SelectRequest {
  /** Extent bytes each new replica needs. */
  needBytes: number;
  count: number;
  spread: SpreadPolicy;
  /** Failure domains that already hold a replica of the volume. */
  usedDomains: ReadonlySet<string>;
  /** Nodes that must not get a replica (they hold one already). */
  excludeNodes: ReadonlySet<string>;
  /** Nodes to try first, in order, when they can take a replica (WFFC node, consumer node). */
  preferredNodes: readonly string[];
  segment?: TopologySegment | undefined;
}

/**
 * How many feasible nodes a decision scores before it stops looking, as kube-scheduler's
 * percentageOfNodesToScore does: every node up to 100, then 50% minus 1% per 125 nodes, at least
 * 5% and at least 100. The scan starts where the previous one stopped, so over many decisions
 * every node gets its turn.
 */
export function nodesToScore(total: number): number {
  if (total <= 100) return total;
  const pct = Math.max(5, 50 - total / 125);
  return Math.max(100, Math.floor((total * pct) / 100));
}

/** Where the next scan starts; kept by the engine between decisions. */
export interface ScanCursor {
  next: number;
}

export interface NodeChoice {
  node: NodeState;
  drive: string;
  extent: Extent;
}

export type SelectResult =
  | { ok: true; choices: NodeChoice[] }
  | { ok: false; message: string; nodeReasons: Record<string, string> };

interface Candidate {
  node: NodeState;
  score: number;
  tie: number;
}

/** Why `node` cannot take a replica of `needBytes`, or undefined when it can. */
export function whyNot(node: NodeState, req: Pick<SelectRequest, 'needBytes' | 'excludeNodes' | 'segment'>) {
  if (!node.agentHealthy) return 'agent is not healthy';
  if (!node.schedulable) return 'node is cordoned (unschedulable)';
  if (req.excludeNodes.has(node.name)) return 'already holds a replica of this volume';
  if (!node.matches(req.segment)) return 'outside the requested topology segment';
  return whyNoRoom(node, req.needBytes);
}

/** Why `node` has no extent of `needBytes` with a GPT slot, or undefined when it has one. */
export function whyNoRoom(node: NodeState, needBytes: number): string | undefined {
  if (node.largestPlaceable >= needBytes) return undefined;
  if (node.drives.length === 0) return 'has no NVMe drives';
  if (node.drives.every((d) => d.slotsFree === 0)) return 'no GPT partition slot left on any drive';
  const largest = Math.max(0, ...node.drives.filter((d) => d.slotsFree > 0).map((d) => d.largestFree));
  return `largest free extent ${formatBytes(largest)} < ${formatBytes(needBytes)} needed`;
}

/** The drive and extent on `node` for a replica of `bytes` under `fit`. */
export function pickExtent(
  node: NodeState,
  bytes: number,
  fit: ExtentFit,
): { drive: string; extent: Extent } | undefined {
  let best: { drive: string; extent: Extent; hole: number } | undefined;
  for (const d of node.drives) {
    const p = d.pick(bytes, fit);
    if (!p) continue;
    if (fit === 'first') return { drive: d.id, extent: p.extent };
    if (!best || (fit === 'best' ? p.holeBytes < best.hole : p.holeBytes > best.hole)) {
      best = { drive: d.id, extent: p.extent, hole: p.holeBytes };
    }
  }
  return best && { drive: best.drive, extent: best.extent };
}

function better(a: Candidate, b: Candidate): boolean {
  return a.score > b.score || (a.score === b.score && a.tie > b.tie);
}

/** Inserts into a list kept sorted best-first and at most `limit` long. */
function keepBest(list: Candidate[], c: Candidate, limit: number): void {
  if (list.length === limit && !better(c, list[list.length - 1] as Candidate)) return;
  let i = list.length;
  while (i > 0 && better(c, list[i - 1] as Candidate)) i--;
  list.splice(i, 0, c);
  if (list.length > limit) list.pop();
}

export function selectNodes(
  cluster: ClusterState,
  policy: PlacementPolicy,
  rng: Rng,
  req: SelectRequest,
  cursor: ScanCursor = { next: 0 },
): SelectResult {
  const salt = rng.nextU32();
  const view: PolicyView = {
    nodes: cluster.nodes,
    largestReplicaBytes: cluster.largestReplicaBytes,
    random: () => rng.next(),
  };
  const chosen: NodeState[] = [];
  const taken = new Set<string>(req.excludeNodes);
  const used = new Set<string>(req.usedDomains);
  const spreading = req.spread.mode !== 'none';
  const domainOf = (n: NodeState) => (spreading ? n.domain(req.spread.domain) : '');
  const fits = (n: NodeState) => whyNot(n, { ...req, excludeNodes: taken }) === undefined;

  for (const name of req.preferredNodes) {
    if (chosen.length === req.count) break;
    const n = cluster.node(name);
    if (!n || !fits(n)) continue;
    if (req.spread.mode === 'required' && used.has(domainOf(n))) continue;
    chosen.push(n);
    taken.add(n.name);
    used.add(domainOf(n));
  }

  if (chosen.length < req.count) {
    // The hot loop: one pass over all nodes, no allocation for a node that does not make a
    // domain's short list. Per domain we keep the best `limit` candidates, enough for any pick.
    const prepared = policy.prepare(view);
    const limit = req.count - chosen.length;
    const key = req.spread.domain;
    const required = req.spread.mode === 'required';
    const usedIds = new Set([...used].map((d) => cluster.domainId(key, d)));
    const lists: Candidate[][] = [];
    const need = req.needBytes;
    const segment = req.segment;
    const checkTaken = taken.size > 0;
    const nodes = cluster.nodes;
    const total = nodes.length;
    const enough = nodesToScore(total);
    const start = total > 0 ? cursor.next % total : 0;
    let found = 0;
    let freshDomains = 0;
    let scanned = 0;
    for (; scanned < total; scanned++) {
      // Stop early only when what was found can satisfy the request; else scan everything, so
      // a request fails only when no node anywhere could take it.
      if (found >= enough && (!spreading || freshDomains >= limit)) break;
      const n = nodes[(start + scanned) % total] as NodeState;
      if (!n.agentHealthy || !n.schedulable || n.largestPlaceable < need) continue;
      if (checkTaken && taken.has(n.name)) continue;
      if (segment && !n.matches(segment)) continue;
      const dom = spreading ? n.domainId(key) : 0;
      if (required && usedIds.has(dom)) continue;
      const score = policy.score(n, need, prepared, view);
      const tie = mix32(n.key, salt);
      found++;
      let list = lists[dom];
      if (!list) {
        list = [];
        lists[dom] = list;
        if (!usedIds.has(dom)) freshDomains++;
      } else if (list.length === limit) {
        const last = list[limit - 1] as Candidate;
        if (score < last.score || (score === last.score && tie <= last.tie)) continue;
      }
      keepBest(list, { node: n, score, tie }, limit);
    }
    if (total > 0) cursor.next = (start + scanned) % total;
    while (chosen.length < req.count) {
      let pick: Candidate | undefined;
      let pickFresh = false;
      for (let dom = 0; dom < lists.length; dom++) {
        const head = lists[dom]?.[0];
        if (!head) continue;
        const fresh = !usedIds.has(dom);
        if (required && !fresh) continue;
        // Preferred spread: a domain without a replica beats any score in a used one.
        if (
          !pick ||
          (spreading && fresh && !pickFresh) ||
          ((!spreading || fresh === pickFresh) && better(head, pick))
        ) {
          pick = head;
          pickFresh = fresh;
        }
      }
      if (!pick) break;
      const dom = spreading ? pick.node.domainId(key) : 0;
      (lists[dom] as Candidate[]).shift();
      chosen.push(pick.node);
      taken.add(pick.node.name);
      usedIds.add(dom);
    }
  }

  if (chosen.length < req.count) return explainFailure(cluster, req, chosen.length);

  const choices: NodeChoice[] = [];
  for (const n of chosen) {
    const p = pickExtent(n, req.needBytes, policy.extentFit);
    if (!p) throw new Error(`internal: node ${n.name} passed the fit check but has no extent`);
    choices.push({ node: n, drive: p.drive, extent: p.extent });
  }
  return { ok: true, choices };
}

function explainFailure(cluster: ClusterState, req: SelectRequest, found: number): SelectResult {
  const nodeReasons: Record<string, string> = {};
  const usable = new Map<string, number>();
  for (const n of cluster.nodes) {
    const why = whyNot(n, req);
    if (why) nodeReasons[n.name] = why;
    else {
      const dom = req.spread.mode === 'none' ? n.name : n.domain(req.spread.domain);
      usable.set(dom, (usable.get(dom) ?? 0) + 1);
      if (req.spread.mode === 'required' && req.usedDomains.has(dom)) {
        nodeReasons[n.name] = `${req.spread.domain} "${dom}" already holds a replica (spread required)`;
      } else {
        nodeReasons[n.name] = 'could take a replica, but too few other nodes could';
      }
    }
  }
  const what =
    req.spread.mode === 'required'
      ? `${req.count} node(s) in distinct ${req.spread.domain}s`
      : `${req.count} distinct node(s)`;
  const message = `cannot place ${req.count} replica(s) of ${formatBytes(req.needBytes)}: need ${what}, found ${found}; ${
    Object.keys(nodeReasons).length
  } node(s) considered`;
  return { ok: false, message, nodeReasons };
}
