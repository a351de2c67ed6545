// The controller's half of relocation: a volume attached to a node that holds none of its members
// gets a new member there (placement picks the extent and which member leaves), and once the
// attached node's agent has added it, synced it and removed the leaving one (agent/relocation.ts),
// the leaving member's record is dropped when its owner's agent no longer reports its partition.
// Only then is its extent free again. A member on an evacuating node (a drain) moves the same way,
// to where placement puts it. One move at a time per volume, healthy volumes only; a degraded one
// is a rebuild, not a relocation.
import type { MovePlan } from '../placement/engine.ts';
import type { NodeInfo } from '../placement/model.ts';
import { reportsPartition, type VolumeRecord } from '../state/store.ts';

export interface RelocationPass {
  /** Relocations started, as volume -> node. */
  started: string[];
  /** Volumes whose relocation finished and whose old member was released. */
  finished: string[];
  /** Volumes that should move but cannot now, and why. */
  blocked: { volume: string; reason: string }[];
  /** Volumes queued behind other moves off evacuating nodes (expected, not a problem). */
  queued: string[];
}

/** Whether the volume's relocation is over (done or cancelled) and only its release is left. */
export function relocationEnded(rec: VolumeRecord): boolean {
  return rec.relocation?.step === 'done' || rec.relocation?.step === 'cancelled';
}

/** Every member in sync, exactly replicaCount of them: a volume that may move (a degraded one is rebuilt or caught up first). */
export function healthy(rec: VolumeRecord): boolean {
  const live = rec.replicas.filter((r) => r.state !== 'Removed');
  return live.length === rec.replicaCount && live.every((r) => r.state === 'InSync');
}

/**
 * The node a volume's member should move to, or undefined when it should stay as it is. Never an
 * evacuating node: the pod there is about to leave it too.
 */
export function relocationTarget(
  rec: VolumeRecord,
  evacuating: ReadonlySet<string> = new Set(),
): string | undefined {
  const to = rec.attachment?.node;
  // a snapshot capture changes raid-devices too (ADR 0010): one at a time
  if (rec.phase !== 'Active' || !to || rec.relocation || rec.capture || evacuating.has(to)) return undefined;
  if (rec.replicas.some((r) => r.node === to && r.state !== 'Removed')) return undefined;
  return healthy(rec) ? to : undefined;
}

/** A move of a member: onto the attached node (`to`), or off an evacuating node (`off`). */
export type MoveNeed = { kind: 'follow'; to: string } | { kind: 'evacuate'; off: string };

/**
 * The evacuating node a volume's member should move off, or undefined. Only a healthy volume
 * whose array runs somewhere (the attached node's agent adds, resyncs and removes) moves; the
 * member leaves only once its replacement is in sync, so there is always an in-sync copy off the
 * node when it goes.
 */
export function evacuationSource(rec: VolumeRecord, evacuating: ReadonlySet<string>): string | undefined {
  if (rec.phase !== 'Active' || !rec.attachment || rec.relocation || rec.capture || !healthy(rec))
    return undefined;
  return rec.replicas.find((r) => r.state !== 'Removed' && evacuating.has(r.node))?.node;
}

/** What move, if any, the volume needs now: following its pod first, then leaving an evacuating node. */
export function moveNeeded(rec: VolumeRecord, evacuating: ReadonlySet<string>): MoveNeed | undefined {
  const to = relocationTarget(rec, evacuating);
  if (to) return { kind: 'follow', to };
  const off = evacuationSource(rec, evacuating);
  return off ? { kind: 'evacuate', off } : undefined;
}

/** Writes the plan into the record: the new member (Pending) and the relocation, step adding. */
export function beginRelocation(rec: VolumeRecord, plan: MovePlan): boolean {
  if (!plan.to || !plan.from) return false;
  rec.replicas.push({
    id: plan.to.replicaId,
    node: plan.to.node,
    drive: plan.to.drive,
    extent: { start: plan.to.start, end: plan.to.end },
    state: 'Pending',
  });
  rec.relocation = {
    toNode: plan.to.node,
    toReplica: plan.to.replicaId,
    fromReplica: plan.from.replicaId,
    step: 'adding',
    bytesDone: 0,
    bytesTotal: rec.sizeBytes,
  };
  return true;
}

/**
 * Takes the new member back (its extent collided with another record): it is marked Removed, so
 * a partition its node may already have made is wiped before the extent is released.
 */
export function cancelRelocation(rec: VolumeRecord): void {
  const r = rec.relocation;
  if (!r) return;
  const added = rec.replicas.find((x) => x.id === r.toReplica);
  if (added) added.state = 'Removed';
  r.step = 'cancelled';
}

/**
 * After a relocation ended: drops Removed members whose partition no agent reports any more and
 * then clears the relocation. Returns whether the record changed.
 */
export function releaseRemoved(rec: VolumeRecord, nodes: readonly NodeInfo[]): boolean {
  if (!relocationEnded(rec)) return false;
  const before = rec.replicas.length;
  rec.replicas = rec.replicas.filter((x) => x.state !== 'Removed' || reportsPartition(nodes, rec.id, x.id));
  const changed = rec.replicas.length !== before;
  if (rec.replicas.some((x) => x.state === 'Removed')) return changed;
  rec.relocation = undefined;
  return true;
}
