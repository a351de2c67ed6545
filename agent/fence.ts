// Self-fencing (ADR 0006): this node stops acknowledging writes to a volume when it may no longer
// be the one writing it. Two triggers: its right to write lapsed (it could not renew its Lease:
// `fenceAllArrays`, called by WriteRight), or the record names another node as the attachment
// while the array still runs here (the volume was taken over: `fenceLostAttachments`, a step of
// every pass). Fencing fails every member of the array (Host.fenceArray): the application gets EIO
// instead of an acknowledgement the next holder's copy would not have.
import type { VolumeRecord, VolumeStore } from '../state/store.ts';
import { type AgentContext, eachVolume, type VolumeFailure } from './context.ts';
import type { Host } from './host/types.ts';

/**
 * Fences every volume's array running on this node. Works from the store's list (a watch cache in
 * `meshstor agent`, so it answers without the apiserver). Returns the volumes fenced; a volume whose
 * fence failed is in `failures` and the others are still fenced.
 */
export async function fenceAllArrays(
  o: { host: Host; store: VolumeStore },
  failures: { volume: string; reason: string }[] = [],
): Promise<string[]> {
  const fenced: string[] = [];
  for (const rec of await o.store.list()) {
    try {
      if (!(await o.host.getArray(rec.id))) continue;
      if (await o.host.fenceArray(rec.id)) fenced.push(rec.id);
    } catch (e) {
      failures.push({ volume: rec.id, reason: e instanceof Error ? e.message : String(e) });
    }
  }
  return fenced;
}

/** Fences the arrays running here of volumes the record attaches to another node. */
export async function fenceLostAttachments(
  o: AgentContext,
  records: readonly VolumeRecord[],
  failures: VolumeFailure[],
): Promise<string[]> {
  const elsewhere = records.filter((r) => r.attachment && r.attachment.node !== o.nodeName);
  return eachVolume(o, 'fence', elsewhere, failures, async (rec) => {
    // getArray first: the array must be running on this node (in the kernel tier several "nodes"
    // share one kernel, and their Host sees only its own arrays through getArray)
    if (!(await o.host.getArray(rec.id))) return undefined;
    return (await o.host.fenceArray(rec.id)) ? rec.id : undefined;
  });
}
