// The agent's half of snapshots and restores (docs/adr/0010-snapshots.md; the controller's is
// controller/snapshots.ts).
// Capture, on the node running the source's array: the snapshot's partition is added as an extra
// member (raid-devices n+1, md resyncs onto it), and once in sync it is detached under a filesystem
// freeze and raid-devices goes back: the source never loses a member. Seed, at a restored volume's
// first stage: the snapshot member's data is copied onto the new array before anything reads it.
// Every step reads the array first and does only what is missing, so a pass killed anywhere
// resumes; `detaching` is recorded before the freeze, and a pass finding it thaws first.
import { setTimeout as sleep } from 'node:timers/promises';
import { isSnapshot, snapshotMember } from '../state/snapshots.ts';
import { updateRecord, type VolumeRecord } from '../state/store.ts';
import { type AgentContext, eachVolume, type VolumeFailure } from './context.ts';
import { VolumeRefusal } from './errors.ts';
import { subsystemNqn } from './host/names.ts';
import type { ArrayInfo } from './host/types.ts';
import { deviceOf } from './relocation.ts';

export interface CaptureProgress {
  volume: string;
  snapshot: string;
  step: string;
  bytesDone?: number | undefined;
}

type Replica = VolumeRecord['replicas'][number];
/** What the snapshot steps use of the agent's context (the node service has these too). */
type StepContext = Pick<AgentContext, 'nodeName' | 'host' | 'store' | 'peers'>;

/** One pass over the captures of volumes whose array runs on this node. */
export async function advanceCaptures(
  o: AgentContext,
  records: readonly VolumeRecord[],
  failures: VolumeFailure[],
): Promise<CaptureProgress[]> {
  const capturing = records.filter(
    (r) => r.phase === 'Active' && r.capture && r.attachment?.node === o.nodeName,
  );
  return eachVolume(o, 'snapshot', capturing, failures, (listed) =>
    o.locks.tryRun(listed.id, () => advance(o, listed.id), undefined),
  );
}

/** The snapshot record names this node as where its member is used, so its owner exports it here. */
async function useHere(o: StepContext, snapshotId: string, on: boolean): Promise<void> {
  await updateRecord(o.store, snapshotId, (s) => {
    const here = s.attachment?.node === o.nodeName;
    if (on === here) return false;
    s.attachment = on ? { node: o.nodeName, hostNqn: o.host.hostNqn } : undefined;
    return true;
  });
}

async function recordStep(
  o: AgentContext,
  id: string,
  snapshot: string,
  step: NonNullable<VolumeRecord['capture']>['step'],
  bytesDone?: number,
): Promise<void> {
  await updateRecord(o.store, id, (r) => {
    if (r.capture?.snapshot !== snapshot) return false;
    if (r.capture.step === step && bytesDone === undefined) return false;
    r.capture.step = step;
    if (bytesDone !== undefined) r.capture.bytesDone = bytesDone;
    return true;
  });
}

/** The members the source has in its record: what raid-devices returns to after the detach. */
const ownMembers = (rec: VolumeRecord) => rec.replicas.filter((r) => r.state !== 'Removed').length;

async function advance(o: AgentContext, id: string): Promise<CaptureProgress | undefined> {
  const rec = await o.store.get(id);
  const c = rec?.capture;
  if (!rec || !c || rec.attachment?.node !== o.nodeName) return undefined;
  const array = await o.host.getArray(rec.id);
  if (!array) return undefined; // not running here now: resumes when it is
  const snap = await o.store.get(c.snapshot);
  const member = snap && isSnapshot(snap) ? snapshotMember(snap) : undefined;
  if (!snap || !member || snap.phase === 'Deleting') return takeBack(o, rec, array, snap, member);
  const step = (s: string, bytesDone?: number) => ({ volume: rec.id, snapshot: snap.id, step: s, bytesDone });
  if (c.step === 'detached') return finish(o, rec, snap, member);
  // a relocation changes raid-devices too: one at a time
  const moving = rec.relocation && rec.relocation.step !== 'done' && rec.relocation.step !== 'cancelled';
  if (moving && c.step !== 'detaching') return step('waiting for the relocation to end');

  // Resuming a detach killed after the freeze: thaw before anything else.
  if (c.step === 'detaching') await o.host.thawFilesystem(array.devicePath);
  await useHere(o, snap.id, true);
  const dev = await deviceOf(o, snap, member, c.step !== 'detaching');
  if (!dev) return step(`waiting for ${member.node} to export the snapshot's member`);
  let info: ArrayInfo = array;
  const inArray = () => info.members.find((m) => m.devicePath === dev);
  if (c.step !== 'detaching') {
    if (!inArray()) info = await o.host.addMember(rec.id, dev);
    // one more active slot, so md makes the member active and resyncs onto it
    if (info.raidDevices < ownMembers(rec) + 1)
      info = await o.host.setRaidDevices(rec.id, ownMembers(rec) + 1);
    if (inArray()?.state !== 'in_sync') {
      const done = Math.floor((info.syncProgress ?? 0) * rec.sizeBytes);
      await recordStep(o, rec.id, snap.id, 'syncing', done);
      return step('syncing', done);
    }
    await recordStep(o, rec.id, snap.id, 'detaching', rec.sizeBytes);
  }
  await detach(o, rec, info, inArray() ? dev : undefined);
  await recordStep(o, rec.id, snap.id, 'detached');
  return finish(o, rec, snap, member);
}

