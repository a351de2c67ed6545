// On the node running a volume's array: a member that left it (its node rebooted, a short outage,
// a stage that assembled without it) catches up from md's write-intent bitmap when it is back:
// `--re-add`, so md resyncs only the chunks written while it was away, never the whole volume.
// A member the bitmap cannot bring back (no superblock of the array, written elsewhere after it
// left, md refusing) is left out and reported: only a rebuild, a new copy, can replace it.
// Every step reads the array first, so a pass killed anywhere resumes on the next one.
import { updateRecord, type VolumeRecord } from '../state/store.ts';
import { type AgentContext, eachVolume, type VolumeFailure } from './context.ts';
import { ReAddRefusedError } from './host/errors.ts';
import { arrayName, subsystemNqn } from './host/names.ts';
import type { ArrayInfo, BitmapInfo, Drive } from './host/types.ts';
import { dropFailedMembers } from './members.ts';
import { partitionOf } from './owners.ts';
import { connectRemoteMember } from './remote-member.ts';

/** One member put back: what the bitmap said it would resync, against the volume's size. */
export interface CatchUp {
  volume: string;
  replica: string;
  node: string;
  /** The bitmap's dirty chunks, whole: what md resyncs onto the member (a chunk may be short at the end). */
  bytesToResync: number;
  volumeBytes: number;
  bitmapChunkBytes: number;
}

/** Bytes a returning member resyncs by the bitmap: its dirty chunks, at most the array. */
export function dirtyBytes(b: BitmapInfo, arrayBytes: number): number {
  return Math.min(b.dirtyChunks * b.chunkBytes, arrayBytes);
}

/** "8 MiB of 512 MiB (1.6%)": how a catch-up is told in Events and logs. */
export function describeCatchUp(c: CatchUp): string {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(n % 2 ** 20 === 0 ? 0 : 1)} MiB`;
  const pct = ((100 * c.bytesToResync) / Math.max(1, c.volumeBytes)).toFixed(1);
  return `replica ${c.replica} on ${c.node} re-added: ${mib(c.bytesToResync)} of ${mib(c.volumeBytes)} to resync (${pct}%, bitmap chunk ${mib(c.bitmapChunkBytes)}), not a full rebuild`;
}

const RELOCATING = new Set(['adding', 'syncing', 'removing']);

/**
 * Whether the array (as this pass read it) may lack a member of the record: a failed entry, or
 * fewer serving members than the record has. In the steady state it has neither, and the volume
 * costs no host call.
 */
function mayLackMember(rec: VolumeRecord, array: ArrayInfo): boolean {
  const live = rec.replicas.filter((r) => r.state !== 'Removed' && r.state !== 'Pending').length;
  const serving = array.members.filter((m) => m.state !== 'faulty').length;
  return serving < live || array.members.some((m) => m.state === 'faulty');
}

/** One pass over the volumes whose array runs here (`arrays`: as the member-state step read them). */
export async function catchUpMembers(
  o: AgentContext,
  records: readonly VolumeRecord[],
  failures: VolumeFailure[],
  arrays: readonly ArrayInfo[],
  drives: () => Promise<Drive[]>,
): Promise<CatchUp[]> {
  const running = new Map(arrays.map((a) => [a.name, a]));
  const here = records.filter((r) => {
    const array = running.get(arrayName(r.id));
    return (
      r.phase === 'Active' &&
      r.attachment?.node === o.nodeName &&
      !!r.arrayUuid &&
      // a relocation adds and removes members itself (relocation.ts)
      !RELOCATING.has(r.relocation?.step ?? '') &&
      !!array &&
      mayLackMember(r, array)
    );
  });
  const out: CatchUp[] = [];
  await eachVolume(o, 'catch-up', here, failures, (listed) =>
    o.locks.tryRun(
      listed.id,
      async () => {
        out.push(...(await catchUpVolume(o, listed.id, await drives())));
        return undefined;
      },
      undefined,
    ),
  );
  return out;
}

async function catchUpVolume(o: AgentContext, id: string, drives: Drive[]): Promise<CatchUp[]> {
  const rec = await o.store.get(id);
  if (!rec || rec.attachment?.node !== o.nodeName) return [];
  let array = await o.host.getArray(rec.id);
  if (!array) return []; // not staged here now
  const serving = new Set(array.members.filter((m) => m.state !== 'faulty').map((m) => m.devicePath));
  const away = rec.replicas.filter((r) => r.state !== 'Removed' && r.state !== 'Pending');
  const done: CatchUp[] = [];
  for (const r of away) {
    const owner = { volumeId: rec.id, replicaId: r.id };
    const local = r.node === o.nodeName;
    // a remote member whose node's agent is not ready is not back, even if its dead controller
    // still shows a device here (it reconnects until ctrl-loss-tmo)
    if (!local && o.peers && !(await o.peers.peer(r.node))?.ready) continue;
    const known = local
      ? partitionOf(drives, owner)?.path
      : await o.host.findDeviceByNqn(subsystemNqn(owner));
    if (known && serving.has(known)) continue;
    // Failed entries first: a failed copy holds nothing the array needs, and a vanished device's
    // entry keeps its old name, which the member's new connection may take.
    array = await dropFailedMembers(o, rec.id, array);
    const dev = known ?? (local ? undefined : await connectRemoteMember(o, rec, r));
    if (!dev) continue; // its partition or its node is not back yet
    const bitmap = await o.host.readBitmap(rec.id);
    try {
      array = await o.host.reAddMember(rec.id, dev);
    } catch (e) {
      if (!(e instanceof ReAddRefusedError)) throw e;
      throw new Error(`replica ${r.id} on ${r.node} cannot catch up and needs a rebuild: ${e.message}`);
    }
    await updateRecord(o.store, rec.id, (x) => {
      const m = x.replicas.find((y) => y.id === r.id);
      if (!m || m.state === 'Syncing') return false;
      m.state = 'Syncing';
      return true;
    });
    done.push({
      volume: rec.id,
      replica: r.id,
      node: r.node,
      bytesToResync: dirtyBytes(bitmap, array.sizeBytes),
      volumeBytes: rec.sizeBytes,
      bitmapChunkBytes: bitmap.chunkBytes,
    });
  }
  return done;
}
