// The relocation reconciler (the active allocator only): starts moving a member to each healthy
// volume's attached node that holds none, and off every node being evacuated (a drain: the Node
// labelled meshstor.io/evacuate=true), at most EVACUATION_MOVES at a time, the most exposed volumes
// first; and releases the old members of relocations that ended.
// The steps on disk are the attached node's agent's (agent/relocation.ts); the record logic is in
// relocator.ts. `meshstor controller` runs it every --resync-seconds.
import type { NodeInfo } from '../placement/model.ts';
import type { VolumeRecord } from '../state/store.ts';
import type { Allocator } from './allocator.ts';
import { ownerOf } from './claims.ts';
import { claimStands, recordClaimedMember } from './member-claim.ts';
import {
  beginRelocation,
  moveNeeded,
  type RelocationPass,
  releaseRemoved,
  relocationEnded,
} from './relocator.ts';

/** Moves off evacuating nodes running at once (each a full resync of one member). */
export const EVACUATION_MOVES = 2;

/** The nodes being evacuated now (cmd/controller.ts: Nodes labelled meshstor.io/evacuate=true). */
export type EvacuatingNodes = () => Promise<ReadonlySet<string>>;

export class RelocationReconciler {
  private readonly allocator: Allocator;
  private readonly onList: ((records: readonly VolumeRecord[]) => void) | undefined;
  private readonly leader: { isLeader: boolean } | undefined;
  private readonly evacuating: EvacuatingNodes | undefined;

  /**
   * `onList` hears the pass's list of every record (the volume metrics count it; no second list);
   * `leader`: the elector that picks the one replica running this pass (default: the allocator's);
   * `evacuating`: the nodes to move every member off (none without it).
   */
  constructor(
    allocator: Allocator,
    onList?: (records: readonly VolumeRecord[]) => void,
    leader?: { isLeader: boolean },
    evacuating?: EvacuatingNodes,
  ) {
    this.allocator = allocator;
    this.onList = onList;
    this.leader = leader;
    this.evacuating = evacuating;
  }

  async pass(): Promise<RelocationPass> {
    const a = this.allocator;
    const out: RelocationPass = { started: [], finished: [], blocked: [], queued: [] };
    if (!(this.leader?.isLeader ?? a.isLeader)) return out;
    let nodes: NodeInfo[] | undefined; // read once, and only when a relocation has ended
    const records = await a.store.list();
    this.onList?.(records);
    const evacuating = (await this.evacuating?.()) ?? new Set<string>();
    // moves off evacuating nodes already running count against the limit
    let evacuations = records.filter((r) => {
      const from = r.replicas.find((x) => x.id === r.relocation?.fromReplica);
      return !!from && evacuating.has(from.node) && !relocationEnded(r);
    }).length;
    for (const listed of ordered(records, evacuating)) {
      // Only volumes with something to do are read again (under their lock). One volume's failure
      // is its own: it is reported as blocked and the pass goes on with the others.
      const wanted = moveNeeded(listed, evacuating);
      if (listed.phase !== 'Active' || (!listed.relocation && !wanted)) continue;
      if (wanted?.kind === 'evacuate' && evacuations >= EVACUATION_MOVES) {
        out.queued.push(listed.id);
        continue;
      }
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
          const move = moveNeeded(rec, evacuating);
          if (!move) return;
          const to = move.kind === 'follow' ? move.to : `off ${move.off}`;
          // Decided on fresh lists, ledger claims included (relocations are rare; a lagging model
          // would only cost a retry, and a claim no record holds would be planned onto every pass).
          const added = await a.decide(async () => {
            const engine = await a.freshEngine({ ledgerClaims: true });
            const res =
              move.kind === 'follow'
                ? engine.planRelocation(rec.id, move.to)
                : engine.planMoveOff(rec.id, move.off);
            if (!res.ok) {
              out.blocked.push({ volume: rec.id, reason: res.message });
              return undefined;
            }
            if (res.noop || !beginRelocation(rec, res.plan)) return undefined;
            const member = rec.replicas.find((x) => x.id === rec.relocation?.toReplica);
            if (!member) return undefined;
            // As for CreateVolume: the new member's bytes are claimed before the record names them.
            const refused = await recordClaimedMember(a, rec, member);
            if (refused) {
              out.blocked.push({ volume: rec.id, reason: refused });
              return undefined;
            }
            return member;
          });
          if (!added) return;
          // The claim was revoked as orphaned while the record was written: the member is taken back.
          if (!(await claimStands(a, rec, added))) {
            out.blocked.push({ volume: rec.id, reason: 'the new extent lost its claim; retrying' });
            return;
          }
          if (move.kind === 'evacuate') evacuations++;
          out.started.push(`${rec.id} -> ${move.kind === 'follow' ? to : `${added.node} (${to})`}`);
        });
      } catch (e) {
        out.blocked.push({ volume: listed.id, reason: e instanceof Error ? e.message : String(e) });
      }
    }
    return out;
  }
}

/**
 * The records in the order moves should start: volumes with a member on an evacuating node by
 * fewest in-sync copies elsewhere (the most exposed first), then the largest, as placement's
 * planDrain orders a drain; the others after them as listed.
 */
function ordered(records: readonly VolumeRecord[], evacuating: ReadonlySet<string>): VolumeRecord[] {
  if (evacuating.size === 0) return [...records];
  const onNode = (r: VolumeRecord) => r.replicas.some((x) => x.state !== 'Removed' && evacuating.has(x.node));
  const elsewhere = (r: VolumeRecord) =>
    r.replicas.filter((x) => x.state === 'InSync' && !evacuating.has(x.node)).length;
  const first = records
    .filter(onNode)
    .sort((a, b) => elsewhere(a) - elsewhere(b) || b.sizeBytes - a.sizeBytes || (a.id < b.id ? -1 : 1));
  return [...first, ...records.filter((r) => !onNode(r))];
}
