// The ledger reconciler (the active allocator only): keeps the allocation ledger and the records
// telling the same story.
// - Adoption: a record's extent with no claim (records written before the ledger existed, or by a
//   controller of an older version) is claimed for it, unless another volume's claim is there:
//   that would be a double booking, reported and never "repaired" by taking bytes from either.
// - Orphans: a claim no record holds (the allocator was killed between its claim and its record,
//   or between dropping a record and its claims) is released once it is older than the grace
//   period. It is first marked revoked, then the record is read fresh, and only then is the claim
//   dropped; an allocator checks its claims after writing its record, so one of the two sees the
//   other (docs/adr/0004-allocation-ledger.md).
import { type Claim, clashWith, type NodeLedger, sameBytes } from '../state/ledger.ts';
import type { VolumeRecord } from '../state/store.ts';
import type { Allocator } from './allocator.ts';
import { claimOf, ownedBy, ownerOf, sameClaim } from './claims.ts';

export interface LedgerPass {
  /** Claims added for records that had none. */
  adopted: number;
  /** Orphaned claims released. */
  released: number;
  /** Records whose bytes another volume's claim holds: a double booking, for a human to look at. */
  clashes: string[];
}

export interface LedgerReconcilerOptions {
  /** A claim no record holds is released only when older than this (default 10 minutes). */
  orphanAfterMs?: number;
  now?: () => number;
}

/** Whether the record (read fresh) keeps bytes of this claim on this node. */
function holds(rec: VolumeRecord | undefined, node: string, c: Claim): boolean {
  if (!rec || !ownedBy(c, ownerOf(rec))) return false;
  return rec.replicas.some(
    (r) => r.id === c.replica && r.node === node && sameBytes({ drive: r.drive, ...r.extent }, c),
  );
}

export class LedgerReconciler {
  private readonly allocator: Allocator;
  private readonly orphanAfterMs: number;
  private readonly now: () => number;

  constructor(allocator: Allocator, opts: LedgerReconcilerOptions = {}) {
    this.allocator = allocator;
    this.orphanAfterMs = opts.orphanAfterMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** One pass over every record (`records` when the caller listed them already) and ledger. */
  async pass(records?: readonly VolumeRecord[]): Promise<LedgerPass> {
    const a = this.allocator;
    const out: LedgerPass = { adopted: 0, released: 0, clashes: [] };
    if (!a.isLeader) return out;
    // A claim whose record is missing from a (possibly older) record list is only a candidate:
    // young claims are left alone, and nothing is dropped before a fresh read of its record.
    const ledgers = new Map((await a.claims.ledger.list()).map((l) => [l.node, l]));
    const all = records ?? (await a.store.list());
    const byId = new Map(all.map((r) => [r.id, r]));
    for (const rec of all) await this.adopt(rec, ledgers.get.bind(ledgers), out);
    for (const l of ledgers.values()) {
      for (const c of l.claims) {
        if (holds(byId.get(c.volume), l.node, c)) continue;
        const old = this.now() - Date.parse(c.claimedAt) >= this.orphanAfterMs;
        if (c.revokedAt || old) await this.releaseOrphan(l.node, c, out);
      }
    }
    return out;
  }

  private async adopt(
    rec: VolumeRecord,
    ledgerOf: (node: string) => NodeLedger | undefined,
    out: LedgerPass,
  ): Promise<void> {
    const a = this.allocator;
    const owner = ownerOf(rec);
    for (const r of rec.replicas) {
      const claimed = ledgerOf(r.node)?.claims.some(
        (c) =>
          ownedBy(c, owner) &&
          c.replica === r.id &&
          c.drive === r.drive &&
          c.start <= r.extent.start &&
          c.end >= r.extent.end,
      );
      if (claimed) continue;
      const want = claimOf(owner, r, new Date(this.now()));
      const clash = await a.claims.change(r.node, (l) => {
        const other = clashWith(l.claims, want);
        if (other) return { write: false, result: other };
        const own = l.claims.find((c) => ownedBy(c, owner) && c.replica === r.id && c.drive === r.drive);
        if (own && own.start <= want.start && own.end >= want.end) return { write: false, result: undefined };
        if (own) {
          own.start = Math.min(own.start, want.start);
          own.end = Math.max(own.end, want.end);
        } else l.claims.push(want);
        return { write: true, result: undefined };
      });
      if (!clash) {
        out.adopted++;
        continue;
      }
      // The list may be stale (the record since dropped and its bytes claimed again): only a
      // fresh read that still shows the record on those bytes is a double booking.
      if (holds(await a.store.get(rec.id), r.node, { ...want })) {
        out.clashes.push(
          `${rec.id}/${r.id} on ${r.node}/${r.drive} overlaps ${clash.volume}/${clash.replica}`,
        );
      }
    }
  }

  /** Revoke, read the record fresh, then drop the claim (or take the revocation back). */
  private async releaseOrphan(node: string, orphan: Claim, out: LedgerPass): Promise<void> {
    const a = this.allocator;
    const at = new Date(this.now()).toISOString();
    const revoked = await a.claims.change(node, (l) => {
      const c = l.claims.find((x) => sameClaim(x, orphan));
      if (!c) return { write: false, result: false };
      if (c.revokedAt) return { write: false, result: true };
      c.revokedAt = at;
      return { write: true, result: true };
    });
    if (!revoked) return;
    const rec = await a.store.get(orphan.volume);
    const held = holds(rec, node, orphan);
    await a.claims.change(node, (l) => {
      const i = l.claims.findIndex((x) => sameClaim(x, orphan));
      if (i < 0) return { write: false, result: undefined };
      if (held) delete (l.claims[i] as Claim).revokedAt;
      else l.claims.splice(i, 1);
      return { write: true, result: undefined };
    });
    if (!held) out.released++;
  }
}
