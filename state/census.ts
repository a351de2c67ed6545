// The volume records counted for the controller's metrics (kube/metrics.ts VolumeMetrics): volumes
// by the reason of their Ready condition, members by state, relocations and the bytes they have left.
import type { VolumeCensus } from '../kube/metrics.ts';
import type { MemberState } from '../placement/model.ts';
import { readyCondition } from './conditions.ts';
import type { VolumeRecord } from './store.ts';

/** Every Ready reason readyCondition gives: each is reported, zero included, so a graph has no gaps. */
export const VOLUME_STATES = [
  'InSync',
  'Syncing',
  'Relocating',
  'Rebuilding',
  'Degraded',
  'Provisioned',
  'Deleting',
] as const;
export const MEMBER_STATES: readonly MemberState[] = ['Pending', 'Syncing', 'InSync', 'Faulty', 'Removed'];
const MOVING = new Set(['adding', 'syncing', 'removing']);

export function volumeCensus(records: readonly VolumeRecord[]): VolumeCensus {
  const volumes: Record<string, number> = Object.fromEntries(VOLUME_STATES.map((s) => [s, 0]));
  const members: Record<string, number> = Object.fromEntries(MEMBER_STATES.map((s) => [s, 0]));
  let relocations = 0;
  let relocationBytesRemaining = 0;
  for (const r of records) {
    const reason = readyCondition(r).reason ?? 'Unknown';
    volumes[reason] = (volumes[reason] ?? 0) + 1;
    for (const m of r.replicas) members[m.state] = (members[m.state] ?? 0) + 1;
    const reloc = r.relocation;
    if (reloc && MOVING.has(reloc.step)) {
      relocations++;
      // before md reports progress the whole member is still to copy
      const total = reloc.bytesTotal ?? r.sizeBytes;
      relocationBytesRemaining += Math.max(0, total - (reloc.bytesDone ?? 0));
    }
  }
  return { volumes, members, relocations, relocationBytesRemaining };
}
