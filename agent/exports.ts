// The owner side of a volume whose array runs on another node: this node's replicas get their
// partitions and are exported over NVMe-oF to the attached node's host NQN, and to nobody else.
//
// Fencing: nvmet checks its allow-list only when a host connects, so revoking the old host would
// leave its live connection writing. When the attachment moves, an export that allows anybody but
// the new host is removed whole (that drops every connected controller) and made again for the new
// host only; the new node cannot connect before that, because it is not on the old allow-list.
import type { VolumeRecord } from '../state/store.ts';
import type { AgentContext } from './context.ts';
import { ownerFromSubsystemNqn, subsystemNqn } from './host/names.ts';
import type { Drive, ExportInfo, Host, Owner, Partition } from './host/types.ts';
import { holds, partitionOf } from './owners.ts';
import { stillStagedOn } from './reconciler.ts';

export interface ExportPassResult {
  /** Replica partitions created, as volume/replica. */
  created: string[];
  /** Exports made or re-made for a host, as volume/replica -> node. */
  exported: string[];
  /** Exports removed (volume detached, attached here, deleted and unstaged, or unknown to the records). */
  unexported: string[];
  /** Replicas that wait for something expected (retried on the next pass), and what. */
  waiting: { replica: string; reason: string }[];
  /** Replicas whose partition or export failed (retried too, but a user should hear of it). */
  failed: { volume: string; replica: string; reason: string }[];
}

// A Faulty member is exported too, when its partition is still here: the attached node catches it
// up from the bitmap (catch-up.ts). Its partition is never made again: a rebuild replaces it.
const served = (r: VolumeRecord['replicas'][number]) => r.state !== 'Removed';

/**
 * What this pass read of the host once, instead of once per replica: the drives (a partition is
 * only looked up here; creating one is idempotent by GUID, so a stale miss costs nothing) and the
 * exports, kept current as the pass changes them.
 */
interface HostView {
  drives: Drive[];
  exports: Map<string, ExportInfo>;
}

/** One pass over every volume with a replica on this node. Safe to run at any time, any number of times. */
export async function reconcileExports(
  o: AgentContext,
  records: readonly VolumeRecord[],
): Promise<ExportPassResult> {
  const out: ExportPassResult = { created: [], exported: [], unexported: [], waiting: [], failed: [] };
  const byId = new Map(records.map((r) => [r.id, r]));
  const view: HostView = {
    drives: await o.host.listDrives(),
    exports: new Map((await o.host.listExports()).map((e) => [e.nqn, e])),
  };

  // Exports nobody should have: of volumes that are gone, deleted and unstaged, detached, attached here,
  // or of replicas no longer on this node. Removing an export loses no data.
  for (const e of [...view.exports.values()]) {
    const owner = ownerFromSubsystemNqn(e.nqn);
    if (!owner) continue; // not MeshStor's
    if (await keepsExport(o, byId.get(owner.volumeId), owner)) continue;
    let done: boolean;
    try {
      done = await o.locks.tryRun(
        owner.volumeId,
        async () => {
          // Read again: the list may be seconds old, and a node that staged the volume since then
          // may be connecting to this very export (its allow-list already names that node).
          // Removing it under that connect fails the stage's leg.
          if (await keepsExport(o, await o.store.get(owner.volumeId), owner)) return false;
          await o.host.unexport(e.nqn);
          return true;
        },
        false,
      );
    } catch (err) {
      out.failed.push({ volume: owner.volumeId, replica: owner.replicaId, reason: (err as Error).message });
      continue;
    }
    if (!done) continue;
    view.exports.delete(e.nqn);
    out.unexported.push(`${owner.volumeId}/${owner.replicaId}`);
  }

  for (const listed of records) {
    if (listed.phase !== 'Active' || !listed.replicas.some((r) => r.node === o.nodeName)) continue;
    // A volume being staged or unstaged here is left to the next pass: waiting for it would hold
    // up every other volume while NodeStage waits for remote exports.
    let busy: unknown;
    try {
      busy = await o.locks.tryRun(listed.id, () => serveVolume(o, view, listed.id, out), 'busy' as const);
    } catch (e) {
      // the record could not be read again: this volume waits for the next pass, the others go on
      out.failed.push({ volume: listed.id, replica: '*', reason: (e as Error).message });
      continue;
    }
    if (busy === 'busy') out.waiting.push({ replica: listed.id, reason: 'being staged or unstaged here' });
  }
  return out;
}

/** Whether the export of `owner` on this node is still wanted by the volume's record. */
async function keepsExport(o: AgentContext, rec: VolumeRecord | undefined, owner: Owner): Promise<boolean> {
  if (!rec || !wantsExport(rec, owner, o.nodeName)) return false;
  return rec.phase === 'Active' || (await stillStagedOn(rec, o.nodeName, o.peers)) !== undefined;
}

