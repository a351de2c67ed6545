// The deletion reconciler: DeleteVolume only marks a record Deleting; the agents wipe their
// partitions afterwards, and this pass drops each Deleting record whose partitions no agent reports
// any more, which frees its extents. `meshstor controller` runs it every --resync-seconds.
import type { NodeInfo } from '../placement/model.ts';
import type { Allocator } from './allocator.ts';
import { releaseIfWiped } from './release.ts';

export class DeletionReconciler {
  private readonly allocator: Allocator;
  private readonly leader: { isLeader: boolean } | undefined;

  /** `leader`: the elector that picks the one replica running this pass (default: the allocator's). */
  constructor(allocator: Allocator, leader?: { isLeader: boolean }) {
    this.allocator = allocator;
    this.leader = leader;
  }

  /** One pass (the active allocator only). Returns the volumes released. */
  async pass(): Promise<string[]> {
    const a = this.allocator;
    if (!(this.leader?.isLeader ?? a.isLeader)) return [];
    const out: string[] = [];
    let nodes: NodeInfo[] | undefined; // read once per pass, and only if a volume is being deleted
    for (const rec of await a.store.list()) {
      if (rec.phase !== 'Deleting') continue;
      nodes ??= await a.inventory.nodes();
      const seen = nodes;
      if (await a.perVolume.run(rec.id, () => releaseIfWiped(a.store, a.inventory, rec.id, seen)))
        out.push(rec.id);
    }
    return out;
  }
}
