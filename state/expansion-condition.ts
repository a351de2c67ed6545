// The Expanding condition of a MeshStorVolume: a pending expansion whose members move to larger
// extents before the volume grows (controller/expansion.ts, ADR 0009), with the move's progress.
// Absent on volumes that never waited for one; False once the expansion is over.
import type { Condition } from '../kube/crds.ts';
import { withCondition } from './conditions.ts';
import type { VolumeRecord } from './store.ts';

/**
 * The running move in words: "moving r0 to a larger extent on n1 as r2" when the new member is
 * larger than the one it replaces (a move for this expansion), else the relocation it waits behind.
 */
export function moveInWords(r: VolumeRecord): string | undefined {
  const m = r.relocation;
  if (!m) return undefined;
  const bytes = (id: string) => {
    const x = r.replicas.find((y) => y.id === id);
    return x ? x.extent.end - x.extent.start : 0;
  };
  const larger = bytes(m.toReplica) > bytes(m.fromReplica) ? ' to a larger extent' : '';
  return `moving ${m.fromReplica}${larger} on ${m.toNode} as ${m.toReplica}`;
}

export function expandingCondition(r: VolumeRecord): Omit<Condition, 'lastTransitionTime'> | undefined {
  const e = r.expansion;
  if (!e) return undefined;
  const to = `growing from ${r.sizeBytes} to ${e.sizeBytes} bytes`;
  const m = r.relocation;
  if (m && ['adding', 'syncing', 'removing'].includes(m.step)) {
    const pct = m.bytesTotal ? Math.floor((100 * (m.bytesDone ?? 0)) / m.bytesTotal) : 0;
    return {
      type: 'Expanding',
      status: 'True',
      reason: 'RelocatingForGrowth',
      message: `${to}: ${moveInWords(r)}: ${m.step} ${pct}%`,
    };
  }
  if (e.waiting)
    return { type: 'Expanding', status: 'True', reason: 'Waiting', message: `${to}: ${e.waiting}` };
  return { type: 'Expanding', status: 'True', reason: 'Growing', message: to };
}

/** `conditions` with the Expanding condition for `r`: set while it expands, False once it is over. */
export function withExpanding(conditions: Condition[], r: VolumeRecord, now = new Date()): Condition[] {
  const next = expandingCondition(r);
  if (next) return withCondition(conditions, next, now);
  const was = conditions.find((c) => c.type === 'Expanding');
  if (!was || was.status === 'False') return conditions;
  return withCondition(
    conditions,
    { type: 'Expanding', status: 'False', reason: 'Expanded', message: `${r.sizeBytes} bytes` },
    now,
  );
}
