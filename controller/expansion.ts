// Expansion when growth in place is blocked (ADR 0009). Best-fit packing usually leaves no free
// bytes after an extent, so a member often cannot grow where it is. Such a member moves first:
// placement picks an extent of the NEW size (planGrowMove), the allocator claims it in the ledger
// and writes it into the record as a relocation, and the attached node's agent adds it, resyncs
// it and removes the old member (agent/relocation.ts, add before remove, never the last in-sync
// copy); the relocation reconciler releases the old extent. Once no member is blocked the others
// grow in place and the record takes the new size; NodeExpandVolume then grows md and XFS online.
//
// The pending size is written into the record (`expansion`), so the work goes on after a restart
// and without the caller: ControllerExpandVolume and the expansion pass both call
// `advanceExpansion`, which reads the record and does the one next step that is missing.
import { PlacementError } from '../placement/errors.ts';
import { moveInWords } from '../state/expansion-condition.ts';
import type { VolumeRecord } from '../state/store.ts';
import type { Allocator } from './allocator.ts';
import { claimStands, recordClaimedMember } from './member-claim.ts';
import { beginRelocation, healthy, relocationEnded } from './relocator.ts';

/** Where an expansion stands after one step. */
export type ExpansionProgress =
  | { done: true; sizeBytes: number }
  | { done: false; sizeBytes: number; message: string; started?: string | undefined };

/** Writes the pending expansion (and its reason to wait) when the record does not show it yet. */
async function recordPending(
  a: Allocator,
  rec: VolumeRecord,
  sizeBytes: number,
  waiting: string | undefined,
): Promise<void> {
  if (rec.expansion?.sizeBytes === sizeBytes && rec.expansion.waiting === waiting) return;
  rec.expansion = { sizeBytes, waiting };
  await a.store.replace(rec);
}

/** Why a blocked member cannot move now, or undefined when it can. */
function whyWait(rec: VolumeRecord): string | undefined {
  if (!rec.attachment)
    return 'waiting for a pod to stage it: the node running its array copies the member to its larger extent';
  if (!healthy(rec))
    return 'waiting until every member is in sync (a degraded volume is caught up or rebuilt first)';
  return undefined;
}

/**
 * One step of growing volume `id` to at least `requested` bytes (or to its pending expansion when
 * that is larger). The caller holds the volume's lock. Idempotent: every step reads the record
 * and the ledger first, so a controller killed between any two writes resumes on the next call.
 */
export async function advanceExpansion(a: Allocator, id: string, requested = 0): Promise<ExpansionProgress> {
  const rec = await a.store.get(id);
  if (rec?.phase !== 'Active') throw new PlacementError('not-found', `volume ${id} does not exist`);
  const target = Math.max(requested, rec.expansion?.sizeBytes ?? 0);
  if (target <= rec.sizeBytes) {
    if (rec.expansion) {
      rec.expansion = undefined;
      await a.store.replace(rec);
    }
    return { done: true, sizeBytes: rec.sizeBytes };
  }
  const pending = (message: string, started?: string): ExpansionProgress => ({
    done: false,
    sizeBytes: target,
    message,
    started,
  });

  const reloc = rec.relocation;
  if (reloc) {
    // One move at a time per volume, whoever started it; the next step comes after its release.
    await recordPending(a, rec, target, undefined);
    if (relocationEnded(rec))
      return pending(`${reloc.fromReplica} has left; waiting for its extent to be released`);
    const pct = reloc.bytesTotal ? Math.floor((100 * (reloc.bytesDone ?? 0)) / reloc.bytesTotal) : 0;
    return pending(`${moveInWords(rec)}: ${reloc.step} ${pct}%`);
  }

  // Decided on fresh lists: growth and relocation are rare, and a lagging model would only cost a retry.
  const decision = await a.decide(async () => {
    const engine = await a.freshEngine();
    if (engine.planExpand(id, target).ok) return { grow: true as const };
    const move = engine.planGrowMove(id, target);
    if (!move.ok) throw new PlacementError(move.code, move.message);
    const wait = whyWait(rec);
    if (wait) {
      await recordPending(a, rec, target, wait);
      return { wait };
    }
    if (move.noop || !beginRelocation(rec, move.plan))
      return { wait: 'placement found nothing to move; retrying' };
    const member = rec.replicas.find((x) => x.id === rec.relocation?.toReplica);
    if (!member) return { wait: 'the new member is missing from the plan; retrying' };
    // As for CreateVolume and every move: the new extent is claimed before the record names it.
    rec.expansion = { sizeBytes: target, waiting: undefined };
    const refused = await recordClaimedMember(a, rec, member);
    return refused ? { wait: refused } : { moving: member };
  });
  if ('grow' in decision) {
    // Every member can grow where it is: claims first, then the record takes the size (one write
    // that also clears the pending expansion). NodeExpandVolume grows the array and XFS.
    rec.expansion = undefined;
    await a.expand(rec, target);
    return { done: true, sizeBytes: rec.sizeBytes };
  }
  if ('wait' in decision) return pending(decision.wait ?? 'waiting');
  const added = decision.moving;
  // The claim was revoked as orphaned while the record was written: the member is taken back.
  if (!(await claimStands(a, rec, added))) return pending('the new extent lost its claim; retrying');
  const from = rec.relocation?.fromReplica;
  return pending(
    `moving ${from} to a larger extent on ${added.node} as ${added.id}: adding`,
    `${from} -> ${added.node}/${added.drive} as ${added.id}`,
  );
}

/** What one expansion pass did. */
export interface ExpansionPass {
  /** Volumes that took their new size in this pass. */
  grown: { volume: string; sizeBytes: number }[];
  /** Moves to larger extents started in this pass. */
  started: { volume: string; move: string }[];
  /** Volumes still expanding, and why (a move running, a pod to stage it, ...). */
  waiting: { volume: string; message: string }[];
  /** Volumes whose expansion failed in this pass (placement refused, a write failed). */
  blocked: { volume: string; reason: string }[];
}

/**
 * Drives every pending expansion (the active allocator only), so a volume grows once its moves are
 * done even when the resizer's next retry is minutes away. `meshstor controller` runs it every
 * --resync-seconds, after the relocation pass that releases the old members.
 */
export class ExpansionReconciler {
  private readonly allocator: Allocator;
  private readonly leader: { isLeader: boolean } | undefined;

  constructor(allocator: Allocator, leader?: { isLeader: boolean }) {
    this.allocator = allocator;
    this.leader = leader;
  }

  async pass(records?: readonly VolumeRecord[]): Promise<ExpansionPass> {
    const a = this.allocator;
    const out: ExpansionPass = { grown: [], started: [], waiting: [], blocked: [] };
    if (!(this.leader?.isLeader ?? a.isLeader)) return out;
    const listed = records ?? (await a.store.list());
    for (const r of listed.filter((x) => x.expansion && x.phase === 'Active')) {
      try {
        const p = await a.perVolume.run(r.id, () => advanceExpansion(a, r.id));
        if (p.done) out.grown.push({ volume: r.id, sizeBytes: p.sizeBytes });
        else {
          if (p.started) out.started.push({ volume: r.id, move: p.started });
          out.waiting.push({ volume: r.id, message: p.message });
        }
      } catch (e) {
        out.blocked.push({ volume: r.id, reason: e instanceof Error ? e.message : String(e) });
      }
    }
    return out;
  }
}
