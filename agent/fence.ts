// Self-fencing (ADR 0006): this node stops acknowledging writes to a volume when it may no longer
// be the one writing it. Two triggers: its right to write lapsed (it could not renew its Lease:
// `fenceAllArrays`, called by WriteRight), or the record names another node as the attachment
// while the array still runs here (the volume was taken over: `fenceLostAttachments`, a step of
// every pass). Fencing first cuts the local legs below md (Host.cutLocalLegs: a device-mapper
// layer switched to failing every IO, which does not wait for md), then fails every member of the
// array (Host.fenceArray), which may wait behind a stalled remote leg: the application gets EIO
// instead of an acknowledgement the next holder's copy would not have.
import type { VolumeRecord, VolumeStore } from '../state/store.ts';
import { type AgentContext, eachVolume, type VolumeFailure } from './context.ts';
import type { Host } from './host/types.ts';

/**
 * Fences every volume's array running on this node. Works from the store's list (a watch cache in
 * `meshstor agent`, so it answers without the apiserver). First every volume's local legs are cut,
 * all at once (bounded by the local disks), and only then does md learn of it array by array (which
 * may wait up to the remote legs' ctrl-loss-tmo): a slow md step of one array never delays another
 * array's cut. Returns the volumes fenced; a volume whose fence failed is in `failures` and the
 * others are still fenced. `onLegsCut` is told when every cut has returned (the scenario times it).
 */
export async function fenceAllArrays(
  o: { host: Host; store: VolumeStore; onLegsCut?: () => void },
  failures: { volume: string; reason: string }[] = [],
): Promise<string[]> {
  const fail = (volume: string, e: unknown) =>
    failures.push({ volume, reason: e instanceof Error ? e.message : String(e) });
  const records = await o.store.list();
  await Promise.all(records.map((rec) => o.host.cutLocalLegs(rec.id).catch((e: unknown) => fail(rec.id, e))));
  o.onLegsCut?.();
  const fenced: string[] = [];
  for (const rec of records) {
    try {
      // no getArray first: LinuxHost's reads a member's superblock (mdadm --detail), which waits
      // on a stalled leg; fenceArray finds the array without reading any member
      if (await o.host.fenceArray(rec.id)) fenced.push(rec.id);
    } catch (e) {
      fail(rec.id, e);
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
