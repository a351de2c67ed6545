// On the node that runs a volume's array: the record's member states follow what md reports (a
// member that failed, or one that is rebuilding), and a member whose device is gone is Faulty.
import { updateRecord, type VolumeRecord, type VolumeStore } from '../state/store.ts';
import { type AgentContext, eachVolume, type VolumeFailure } from './context.ts';
import { subsystemNqn } from './host/names.ts';
import type { ArrayInfo, Drive, MdMemberState } from './host/types.ts';
import { partitionOf } from './owners.ts';

/** What md's state of an array member means in the record's vocabulary. */
export const MEMBER_FROM_ARRAY: Record<MdMemberState, VolumeRecord['replicas'][number]['state']> = {
  in_sync: 'InSync',
  rebuilding: 'Syncing',
  spare: 'Syncing',
  faulty: 'Faulty',
};

/** Returns the volumes whose record changed; a volume that fails is in `failures`, the others go on. */
export async function reportMemberStates(
  o: AgentContext,
  records: readonly VolumeRecord[],
  failures: VolumeFailure[],
  /** Collects every array running here (for the resync metrics and the steps after this one). */
  arrays: ArrayInfo[] = [],
  /** This node's drives, read once per pass (the pass shares one read between its steps). */
  readDrives: () => Promise<Drive[]> = () => o.host.listDrives(),
): Promise<string[]> {
  let drives: Drive[] | undefined; // read once, and only if an array runs here
  const attachedHere = records.filter((r) => r.phase === 'Active' && r.attachment?.node === o.nodeName);
  return eachVolume(o, 'members', attachedHere, failures, async (rec) => {
    const array = await o.host.getArray(rec.id);
    if (!array) return undefined;
    arrays.push(array);
    drives ??= await readDrives();
    const stateOf = new Map(array.members.map((m) => [m.devicePath, m.state]));
    const next = new Map<string, VolumeRecord['replicas'][number]['state']>();
    for (const r of rec.replicas) {
      const device =
        r.node === o.nodeName
          ? partitionOf(drives, { volumeId: rec.id, replicaId: r.id })?.path
          : await o.host.findDeviceByNqn(subsystemNqn({ volumeId: rec.id, replicaId: r.id }));
      const s = device ? stateOf.get(device) : undefined;
      if (s) next.set(r.id, MEMBER_FROM_ARRAY[s]);
      // A serving member with no device here any more (its node went away and the connection was
      // given up after ctrl-loss-tmo) is not serving: the volume is degraded until it is caught up
      // or rebuilt (controller/rebuild.ts).
      else if (!device && (r.state === 'InSync' || r.state === 'Syncing')) next.set(r.id, 'Faulty');
    }
    return (await writeMemberStates(o.store, rec.id, next)) ? rec.id : undefined;
  });
}

/**
 * Writes members' states (and the array's UUID, once it exists) into the record; returns whether
 * anything changed. Members not in `states` keep theirs.
 */
export async function writeMemberStates(
  store: VolumeStore,
  id: string,
  states: ReadonlyMap<string, VolumeRecord['replicas'][number]['state']>,
  arrayUuid?: string,
): Promise<boolean> {
  let wrote = false;
  await updateRecord(store, id, (r) => {
    wrote = arrayUuid !== undefined && r.arrayUuid !== arrayUuid;
    if (arrayUuid !== undefined) r.arrayUuid = arrayUuid;
    for (const x of r.replicas) {
      const s = states.get(x.id);
      if (s && s !== x.state) {
        x.state = s;
        wrote = true;
      }
    }
    return wrote;
  });
  return wrote;
}

/** Takes md's failed entries out of the array: a failed copy holds nothing the array needs. */
export async function dropFailedMembers(o: AgentContext, id: string, array: ArrayInfo): Promise<ArrayInfo> {
  let info = array;
  for (const m of array.members) if (m.state === 'faulty') info = await o.host.removeMember(id, m.devicePath);
  return info;
}
