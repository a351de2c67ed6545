// On the node running a volume's array: while a member is on another node (after a reschedule,
// before relocation finishes; or a replicaCount=2 volume with one local copy), md should read from
// the local leg: remote members are marked write-mostly, so reads go to the local in-sync member
// and writes still go to every member before they are acknowledged. Never write-behind: it would
// acknowledge writes the remote copy does not have yet. With no local in-sync member the marks are
// cleared, so reads spread over the remote legs again.
import type { VolumeRecord } from '../state/store.ts';
import { type AgentContext, eachVolume, type VolumeFailure } from './context.ts';
import { arrayName } from './host/names.ts';
import type { ArrayInfo, Drive } from './host/types.ts';
import { partitionOf } from './owners.ts';

/**
 * Returns the volumes whose marks changed. `arrays`: the arrays running here as this pass read
 * them (the member-state step); `drives`: this node's drives, read once per pass.
 */
export async function preferLocalReads(
  o: AgentContext,
  records: readonly VolumeRecord[],
  failures: VolumeFailure[],
  arrays: readonly ArrayInfo[],
  drives: () => Promise<Drive[]>,
): Promise<string[]> {
  const running = new Map(arrays.map((a) => [a.name, a]));
  const here = records.filter(
    (r) => r.phase === 'Active' && r.attachment?.node === o.nodeName && running.has(arrayName(r.id)),
  );
  return eachVolume(o, 'read-preference', here, failures, async (rec) => {
    const array = running.get(arrayName(rec.id));
    if (!array) return undefined;
    const onDisk = await drives();
    const local = new Set<string>();
    for (const r of rec.replicas) {
      if (r.node !== o.nodeName) continue;
      const p = partitionOf(onDisk, { volumeId: rec.id, replicaId: r.id });
      if (p) local.add(p.path);
    }
    const localInSync = array.members.some((m) => local.has(m.devicePath) && m.state === 'in_sync');
    let changed = false;
    for (const m of array.members) {
      if (m.state === 'faulty') continue;
      const want = localInSync && !local.has(m.devicePath);
      if (m.writeMostly === want) continue;
      await o.host.setWriteMostly(rec.id, m.devicePath, want);
      changed = true;
    }
    return changed ? rec.id : undefined;
  });
}
