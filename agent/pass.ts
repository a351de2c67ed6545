// One round of the agent's resync loop: every step over ONE list of the volumes (from the watch
// cache in `meshstor agent`), in an order where each step's writes are seen by the next round.
// `meshstor agent` and the in-process test clusters run exactly this.
import type { KeyedLock } from '../state/lock.ts';
import type { VolumeRecord, VolumeStore } from '../state/store.ts';
import { type ExportPassResult, reconcileExports } from './exports.ts';
import type { Host, ListenAddress } from './host/types.ts';
import { reportMemberStates } from './members.ts';
import { type ReconcileResult, reconcileDeletions } from './reconciler.ts';
import { advanceRelocations, type RelocationProgress } from './relocation.ts';

export interface AgentPassOptions {
  nodeName: string;
  host: Host;
  store: VolumeStore;
  /** Where this node's NVMe-oF target listens. */
  listen: ListenAddress;
  /** Shared with the node service: a volume is never staged and worked on here at the same time. */
  locks: KeyedLock;
}

export interface AgentPassResult {
  /** The volumes the pass worked from (the MeshStorNode report names partitions by them). */
  records: VolumeRecord[];
  exports: ExportPassResult;
  /** Volumes whose member states were updated from md. */
  members: string[];
  relocations: RelocationProgress[];
  deletions: ReconcileResult;
}

export async function agentPass(o: AgentPassOptions): Promise<AgentPassResult> {
  const records = await o.store.list();
  const exports = await reconcileExports(o, records);
  const members = await reportMemberStates(o, records);
  const relocations = await advanceRelocations(o, records);
  const deletions = await reconcileDeletions(o.nodeName, o.host, records);
  return { records, exports, members, relocations, deletions };
}
