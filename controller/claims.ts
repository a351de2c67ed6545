// The allocator's side of the allocation ledger (state/ledger.ts): claims a record's extents on
// each node's ledger before the record is written, checks after the write that they still stand,
// and releases them once the record no longer holds the bytes. Every change is written under the
// version it was decided on, so a claim is only ever added to a ledger that shows no other
// volume's claim on those bytes, and two overlapping claims can never both be written.
import { isStateError } from '../state/errors.ts';
import { allocationOf, type Claim, clashWith, type ExtentLedger, type NodeLedger } from '../state/ledger.ts';
import { KeyedLock } from '../state/lock.ts';

/** A replica's bytes as a record holds them. */
export interface HeldExtent {
  id: string;
  node: string;
  drive: string;
  extent: { start: number; end: number };
}

/** Why a claim was refused: the other allocation's claim, and every claim the node's ledger showed. */
export interface Refusal {
  clash: Claim;
  node: string;
  taken: Claim[];
}

/** What a change to one ledger decided: write the (changed) claims, or leave them and answer. */
type Decision<T> = { write: boolean; result: T };

const MAX_WRITES = 30;

/** Whose claims: a volume and the allocation attempt that placed it. */
export interface Owner {
  volume: string;
  allocation: string;
}

/** One claim's identity: the same owner, replica, drive and bytes. */
export const sameClaim = (a: Claim, b: Claim): boolean =>
  ownedBy(a, b) && a.replica === b.replica && a.drive === b.drive && a.start === b.start && a.end === b.end;

export const ownedBy = (c: Claim, o: Owner): boolean =>
  c.volume === o.volume && c.allocation === o.allocation;

/** The owner of a record's claims. */
export const ownerOf = (rec: { id: string; allocation?: string | undefined }): Owner => ({
  volume: rec.id,
  allocation: allocationOf(rec),
});

export function claimOf(o: Owner, r: HeldExtent, at: Date): Claim {
  return {
    volume: o.volume,
    allocation: o.allocation,
    replica: r.id,
    drive: r.drive,
    start: r.extent.start,
    end: r.extent.end,
    claimedAt: at.toISOString(),
  };
}

export class Claims {
  readonly ledger: ExtentLedger;
  /**
   * The last version of each ledger this process read or wrote. A write over it needs no read
   * first; when another writer moved the ledger on, the write is refused and the ledger re-read.
   */
  private readonly known = new Map<string, NodeLedger>();
  /** One change per ledger at a time in this process, so its own callers do not refuse each other. */
  private readonly perNode = new KeyedLock();

  constructor(ledger: ExtentLedger) {
    this.ledger = ledger;
  }

  /**
   * Claims every extent for `owner` node by node (in name order). When another allocation's claim
   * shares a byte with one of them, the claims made so far are released and that claim returned.
   */
  async claim(owner: Owner, replicas: readonly HeldExtent[], now = new Date()): Promise<Refusal | undefined> {
    const done: HeldExtent[] = [];
    for (const [node, mine] of byNode(replicas)) {
      const want = mine.map((r) => claimOf(owner, r, now));
      const refusal = await this.change(node, (l): Decision<Refusal | undefined> => {
        for (const w of want) {
          const c = clashWith(l.claims, w);
          // The ledger read shows every claim on the node: all of it is taken, not only the clash.
          if (c)
            return {
              write: false,
              result: { clash: c, node, taken: l.claims.filter((x) => !ownedBy(x, owner)) },
            };
        }
        l.claims.push(...want.filter((w) => !l.claims.some((c) => sameClaim(c, w))));
        return { write: true, result: undefined };
      });
      if (refusal) {
        await this.release(owner, done);
        return refusal;
      }
      done.push(...mine);
    }
    return undefined;
  }

  /** Grows one replica's claim to `end`; returns another allocation's claim on the new bytes, if any. */
  async grow(owner: Owner, r: HeldExtent, end: number): Promise<Claim | undefined> {
    return this.change(r.node, (l) => {
      const own = l.claims.find((c) => ownedBy(c, owner) && c.replica === r.id && c.drive === r.drive);
      const grown = claimOf(owner, { ...r, extent: { start: r.extent.start, end } }, new Date());
      const clash = clashWith(l.claims, grown);
      if (clash) return { write: false, result: clash };
      if (own) own.end = Math.max(own.end, end);
      else l.claims.push(grown);
      return { write: true, result: undefined };
    });
  }

  /** Drops the owner's claims of these replicas (the record no longer holds their bytes). */
  async release(owner: Owner, replicas: readonly Pick<HeldExtent, 'id' | 'node'>[]): Promise<void> {
    for (const [node, mine] of byNode(replicas)) {
      const ids = new Set(mine.map((r) => r.id));
      await this.change(node, (l) => {
        const keep = l.claims.filter((c) => !ownedBy(c, owner) || !ids.has(c.replica));
        const write = keep.length !== l.claims.length;
        l.claims = keep;
        return { write, result: undefined };
      });
    }
  }

  /**
   * Whether every extent is still claimed for `owner` and not under revocation, read fresh from
   * the ledgers: the check after the record is written (the reconciler revokes before it checks
   * the record, so one of the two always sees the other).
   */
  async holds(owner: Owner, replicas: readonly HeldExtent[]): Promise<boolean> {
    for (const [node, mine] of byNode(replicas)) {
      const l = await this.ledger.read(node);
      this.known.set(node, l);
      for (const r of mine) {
        const covered = l.claims.some(
          (c) =>
            ownedBy(c, owner) &&
            c.replica === r.id &&
            c.drive === r.drive &&
            !c.revokedAt &&
            c.start <= r.extent.start &&
            c.end >= r.extent.end,
        );
        if (!covered) return false;
      }
    }
    return true;
  }

  /**
   * Reads (or takes the known version of) the node's ledger, lets `decide` change a copy, and
   * writes it under the version it was read at, re-reading and deciding again when it moved on.
   * A refusal decided on a remembered version is decided again on a fresh read first.
   */
  async change<T>(node: string, decide: (l: NodeLedger) => Decision<T>): Promise<T> {
    return this.perNode.run(node, async () => {
      for (let i = 1; ; i++) {
        const remembered = this.known.get(node);
        let base = remembered ?? (await this.ledger.read(node));
        let next = copyOf(base);
        let d = decide(next);
        if (!d.write && remembered) {
          base = await this.ledger.read(node);
          next = copyOf(base);
          d = decide(next);
        }
        this.known.set(node, base);
        if (!d.write) return d.result;
        try {
          this.known.set(node, await this.ledger.write(next));
          return d.result;
        } catch (e) {
          this.known.delete(node);
          if (!isStateError(e, 'changed') || i >= MAX_WRITES) throw e;
          // Someone else wrote this ledger; a short random pause spreads out a crowd of writers.
          if (i > 2) await new Promise((r) => setTimeout(r, Math.random() * 5 * i));
        }
      }
    });
  }
}

function copyOf(l: NodeLedger): NodeLedger {
  return { node: l.node, claims: l.claims.map((c) => ({ ...c })), version: l.version };
}

function byNode<R extends { node: string }>(replicas: readonly R[]): [string, R[]][] {
  const m = new Map<string, R[]>();
  for (const r of replicas) m.set(r.node, [...(m.get(r.node) ?? []), r]);
  return [...m.entries()].sort(([a], [b]) => a.localeCompare(b));
}
