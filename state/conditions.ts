// The Ready condition of a MeshStorVolume, from its record: what `kubectl get meshstorvolumes`
// shows in its Ready column and what a user reads first when something is wrong.
import type { Condition } from '../kube/crds.ts';
import type { VolumeRecord } from './store.ts';

export function readyCondition(r: VolumeRecord): Omit<Condition, 'lastTransitionTime'> {
  const live = r.replicas.filter((x) => x.state !== 'Removed');
  const faulty = live.filter((x) => x.state === 'Faulty');
  const syncing = live.filter((x) => x.state === 'Syncing');
  const inSync = live.filter((x) => x.state === 'InSync');
  const names = (xs: typeof live) => xs.map((x) => `${x.id} on ${x.node}`).join(', ');
  if (r.phase === 'Deleting')
    return { type: 'Ready', status: 'False', reason: 'Deleting', message: 'waiting for the agents to wipe' };
  const reloc = r.relocation;
  const running = reloc && ['adding', 'syncing', 'removing'].includes(reloc.step);
  const pct = reloc?.bytesTotal ? Math.floor((100 * (reloc.bytesDone ?? 0)) / reloc.bytesTotal) : 0;
  // A move whose leaving member is Faulty is a rebuild (controller/rebuild.ts): it replaces a lost copy.
  const lost = running ? live.find((x) => x.id === reloc.fromReplica && x.state === 'Faulty') : undefined;
  if (reloc && lost) {
    return {
      type: 'Ready',
      status: inSync.length > 0 ? 'True' : 'False',
      reason: 'Rebuilding',
      message: `rebuilding ${lost.id} (on ${lost.node}, lost) as ${reloc.toReplica} on ${reloc.toNode}: ${reloc.step} ${pct}%; ${inSync.length} of ${r.replicaCount} copies in sync`,
    };
  }
  if (faulty.length > 0) {
    return {
      type: 'Ready',
      status: inSync.length > 0 ? 'True' : 'False',
      reason: 'Degraded',
      message: `${inSync.length} of ${r.replicaCount} copies in sync; faulty: ${names(faulty)}`,
    };
  }
  if (reloc && running) {
    return {
      type: 'Ready',
      status: 'True',
      reason: 'Relocating',
      message: `moving ${reloc.fromReplica} to ${reloc.toNode} as ${reloc.toReplica}: ${reloc.step} ${pct}%`,
    };
  }
  if (syncing.length > 0)
    return { type: 'Ready', status: 'True', reason: 'Syncing', message: `syncing: ${names(syncing)}` };
  if (!r.arrayUuid)
    return { type: 'Ready', status: 'True', reason: 'Provisioned', message: 'not staged on any node yet' };
  return {
    type: 'Ready',
    status: 'True',
    reason: 'InSync',
    message: `${inSync.length} of ${r.replicaCount} copies in sync${r.attachment ? `; attached to ${r.attachment.node}` : ''}`,
  };
}

/** The conditions to write: `next` replaces its type, keeping the transition time while the status holds. */
export function withCondition(
  conditions: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now = new Date(),
): Condition[] {
  const was = conditions?.find((c) => c.type === next.type);
  const lastTransitionTime =
    was && was.status === next.status && was.lastTransitionTime ? was.lastTransitionTime : now.toISOString();
  return [...(conditions ?? []).filter((c) => c.type !== next.type), { ...next, lastTransitionTime }];
}