// A volume being deleted keeps the exports its attached node still uses (reconciler.ts,
// stillStagedOn): DeleteVolume can come before kubelet's NodeUnstage, and removing an export then
// fails a leg of the staged array (the unstage waits out ctrl-loss-tmo on it). The unstage clears
// the attachment; the next pass removes the export. No new export is made for such a volume (the
// pass below serves Active ones only).
function wantsExport(rec: VolumeRecord, owner: Owner, nodeName: string): boolean {
  const r = rec.replicas.find((x) => x.id === owner.replicaId);
  return !!r && r.node === nodeName && served(r) && !!rec.attachment && rec.attachment.node !== nodeName;
}

async function serveVolume(
  o: AgentContext,
  view: HostView,
  id: string,
  out: ExportPassResult,
): Promise<void> {
  // Read again under the lock: the list may predate a stage or unstage that just finished here.
  const rec = await o.store.get(id);
  if (rec?.phase !== 'Active') return;
  for (const r of rec.replicas) {
    if (r.node !== o.nodeName || !served(r)) continue;
    try {
      await serveReplica(o, view, rec, r, out);
    } catch (e) {
      out.failed.push({ volume: rec.id, replica: r.id, reason: (e as Error).message });
    }
  }
}

async function serveReplica(
  o: AgentContext,
  view: HostView,
  rec: VolumeRecord,
  r: VolumeRecord['replicas'][number],
  out: ExportPassResult,
): Promise<void> {
  const owner = { volumeId: rec.id, replicaId: r.id };
  const name = `${rec.id}/${r.id}`;
  const part =
    r.state === 'Faulty'
      ? partitionOf(view.drives, owner)
      : await ensurePartition(o.host, rec, r, {
          drives: view.drives,
          onCreate: () => out.created.push(name),
        });
  if (!part) return; // a Faulty member whose partition is gone: nothing to catch up
  const to = rec.attachment;
  if (!to || to.node === o.nodeName) return; // nothing to export; the pass above removed any export
  // This node still runs the array (the old attachment has not unstaged): exporting its member
  // would give the array a second writer.
  const running = await o.host.getArray(rec.id);
  if (running) {
    out.waiting.push({
      replica: name,
      reason: `the array still runs on ${o.nodeName}; exporting waits until it is unstaged here`,
    });
    return;
  }
  const nqn = subsystemNqn(owner);
  const have = view.exports.get(nqn);
  // the pair's keys, every pass: a rotation step reaches nvmet here (written only when they differ)
  const keys = await o.keys?.forGrant(to.node);
  if (have?.allowedHosts.length === 1 && have.allowedHosts[0] === to.hostNqn) {
    if (keys) {
      await o.host.grantHost(nqn, { hostNqn: to.hostNqn, ...keys.keys });
      await keys.taken();
    }
    return;
  }
  if (have) {
    await o.host.unexport(nqn); // fencing: drops the previous host's connection
    view.exports.delete(nqn);
  }
  const made = await o.host.exportReplica({ ...owner, devicePath: part.path, listen: o.listen });
  await o.host.grantHost(nqn, { hostNqn: to.hostNqn, ...keys?.keys });
  await keys?.taken();
  view.exports.set(nqn, { ...made, allowedHosts: [to.hostNqn] });
  out.exported.push(`${name} -> ${to.node}`);
}

/**
 * The replica's partition as the record has it: created at the recorded extent when the disk has
 * none yet, grown (online, same start) when the controller recorded a larger extent.
 */
export async function ensurePartition(
  host: Host,
  rec: VolumeRecord,
  r: VolumeRecord['replicas'][number],
  o: { drives?: readonly Drive[]; onCreate?: () => void } = {},
): Promise<Partition> {
  const drive = (o.drives ?? (await host.listDrives())).find((d) => d.id === r.drive);
  if (!drive) throw new Error(`drive ${r.drive} of replica ${rec.id}/${r.id} is not on this node`);
  const have = drive.partitions.find((p) => holds(p, { volumeId: rec.id, replicaId: r.id }));
  if (have && have.end < r.extent.end)
    return host.growPartition(r.drive, { volumeId: rec.id, replicaId: r.id }, r.extent.end);
  if (have) return have;
  const [made] = await host.createPartitions(r.drive, [
    { volumeId: rec.id, replicaId: r.id, extent: r.extent },
  ]);
  if (!made) throw new Error(`internal: partition for ${rec.id}/${r.id} was not created`);
  o.onCreate?.();
  return made;
}
