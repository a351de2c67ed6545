// The allocation ledger: per node, every extent claimed on its drives. The allocator claims bytes
// here before it writes a record, and each ledger is written only under the version it was read
// at, so two claims of overlapping bytes can never both be written: the write conflict is the
// double-booking check, and it costs one object per node touched, whatever the cluster's size.
// (docs/adr/0004-allocation-ledger.md has the argument.)
import type { MeshStorClaim } from '../kube/crds.ts';
import { StateError } from './errors.ts';

export type Claim = MeshStorClaim;

export interface NodeLedger {
  node: string;
  claims: Claim[];
  /** The version it was read at; undefined when no ledger exists for the node yet. */
  version?: string | undefined;
}

export interface ExtentLedger {
  /** The node's ledger as stored now (no claims and no version when none exists yet). */
  read(node: string): Promise<NodeLedger>;
  /**
   * Writes the ledger if it is still at `ledger.version` (creates it when that is undefined);
   * refuses with StateError `changed` otherwise. Returns it as written, with its new version.
   */
  write(ledger: NodeLedger): Promise<NodeLedger>;
  /** Every node's ledger (for the reconciler; never on the allocation path). */
  list(): Promise<NodeLedger[]>;
}

/** Whether two extents on one drive share a byte. */
export function sameBytes(a: { drive: string; start: number; end: number }, b: typeof a): boolean {
  return a.drive === b.drive && a.start < b.end && b.start < a.end;
}

/** The allocation a record's claims carry (records older than the ledger get theirs adopted). */
export const ADOPTED = 'adopted';
export const allocationOf = (rec: { allocation?: string | undefined }): string => rec.allocation ?? ADOPTED;

/**
 * The first claim of another allocation that shares a byte with `want`. Another attempt for the
 * same volume counts too: only one of them writes the record, and the other's claims must not
 * be mistaken for the winner's.
 */
export function clashWith(claims: readonly Claim[], want: Claim): Claim | undefined {
  return claims.find(
    (c) => (c.volume !== want.volume || c.allocation !== want.allocation) && sameBytes(c, want),
  );
}

/** Ledgers in memory: for unit tests and `--state memory` (part of MemoryVolumeStore). */
export class MemoryLedger implements ExtentLedger {
  private readonly ledgers = new Map<string, { claims: Claim[]; version: number }>();
  /** Writes refused for a stale version (the double-booking check firing). */
  conflicts = 0;

  async read(node: string): Promise<NodeLedger> {
    const l = this.ledgers.get(node);
    if (!l) return { node, claims: [] };
    return { node, claims: structuredClone(l.claims), version: String(l.version) };
  }

  async write(ledger: NodeLedger): Promise<NodeLedger> {
    const cur = this.ledgers.get(ledger.node);
    if ((cur ? String(cur.version) : undefined) !== ledger.version) {
      this.conflicts++;
      throw new StateError('changed', `the ledger of ${ledger.node} changed since it was read; retry`);
    }
    const version = (cur?.version ?? 0) + 1;
    this.ledgers.set(ledger.node, { claims: structuredClone(ledger.claims), version });
    return { node: ledger.node, claims: structuredClone(ledger.claims), version: String(version) };
  }

  async list(): Promise<NodeLedger[]> {
    return Promise.all([...this.ledgers.keys()].map((n) => this.read(n)));
  }
}
