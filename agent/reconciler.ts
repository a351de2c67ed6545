// The agent's clean-up pass over the volumes that involve this node: a volume being deleted, and a
// member a relocation or a rebuild removed, have their local partitions wiped and deleted once nothing uses
// them (the Host refuses while an array, an export or a mount still holds one); the node is then
// re-published, so the controller sees the partitions gone and releases their extents.
//
// A volume deleted while still staged (DeleteVolume can come before kubelet's NodeUnstage: nothing
// orders them when there is no attach step) keeps every partition, here and on its other nodes,
// until the unstage clears its attachment. Wiping a member on another node would pull a live leg
// out from under the staged array, and the unstage would then wait out ctrl-loss-tmo on it.
// A node whose agent no longer reports is not waited for: its unstage may never come, and the
// data is being deleted anyway.
import { type PeerDirectory, updateRecord, type VolumeRecord } from '../state/store.ts';
import type { AgentContext } from './context.ts';
import { DeviceInUseError } from './host/errors.ts';
import type { Host } from './host/types.ts';
import { withOwners } from './owners.ts';

export interface ReconcileResult {
  /** Partitions wiped and deleted, as node/drive/volume/replica. */
  wiped: string[];
  waiting: { partition: string; reason: string }[];
  /** Partitions whose wipe failed for another reason; the others were still worked on. */
  failed: { partition: string; reason: string }[];
}

const moveRunning = (v: VolumeRecord) => ['adding', 'syncing', 'removing'].includes(v.relocation?.step ?? '');

/**
 * The node a volume being deleted is still staged on, while its array there may still use the
 * volume's members: this node, or another whose agent reports Ready (all of them without a peer
 * directory). Undefined once unstaged, or when that node's agent is gone.
 */
export async function stillStagedOn(
  rec: VolumeRecord,
  nodeName: string,
  peers: PeerDirectory | undefined,
): Promise<string | undefined> {
  const node = rec.attachment?.node;
  if (!node || node === nodeName || !peers) return node;
  return (await peers.peer(node))?.ready ? node : undefined;
}

/**
 * Volumes being deleted that the record attaches here while no array of theirs runs here: nothing
 * is staged (the node restarted before kubelet unstaged them, or an unstage stopped the array and
 * died before clearing the attachment), so the attachment goes and every node may wipe. Under
 * the volume's lock: a NodeStage or NodeUnstage running here goes first. Returns the volume ids.
 */
export async function dropStaleAttachments(
  o: Pick<AgentContext, 'nodeName' | 'host' | 'store' | 'locks'>,
  records: readonly VolumeRecord[],
): Promise<string[]> {
  const dropped: string[] = [];
  for (const rec of records) {
    if (rec.phase !== 'Deleting' || rec.attachment?.node !== o.nodeName) continue;
    const done = await o.locks.tryRun(
      rec.id,
      async () => {
        if (await o.host.getArray(rec.id)) return false;
        // true only when this call cleared it (not when an unstage got there first)
        let cleared = false;
        await updateRecord(o.store, rec.id, (r) => {
          cleared = r.phase === 'Deleting' && r.attachment?.node === o.nodeName;
          if (cleared) r.attachment = undefined;
          return cleared;
        });
        return cleared;
      },
      false,
    );
    if (done) dropped.push(rec.id);
  }
  return dropped;
}

export async function reconcileDeletions(
  nodeName: string,
  host: Host,
  records: readonly VolumeRecord[],
  peers?: PeerDirectory,
): Promise<ReconcileResult> {
  const deleting = new Map(records.filter((v) => v.phase === 'Deleting').map((v) => [v.id, v]));
  // Members a finished move removed (or a cancelled one took back), still on this node: a
  // relocation's leaving member, or a rebuild's lost one once its node is back. None while a move
  // of the volume runs.
  const removed = new Set(
    records
      .filter((v) => v.phase === 'Active' && !moveRunning(v))
      .flatMap((v) =>
        v.replicas.filter((r) => r.node === nodeName && r.state === 'Removed').map((r) => `${v.id}/${r.id}`),
      ),
  );
  const out: ReconcileResult = { wiped: [], waiting: [], failed: [] };
  for (const d of withOwners(await host.listDrives(), records, nodeName)) {
    for (const p of d.partitions) {
      // Only partitions of volumes being deleted and removed members. One whose volume has no
      // record at all is drift: it is reported (the MeshStorNode lists it), never deleted on a guess.
      if (!p.owner) continue;
      const whole = deleting.has(p.owner.volumeId);
      if (!whole && !removed.has(`${p.owner.volumeId}/${p.owner.replicaId}`)) continue;
      const name = `${nodeName}/${d.id}/${p.owner.volumeId}/${p.owner.replicaId}`;
      const rec = whole ? deleting.get(p.owner.volumeId) : undefined;
      const stagedOn = rec ? await stillStagedOn(rec, nodeName, peers) : undefined;
      if (stagedOn) {
        out.waiting.push({
          partition: name,
          reason: `volume ${p.owner.volumeId} is still staged on ${stagedOn}: its partitions are wiped once it is unstaged there`,
        });
        continue;
      }
      try {
        // A live volume's array is never stopped here: the Host refuses to wipe a member anyway.
        if (whole) await host.stopArray(p.owner.volumeId);
        await host.wipePartition(d.id, p.owner);
        await host.deletePartition(d.id, p.owner);
        out.wiped.push(name);
      } catch (e) {
        // In use is expected (retried next pass); anything else is this partition's failure alone.
        if (e instanceof DeviceInUseError) out.waiting.push({ partition: name, reason: e.message });
        else out.failed.push({ partition: name, reason: (e as Error).message });
      }
    }
  }
  return out;
}
