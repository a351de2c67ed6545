// The kube-scheduler extender wire format (k8s.io/kube-scheduler/extender/v1). Its Go structs have
// no JSON tags, so the keys are the Go field names, capitalised. Only the parts MeshStor reads are
// checked, by hand: a schema library walked every field it knew on each call (about 6 % of the
// handler's time at 500 candidates), and a few typeof checks say the same. Everything else in the
// Pod passes through untouched.
import { BadRequest } from './json-body.ts';

/** The parts of a Pod volume the extender reads. */
export interface WireVolume {
  name: string;
  persistentVolumeClaim?: { claimName: string } | null;
  ephemeral?: object | null;
  /** Other volume sources (emptyDir, …) pass through unread. */
  [source: string]: unknown;
}

/** The parts of a Pod the extender reads. */
export interface WirePod {
  metadata: { name: string; namespace?: string; uid?: string };
  /** The rest of the spec (containers, …) passes through unread. */
  spec?: { volumes?: WireVolume[] | null; [field: string]: unknown };
}

/** ExtenderArgs. With nodeCacheCapable: true only NodeNames is set; otherwise Nodes (a NodeList). */
export interface ExtenderArgs {
  Pod: WirePod;
  Nodes?: { items?: { metadata: { name: string } }[] | null } | null;
  NodeNames?: string[] | null;
}

/** ExtenderFilterResult. */
export interface ExtenderFilterResult {
  Nodes?: { items: unknown[] } | null;
  NodeNames?: string[] | null;
  /** Nodes that failed, with a reason; preemption might help. */
  FailedNodes: Record<string, string>;
  /** Nodes that failed, with a reason; preemption cannot help. */
  FailedAndUnresolvableNodes: Record<string, string>;
  Error: string;
}

/** One entry of HostPriorityList. Score is 0..10 (MaxExtenderPriority). */
export interface HostPriority {
  Host: string;
  Score: number;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(path: string, what: string): never {
  throw new BadRequest(`invalid ExtenderArgs: ${path}: ${what}`);
}

function checkPod(p: unknown): WirePod {
  if (!isObject(p)) invalid('Pod', 'expected an object (the Pod being scheduled)');
  const meta = p.metadata;
  if (!isObject(meta)) invalid('Pod.metadata', 'expected an object');
  if (typeof meta.name !== 'string' || meta.name === '')
    invalid('Pod.metadata.name', 'expected a non-empty string');
  for (const k of ['namespace', 'uid'] as const) {
    if (meta[k] !== undefined && typeof meta[k] !== 'string')
      invalid(`Pod.metadata.${k}`, 'expected a string');
  }
  const spec = p.spec;
  if (spec === undefined) return p as unknown as WirePod;
  if (!isObject(spec)) invalid('Pod.spec', 'expected an object');
  const vols = spec.volumes;
  if (vols === undefined || vols === null) return p as unknown as WirePod;
  if (!Array.isArray(vols)) invalid('Pod.spec.volumes', 'expected an array');
  for (let i = 0; i < vols.length; i++) {
    const v: unknown = vols[i];
    const at = `Pod.spec.volumes.${i}`;
    if (!isObject(v)) invalid(at, 'expected an object');
    if (typeof v.name !== 'string') invalid(`${at}.name`, 'expected a string');
    const pvc = v.persistentVolumeClaim;
    if (pvc !== undefined && pvc !== null) {
      if (!isObject(pvc)) invalid(`${at}.persistentVolumeClaim`, 'expected an object');
      if (typeof pvc.claimName !== 'string' || pvc.claimName === '')
        invalid(`${at}.persistentVolumeClaim.claimName`, 'expected a non-empty string');
    }
    if (v.ephemeral !== undefined && v.ephemeral !== null && !isObject(v.ephemeral))
      invalid(`${at}.ephemeral`, 'expected an object');
  }
  return p as unknown as WirePod;
}

/**
 * The parsed body checked as ExtenderArgs; a BadRequest names the first field that is wrong.
 * The value is returned as it came (no copy): unknown fields stay for the `Nodes` echo.
 */
export function parseExtenderArgs(body: unknown): ExtenderArgs {
  if (!isObject(body)) {
    throw new BadRequest('the body must be a JSON object (ExtenderArgs) sent as application/json');
  }
  checkPod(body.Pod);
  const names = body.NodeNames;
  if (names !== undefined && names !== null) {
    if (!Array.isArray(names)) invalid('NodeNames', 'expected an array of node names');
    for (let i = 0; i < names.length; i++) {
      if (typeof names[i] !== 'string') invalid(`NodeNames.${i}`, 'expected a string');
    }
  }
  const nodes = body.Nodes;
  if (nodes !== undefined && nodes !== null) {
    if (!isObject(nodes)) invalid('Nodes', 'expected a NodeList object');
    const items = nodes.items;
    if (items !== undefined && items !== null) {
      if (!Array.isArray(items)) invalid('Nodes.items', 'expected an array');
      for (let i = 0; i < items.length; i++) {
        const n: unknown = items[i];
        if (!isObject(n) || !isObject(n.metadata) || typeof n.metadata.name !== 'string')
          invalid(`Nodes.items.${i}.metadata.name`, 'expected a string');
      }
    }
  }
  if ((names === undefined || names === null) && (nodes === undefined || nodes === null)) {
    throw new BadRequest(
      'invalid ExtenderArgs: ExtenderArgs needs NodeNames (nodeCacheCapable: true) or Nodes',
    );
  }
  return body as unknown as ExtenderArgs;
}

/** The candidate node names of a request, whichever form they came in. */
export function candidateNames(args: ExtenderArgs): string[] {
  if (args.NodeNames != null) return args.NodeNames;
  return (args.Nodes?.items ?? []).map((n) => n.metadata.name);
}

/**
 * The prioritize answer as sent: every score less the lowest, and only the hosts left above 0.
 * kube-scheduler ranks candidates by the sum of its plugins' scores and each extender's
 * `Score × weight × 10` (schedule_one.go, prioritizeNodes), and a host missing from an extender's
 * answer adds nothing to its sum. Taking the same amount from every candidate changes no
 * candidate's rank against another, and the hosts at the lowest score, most of them for a pod whose
 * data sits on a few nodes, need not be sent: the answer shrinks from one entry per candidate to a
 * few, and so do the bytes written, read and decoded on both sides.
 * One thing differs: kube-scheduler breaks ties between equal totals at random only among hosts an
 * extender listed (it draws the tie-breaker there); unlisted hosts tie as they would with no
 * extender at all, and a listed host wins a tie against an unlisted one.
 */
export function sparsePriorities(scores: readonly HostPriority[]): HostPriority[] {
  let lowest = Number.POSITIVE_INFINITY;
  for (const s of scores) if (s.Score < lowest) lowest = s.Score;
  const out: HostPriority[] = [];
  for (const s of scores) if (s.Score > lowest) out.push({ Host: s.Host, Score: s.Score - lowest });
  return out;
}
