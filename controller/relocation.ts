// The relocation reconciler (the active allocator only): starts moving a member to each healthy
// volume's attached node that holds none, and releases the old members of relocations that ended.
// The steps on disk are the attached node's agent's (agent/relocation.ts); the record logic is in
// relocator.ts. `meshstor controller` runs it every --resync-seconds.
import type { NodeInfo } from '../placement/model.ts';
import type { VolumeRecord } from '../state/store.ts';
import type { Allocator } from './allocator.ts';
import { ownerOf } from './claims.ts';
import {
  beginRelocation,
  cancelRelocation,
  type RelocationPass,
  releaseRemoved,
  relocationEnded,
  relocationTarget,
} from './relocator.ts';

export class RelocationReconciler {
  private readonly allocator: Allocator;
  private readonly onList: ((records: readonly VolumeRecord[]) => void) | undefined;
  private readonly leader: { isLeader: boolean } | undefined;

  /**
   * `onList` hears the pass's list of every record (the volume metrics count it; no second list);
   * `leader`: the elector that picks the one replica running this pass (default: the allocator's).
   */
  constructor(
    allocator: Allocator,
    onList?: (records: readonly VolumeRecord[]) => void,
    leader?: { isLeader: boolean },
  ) {
    this.allocator = allocator;
    this.onList = onList;
    this.leader = leader;
  }

  async pass(): Promise<RelocationPass> {
    const a = this.allocator;
    const out: RelocationPass = { started: [], finished: [], blocked: [] };
    if (!(this.leader?.isLeader ?? a.isLeader)) return out;
    let nodes: NodeInfo[] | undefined; // read once, and only when a relocation has ended
    const records = await a.store.list();
    this.onList?.(records);
    for (const listed of records) {
      // Only volumes with something to do are read again (under their lock). One volume's failure
      // is its own: it is reported as blocked and the pass goes on with the others.
      if (listed.phase !== 'Active' || (!listed.relocation && !relocationTarget(listed))) continue;
      try {
        await a.perVolume.run(listed.id, async () => {
          const rec = await a.store.get(listed.id);
          if (!rec) return;
          if (relocationEnded(rec)) nodes ??= await a.inventory.nodes();
          const before = [...rec.replicas];
          if (releaseRemoved(rec, nodes ?? [])) {
            await a.store.replace(rec);
            // The record no longer holds the dropped members' bytes: their claims go too.
            await a.claims.release(
              ownerOf(rec),
              before.filter((b) => !rec.replicas.some((x) => x.id === b.id)),
            );
            if (!rec.relocation) out.finished.push(rec.id);
            return;
          }
          const to = relocationTarget(rec);
          if (!to) return;
          // Decided on fresh lists (relocations are rare; a lagging model would only cost a retry).
          const added = await a.decide(async () => {
            const res = (await a.freshEngine()).planRelocation(rec.id, to);
            if (!res.ok) {
              out.blocked.push({ volume: rec.id, reason: res.message });
              return undefined;
            }
            if (res.noop || !beginRelocation(rec, res.plan)) return undefined;
            const member = rec.replicas.find((x) => x.id === rec.relocation?.toReplica);
            if (!member) return undefined;
            // As for CreateVolume: the new member's bytes are claimed before the record names them.
            const refused = await a.claims.claim(ownerOf(rec), [member]);
            if (refused) {
              out.blocked.push({
                volume: rec.id,
                reason: `the new extent is claimed by ${refused.clash.volume}; retrying`,
              });
              return undefined;
            }
            try {
              await a.store.replace(rec);
            } catch (e) {
              await a.claims.release(ownerOf(rec), [member]).catch(() => undefined);
              throw e;
            }
            return member;
          });
          if (!added) return;
          // The claim was revoked as orphaned while the record was written: take the member back.
          if (!(await a.claims.holds(ownerOf(rec), [added]))) {
            const again = await a.store.get(rec.id);
            if (again) {
              cancelRelocation(again);
              await a.store.replace(again);
            }
            out.blocked.push({ volume: rec.id, reason: 'the new extent lost its claim; retrying' });
            return;
          }
          out.started.push(`${rec.id} -> ${to}`);
        });
      } catch (e) {
        out.blocked.push({ volume: listed.id, reason: e instanceof Error ? e.message : String(e) });
      }
    }
    return out;
  }
}
