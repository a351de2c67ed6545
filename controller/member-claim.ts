// A new member's bytes, claimed before the record names them and checked after (ADR 0004): the
// steps every move (relocation, rebuild, a move for an expansion) takes to add a member to a
// record without ever sharing an extent with another allocation.
import type { VolumeRecord } from '../state/store.ts';
import type { Allocator } from './allocator.ts';
import { ownerOf } from './claims.ts';
import { cancelRelocation } from './relocator.ts';

type Replica = VolumeRecord['replicas'][number];

/**
 * Claims `member`'s bytes in its node's ledger, then writes `rec` (which names it); a failed write
 * releases the claim again. Returns why it was not recorded, or undefined once it is.
 */
export async function recordClaimedMember(
  a: Allocator,
  rec: VolumeRecord,
  member: Replica,
): Promise<string | undefined> {
  const refused = await a.claims.claim(ownerOf(rec), [member]);
  if (refused) return `the new extent is claimed by ${refused.clash.volume}; retrying`;
  try {
    await a.store.replace(rec);
  } catch (e) {
    await a.claims.release(ownerOf(rec), [member]).catch(() => undefined);
    throw e;
  }
  return undefined;
}

/**
 * After the record was written: whether the member's claim still stands. The ledger reconciler may
 * have revoked it as orphaned while the record was being written; then the move is taken back
 * (the member marked Removed, the move cancelled) and false is returned.
 */
export async function claimStands(a: Allocator, rec: VolumeRecord, member: Replica): Promise<boolean> {
  if (await a.claims.holds(ownerOf(rec), [member])) return true;
  const again = await a.store.get(rec.id);
  if (again) {
    cancelRelocation(again);
    await a.store.replace(again);
  }
  return false;
}
