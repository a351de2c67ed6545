// One round of the agent's resync loop: every step over ONE list of the volumes (from the watch
// cache in `meshstor agent`), in an order where each step's writes are seen by the next round.
// Each step works volume by volume: one volume that fails is reported and the others go on, and a
// step that fails as a whole (its host read failed) does not stop the next step.
// `meshstor agent` (through AgentLoop) and the in-process test clusters run exactly this.
import type { VolumeRecord } from '../state/store.ts';
import { type CatchUp, catchUpMembers } from './catch-up.ts';
import { refreshConnectionKeys } from './connection-keys.ts';
import { type AgentContext, reasonOf, type VolumeFailure } from './context.ts';
import { type ExportPassResult, reconcileExports } from './exports.ts';
import { fenceLostAttachments } from './fence.ts';
import { withSignal } from './host/signalled.ts';
import type { ArrayInfo, Drive } from './host/types.ts';
import { reportMemberStates } from './members.ts';
import { preferLocalReads } from './read-preference.ts';
import { dropStaleAttachments, type ReconcileResult, reconcileDeletions } from './reconciler.ts';
import { advanceRelocations, type RelocationProgress } from './relocation.ts';
import { advanceCaptures, type CaptureProgress } from './snapshots.ts';

export interface AgentPassResult {
  /** The volumes the pass worked from (the MeshStorNode report names partitions by them). */
  records: VolumeRecord[];
  /** Arrays fenced because the record attaches their volume to another node now (ADR 0006). */
  fenced: string[];
  exports: ExportPassResult;
  /** Volumes whose member states were updated from md. */
  members: string[];
  /** Members re-added from the bitmap in this pass. */
  catchUps: CatchUp[];
  /** Volumes whose remote members' write-mostly marks changed. */
  readPreference: string[];
  relocations: RelocationProgress[];
  /** Snapshot captures on arrays running here (ADR 0010). */
  captures: CaptureProgress[];
  deletions: ReconcileResult;
  /** Deleted volumes attached here with no array running here: their attachment was cleared. */
  staleAttachments: string[];
  /** The arrays running on this node, as md reported them in this pass. */
  arrays: ArrayInfo[];
  /** Volumes a step could not finish (and steps that failed whole, as volume '*'), with why. */
  failures: VolumeFailure[];
}

const NO_EXPORTS: ExportPassResult = { created: [], exported: [], unexported: [], waiting: [], failed: [] };

export async function agentPass(context: AgentContext): Promise<AgentPassResult> {
  const o: AgentContext = { ...context, host: withSignal(context.host, context.signal) };
  const records = await o.store.list();
  const failures: VolumeFailure[] = [];
  const whole = async <T>(step: VolumeFailure['step'], empty: T, work: () => Promise<T>): Promise<T> => {
    if (o.signal?.aborted) return empty; // stopping: no new step starts
    try {
      return await work();
    } catch (e) {
      failures.push({ step, volume: '*', reason: reasonOf(e) });
      return empty;
    }
  };
  // first: a volume taken over must stop acknowledging writes here before anything else runs
  const fenced = await whole('fence', [], () => fenceLostAttachments(o, records, failures));
  const exports = await whole('exports', { ...NO_EXPORTS }, () => reconcileExports(o, records));
  await whole('keys', [], () => refreshConnectionKeys(o, records, failures));
  // The arrays running here and this node's drives, read once for the member steps: under a
  // loaded node every mdadm and sfdisk call counts.
  const arrays: ArrayInfo[] = [];
  let drivesRead: Promise<Drive[]> | undefined;
  const drives = () => {
    drivesRead ??= o.host.listDrives();
    return drivesRead;
  };
  const members = await whole('members', [], () => reportMemberStates(o, records, failures, arrays, drives));
  const catchUps = await whole('catch-up', [], () => catchUpMembers(o, records, failures, arrays, drives));
  const readPreference = await whole('read-preference', [], () =>
    preferLocalReads(o, records, failures, arrays, drives),
  );
  const relocations = await whole('relocation', [], () => advanceRelocations(o, records, failures));
  const captures = await whole('snapshot', [], () => advanceCaptures(o, records, failures));
  const staleAttachments = await whole('deletion', [], () => dropStaleAttachments(o, records));
  // the attachments just cleared are gone for this pass's wipes too, not only the next pass's
  const cleared = new Set(staleAttachments);
  const current = cleared.size
    ? records.map((r) => (cleared.has(r.id) ? { ...r, attachment: undefined } : r))
    : records;
  const deletions = await whole('deletion', { wiped: [], waiting: [], failed: [] }, () =>
    reconcileDeletions(o.nodeName, o.host, current, o.peers),
  );
  for (const f of deletions.failed)
    failures.push({ step: 'deletion', volume: f.partition, reason: f.reason });
  return {
    records,
    fenced,
    exports,
    members,
    catchUps,
    readPreference,
    relocations,
    captures,
    deletions,
    staleAttachments,
    arrays,
    failures,
  };
}
