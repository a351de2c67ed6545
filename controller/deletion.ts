// The deletion reconciler: DeleteVolume only marks a record Deleting; the agents wipe their
// partitions afterwards, and this pass drops each Deleting record whose partitions no agent reports
// any more, which frees its extents. Every so often (and on the first pass, which adopts records
// written before the allocation ledger existed) it also runs the ledger reconciler on the same list.
// `meshstor controller` runs it every --resync-seconds.
import type { NodeInfo } from '../placement/model.ts';
import type { Allocator } from './allocator.ts';
import { type LedgerPass, LedgerReconciler } from './ledger-reconciler.ts';
import { releaseIfWiped } from './release.ts';

export interface DeletionReconcilerOptions {
  /** Run the ledger reconciler at most this often (default 60 s: it lists every ledger). */
  ledgerEveryMs?: number;
  ledger?: LedgerReconciler;
  /** The elector that picks the one replica running this pass (default: the allocator's). */
  leader?: { isLeader: boolean } | undefined;
}

export class DeletionReconciler {
  private readonly allocator: Allocator;
  private readonly ledger: LedgerReconciler;
  private readonly ledgerEveryMs: number;
  private ledgerRanAt = Number.NEGATIVE_INFINITY;
  /** What the last ledger pass did (adoptions, orphans released, double bookings found). */
  lastLedgerPass: LedgerPass | undefined;

  private readonly leader: { isLeader: boolean } | undefined;

  constructor(allocator: Allocator, opts: DeletionReconcilerOptions = {}) {
    this.allocator = allocator;
    this.leader = opts.leader;
    this.ledger = opts.ledger ?? new LedgerReconciler(allocator);
    this.ledgerEveryMs = opts.ledgerEveryMs ?? 60_000;
  }

  /** One pass (the active allocator only). Returns the volumes released. */
  async pass(): Promise<string[]> {
    const a = this.allocator;
    if (!(this.leader?.isLeader ?? a.isLeader)) return [];
    const out: string[] = [];
    let nodes: NodeInfo[] | undefined; // read once per pass, and only if a volume is being deleted
    const records = await a.store.list();
    for (const rec of records) {
      if (rec.phase !== 'Deleting') continue;
      nodes ??= await a.inventory.nodes();
      const seen = nodes;
      if (await a.perVolume.run(rec.id, () => releaseIfWiped(a.store, a.inventory, rec.id, seen)))
        out.push(rec.id);
    }
    if (performance.now() - this.ledgerRanAt >= this.ledgerEveryMs) {
      this.ledgerRanAt = performance.now();
      // The records just released (and their claims) are gone: not adopted again.
      const released = new Set(out);
      this.lastLedgerPass = await this.ledger.pass(records.filter((r) => !released.has(r.id)));
    }
    return out;
  }
}