/**
 * Detaches the snapshot's member (when still in the array) under a freeze of the mounted
 * filesystem, thawed whatever happens, and gives raid-devices back its old count.
 */
async function detach(o: AgentContext, rec: VolumeRecord, info: ArrayInfo, dev: string | undefined) {
  if (dev) {
    await o.host.freezeFilesystem(info.devicePath);
    try {
      info = await o.host.removeMember(rec.id, dev);
    } finally {
      await o.host.thawFilesystem(info.devicePath);
    }
  }
  const slotted = info.members.filter((m) => m.state !== 'spare' && m.state !== 'faulty').length;
  const back = Math.max(ownMembers(rec), slotted);
  if (info.raidDevices > back) await o.host.setRaidDevices(rec.id, back);
}

/** The member is out and complete: disconnected, the snapshot ready, then the capture cleared. */
async function finish(
  o: AgentContext,
  rec: VolumeRecord,
  snap: VolumeRecord,
  member: Replica,
): Promise<CaptureProgress> {
  if (member.node !== o.nodeName)
    await o.host.disconnect(subsystemNqn({ volumeId: snap.id, replicaId: member.id }));
  await updateRecord(o.store, snap.id, (s) => {
    if (!s.snapshot || (s.snapshot.readyToUse && !s.attachment)) return false;
    s.snapshot.readyToUse = true;
    s.attachment = undefined;
    return true;
  });
  await clearCapture(o, rec.id, snap.id);
  return { volume: rec.id, snapshot: snap.id, step: 'done' };
}

async function clearCapture(o: AgentContext, id: string, snapshot: string): Promise<void> {
  await updateRecord(o.store, id, (r) => {
    if (r.capture?.snapshot !== snapshot) return false;
    r.capture = undefined;
    return true;
  });
}

/** The snapshot was deleted (or never written) while its capture ran: its member goes back out. */
async function takeBack(
  o: AgentContext,
  rec: VolumeRecord,
  array: ArrayInfo,
  snap: VolumeRecord | undefined,
  member: Replica | undefined,
): Promise<CaptureProgress> {
  const snapshot = rec.capture?.snapshot ?? '';
  await o.host.thawFilesystem(array.devicePath);
  const dev = snap && member ? await deviceOf(o, snap, member, false) : undefined;
  const inArray = dev && array.members.some((m) => m.devicePath === dev) ? dev : undefined;
  await detach(o, rec, array, inArray);
  if (snap && member && member.node !== o.nodeName)
    await o.host.disconnect(subsystemNqn({ volumeId: snap.id, replicaId: member.id }));
  if (snap) await useHere(o, snap.id, false);
  await clearCapture(o, rec.id, snapshot);
  return { volume: rec.id, snapshot, step: 'cancelled' };
}

/**
 * Fills a restored volume from its snapshot at its first stage, before anything reads the array
 * (the caller runs it before the mkfs check): the snapshot member's data is copied onto the array
 * and the seed recorded done. A kill before `done` is written copies again (a full overwrite).
 * A snapshot member on another node is connected once its owner exports it here (until then the
 * stage is refused as unavailable and kubelet retries). A clone's internal snapshot is deleted
 * once its clone is seeded.
 */
export async function seedVolume(
  o: StepContext,
  rec: VolumeRecord,
  arrayDevice: string,
  wait: { ms: number; signal?: AbortSignal | undefined } = { ms: 30_000 },
): Promise<void> {
  const host = o.host;
  const seed = rec.seed;
  if (!seed || seed.done) return;
  const until = Date.now() + wait.ms;
  const pause = () => sleep(250, undefined, { signal: wait.signal });
  // a clone's internal snapshot may still be capturing: the source's agent finishes it meanwhile
  let snap = await o.store.get(seed.snapshot);
  while (!snap?.snapshot?.readyToUse && snap?.phase === 'Active' && Date.now() < until) {
    await pause();
    snap = await o.store.get(seed.snapshot);
  }
  const member = snap && isSnapshot(snap) ? snapshotMember(snap) : undefined;
  if (!snap || !member || !snap.snapshot?.readyToUse)
    throw new VolumeRefusal(
      'unavailable',
      `volume ${rec.id}: snapshot ${seed.snapshot} is not ready to restore from`,
    );
  await useHere(o, snap.id, true);
  let dev = await deviceOf(o, snap, member, true);
  // its owner exports it here on its next pass, as for a remote member at stage
  while (!dev && Date.now() < until) {
    await pause();
    dev = await deviceOf(o, snap, member, true);
  }
  if (!dev)
    throw new VolumeRefusal(
      'unavailable',
      `volume ${rec.id}: waiting for ${member.node} to export snapshot ${snap.id} to ${o.nodeName}`,
    );
  await host.copyMemberData(dev, arrayDevice);
  await updateRecord(o.store, rec.id, (r) => {
    if (!r.seed || r.seed.done) return false;
    r.seed.done = true;
    return true;
  });
  if (member.node !== o.nodeName)
    await host.disconnect(subsystemNqn({ volumeId: snap.id, replicaId: member.id }));
  await useHere(o, snap.id, false);
  if (seed.fromVolume)
    await updateRecord(o.store, snap.id, (s) => {
      if (s.phase === 'Deleting') return false;
      s.phase = 'Deleting';
      return true;
    });
}
