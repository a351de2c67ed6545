// The attached node's half of relocation (the controller's is controller/relocator.ts): add the new member
// to the running array, let md resync it, then remove the leaving member. Add before remove: the
// leaving member goes only once the new one is in sync, and the Host refuses to remove the last
// in-sync member whatever the record says. Every step reads the array first and does only what is
// missing, so a pass killed anywhere resumes on the next one.
import { type Relocation, updateRecord, type VolumeRecord } from '../state/store.ts';
import { type AgentContext, eachVolume, type VolumeFailure } from './context.ts';
import { ensurePartition } from './exports.ts';
import { subsystemNqn } from './host/names.ts';
import type { ArrayInfo } from './host/types.ts';
import { dropFailedMembers } from './members.ts';
import { partitionOf } from './owners.ts';
import { connectRemoteMember } from './remote-member.ts';

export interface RelocationProgress {
  volume: string;
  step: string;
  bytesDone?: number | undefined;
}

type Replica = VolumeRecord['replicas'][number];

/** One pass over the relocations of volumes whose array runs on this node. */
export async function advanceRelocations(
  o: AgentContext,
  records: readonly VolumeRecord[],
  failures: VolumeFailure[],
): Promise<RelocationProgress[]> {
  const moving = records.filter((listed) => {
    const step = listed.relocation?.step;
    if (listed.phase !== 'Active' || listed.attachment?.node !== o.nodeName) return false;
    return step === 'adding' || step === 'syncing' || step === 'removing' || step === 'cancelled';
  });
  return eachVolume(o, 'relocation', moving, failures, (listed) =>
    o.locks.tryRun(listed.id, () => advance(o, listed.id), undefined),
  );
}

/**
 * The member's block device on this node: its partition here, or its connected namespace.
 * `create` (only for the member being added): make the partition if the disk has none yet, or
 * connect the namespace when its node's agent exports it here.
 */
export async function deviceOf(
  o: Pick<AgentContext, 'nodeName' | 'host' | 'peers'>,
  rec: VolumeRecord,
  r: Replica,
  create: boolean,
): Promise<string | undefined> {
  const owner = { volumeId: rec.id, replicaId: r.id };
  if (r.node !== o.nodeName)
    return create ? connectRemoteMember(o, rec, r) : o.host.findDeviceByNqn(subsystemNqn(owner));
  if (create) return (await ensurePartition(o.host, rec, r)).path;
  return partitionOf(await o.host.listDrives(), owner)?.path;
}

/** Writes the relocation's step, and the new state of one member, into the record. */
async function recordStep(
  o: AgentContext,
  id: string,
  step: Relocation['step'],
  member: { id: string; state: Replica['state'] },
  bytesDone?: number,
): Promise<void> {
  await updateRecord(o.store, id, (r) => {
    if (!r.relocation) return false;
    r.relocation.step = step;
    if (bytesDone !== undefined) r.relocation.bytesDone = bytesDone;
    const x = r.replicas.find((y) => y.id === member.id);
    if (x) x.state = member.state;
    return true;
  });
}

async function advance(o: AgentContext, id: string): Promise<RelocationProgress | undefined> {
  const rec = await o.store.get(id);
  const reloc = rec?.relocation;
  if (!rec || !reloc || rec.attachment?.node !== o.nodeName) return undefined;
  const array = await o.host.getArray(rec.id);
  if (!array) return undefined; // not staged here now: resumes when it is
  const adding = rec.replicas.find((r) => r.id === reloc.toReplica);
  const leaving = rec.replicas.find((r) => r.id === reloc.fromReplica);
  if (!adding || !leaving) return undefined;
  if (reloc.step === 'cancelled') return takeBack(o, rec, adding);
  const addDev = await deviceOf(o, rec, adding, true);
  if (!addDev) {
    // A new member on another node (a drain's destination): connected once its owner exports it here.
    return { volume: rec.id, step: `waiting for ${adding.node} to export the new member` };
  }

  let info: ArrayInfo = array;
  const liveCount = rec.replicas.filter((r) => r.state !== 'Removed').length;
  // A full copy: capped per array (idempotent, so a resumed pass sets it again).
  if (o.resyncMaxKibPerSec !== undefined && reloc.step !== 'removing')
    await o.host.setResyncSpeedLimit(rec.id, o.resyncMaxKibPerSec);
  if (!info.members.some((m) => m.devicePath === addDev)) info = await o.host.addMember(rec.id, addDev);
  // One more active slot, so md makes the new member active and resyncs onto it.
  if (info.raidDevices < liveCount && reloc.step !== 'removing')
    info = await o.host.setRaidDevices(rec.id, liveCount);
  const added = info.members.find((m) => m.devicePath === addDev);
  if (added?.state !== 'in_sync') {
    const done = Math.floor((info.syncProgress ?? 0) * rec.sizeBytes);
    await recordStep(o, rec.id, 'syncing', { id: adding.id, state: 'Syncing' }, done);
    return { volume: rec.id, step: 'syncing', bytesDone: done };
  }

  // The new member is in sync: the leaving one goes (the Host refuses if it is the last copy).
  await recordStep(o, rec.id, 'removing', { id: adding.id, state: 'InSync' }, rec.sizeBytes);
  const leaveDev = await deviceOf(o, rec, leaving, false);
  if (leaveDev && info.members.some((m) => m.devicePath === leaveDev))
    info = await o.host.removeMember(rec.id, leaveDev);
  // A leaving member whose node is gone (a rebuild) has no device here any more: its failed entry
  // goes instead (a failed copy holds nothing), so raid-devices can shrink back.
  if (!leaveDev) info = await dropFailedMembers(o, rec.id, info);
  const target = rec.replicaCount;
  if (info.raidDevices > target) info = await o.host.setRaidDevices(rec.id, target);
  if (leaving.node !== o.nodeName)
    await o.host.disconnect(subsystemNqn({ volumeId: rec.id, replicaId: leaving.id }));
  await recordStep(o, rec.id, 'done', { id: leaving.id, state: 'Removed' });
  return { volume: rec.id, step: 'done' };
}

/** The controller took the new member back: out of the array again, if it got in. */
async function takeBack(
  o: AgentContext,
  rec: VolumeRecord,
  adding: Replica,
): Promise<RelocationProgress | undefined> {
  const dev = await deviceOf(o, rec, adding, false);
  let info = await o.host.getArray(rec.id);
  if (!dev || !info?.members.some((m) => m.devicePath === dev)) return undefined;
  info = await o.host.removeMember(rec.id, dev);
  if (info.raidDevices > rec.replicaCount) await o.host.setRaidDevices(rec.id, rec.replicaCount);
  return { volume: rec.id, step: 'cancelled' };
}
