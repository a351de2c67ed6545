// One drive's space: what is taken (partitions on disk, replicas in volume specs, in-flight
// reservations) and what is free, 1 MiB aligned.
import { PlacementError } from './errors.ts';
import { usableRange } from './geometry.ts';
import type { DriveInfo, Extent } from './model.ts';
import { alignDown, alignUp } from './units.ts';

export type Claim =
  | { kind: 'foreign'; label?: string | undefined }
  | { kind: 'replica'; volumeId: string; replicaId: string; onDisk: boolean }
  | { kind: 'orphan'; volumeId: string; replicaId: string } // on disk, owned by no live volume
  | { kind: 'reservation'; reservationId: string; replicaId: string };

export interface TakenExtent extends Extent {
  claim: Claim;
}

export type ExtentFit = 'best' | 'worst' | 'first';

export class DriveState {
  readonly id: string;
  readonly node: string;
  readonly sizeBytes: number;
  readonly logicalBlockSize: number;
  readonly gptSlots: number;
  readonly usable: Extent;
  /** Sorted by start. Entries only overlap when loaded data already conflicts (see `conflicts`). */
  private taken: TakenExtent[] = [];
  /**
   * Free extents, sorted by start, as flat pairs [start0, end0, start1, end1, …]: a drive holds as
   * many holes as partitions, and at 100k volumes an object with two boxed numbers per hole was
   * ~70 bytes where a pair of doubles is 16 (issue 15 §3).
   */
  private freePairs: Float64Array = new Float64Array(0);
  freeBytes = 0;
  largestFree = 0;
  /** Extents held by MeshStor replicas and reservations, and bytes of foreign partitions. */
  meshstorExtents = 0;
  foreignBytes = 0;

  constructor(node: string, info: Pick<DriveInfo, 'id' | 'sizeBytes' | 'logicalBlockSize' | 'gptSlots'>) {
    if (!(info.sizeBytes > 0))
      throw new PlacementError('invalid', `drive ${node}/${info.id}: size must be > 0`);
    if (!(info.gptSlots > 0))
      throw new PlacementError('invalid', `drive ${node}/${info.id}: gptSlots must be > 0`);
    if (![512, 4096].includes(info.logicalBlockSize)) {
      throw new PlacementError(
        'invalid',
        `drive ${node}/${info.id}: logical block size ${info.logicalBlockSize} (expected 512 or 4096)`,
      );
    }
    this.id = info.id;
    this.node = node;
    this.sizeBytes = info.sizeBytes;
    this.logicalBlockSize = info.logicalBlockSize;
    this.gptSlots = info.gptSlots;
    this.usable = usableRange(info.sizeBytes, info.logicalBlockSize, info.gptSlots);
    this.recompute();
  }

  get slotsUsed(): number {
    return this.taken.length;
  }

  get slotsFree(): number {
    return Math.max(0, this.gptSlots - this.taken.length);
  }

  get capacityBytes(): number {
    return this.usable.end - this.usable.start;
  }

  /** Free extents, sorted by start (a fresh list on each call). */
  get free(): readonly Extent[] {
    const out: Extent[] = [];
    const f = this.freePairs;
    for (let i = 0; i < f.length; i += 2) out.push({ start: f[i] as number, end: f[i + 1] as number });
    return out;
  }

  get extents(): readonly TakenExtent[] {
    return this.taken;
  }

  /** Largest extent a new partition could use, or 0 when the table has no slot left. */
  get largestPlaceable(): number {
    return this.slotsFree > 0 ? this.largestFree : 0;
  }

  /**
   * Records an extent as taken without checks: for loading what already exists, where refusing
   * would hide data. Overlaps are reported by `conflicts()`.
   */
  load(extent: Extent, claim: Claim): void {
    this.insert({ start: extent.start, end: extent.end, claim });
  }

  /** Takes a new extent; refuses anything outside free space or past the last GPT slot. */
  take(extent: Extent, claim: Claim): void {
    const where = `${this.node}/${this.id} [${extent.start}, ${extent.end})`;
    if (!(extent.end > extent.start)) throw new PlacementError('invalid', `extent ${where} is empty`);
    if (extent.start % 4096 !== 0 || extent.end % 4096 !== 0) {
      throw new PlacementError('invalid', `extent ${where} is not 4 KiB aligned`);
    }
    if (this.slotsFree === 0)
      throw new PlacementError('exhausted', `drive ${this.node}/${this.id}: no GPT slot left`);
    if (!this.isFree(extent)) throw new PlacementError('conflict', `extent ${where} is not free`);
    this.insert({ start: extent.start, end: extent.end, claim });
  }

  /** Frees the extent starting at `start` whose claim matches; returns whether one was found. */
  drop(start: number, matches: (c: Claim) => boolean): boolean {
    const i = this.taken.findIndex((t) => t.start === start && matches(t.claim));
    if (i < 0) return false;
    this.taken.splice(i, 1);
    this.recompute();
    return true;
  }

  /** Changes the claim on an existing extent (a reservation becomes a replica, a replica an orphan). */
  reclaim(start: number, matches: (c: Claim) => boolean, claim: Claim): boolean {
    const t = this.taken.find((x) => x.start === start && matches(x.claim));
    if (!t) return false;
    t.claim = claim;
    this.recompute();
    return true;
  }

  find(start: number, end: number): TakenExtent | undefined {
    return this.taken.find((t) => t.start === start && t.end === end);
  }

  isFree(extent: Extent): boolean {
    const f = this.freePairs;
    for (let i = 0; i < f.length; i += 2) {
      const start = f[i] as number;
      if (start <= extent.start && extent.end <= (f[i + 1] as number)) return true;
      if (start > extent.start) return false;
    }
    return false;
  }

  /** Pairs of taken extents that overlap: loaded data that disagrees with itself. */
  conflicts(): Array<[TakenExtent, TakenExtent]> {
    const out: Array<[TakenExtent, TakenExtent]> = [];
    for (let i = 0; i < this.taken.length; i++) {
      const a = this.taken[i] as TakenExtent;
      for (let j = i + 1; j < this.taken.length; j++) {
        const b = this.taken[j] as TakenExtent;
        if (b.start >= a.end) break;
        out.push([a, b]);
      }
    }
    return out;
  }

  /** Size of the smallest free extent that holds `bytes` (0 when none or no GPT slot): no allocation. */
  smallestHoleFor(bytes: number): number {
    if (this.slotsFree === 0) return 0;
    let best = 0;
    const f = this.freePairs;
    for (let i = 0; i < f.length; i += 2) {
      const len = (f[i + 1] as number) - (f[i] as number);
      if (len >= bytes && (best === 0 || len < best)) best = len;
    }
    return best;
  }

  /**
   * The free extent ("hole") a new partition of `bytes` goes into under `fit`; the partition is
   * placed at the hole's start so what is left stays one piece.
   */
  pick(bytes: number, fit: ExtentFit): { extent: Extent; holeBytes: number } | undefined {
    if (this.slotsFree === 0) return undefined;
    let chosen = -1; // index of the chosen hole's start in freePairs
    let cur = 0;
    const f = this.freePairs;
    for (let i = 0; i < f.length; i += 2) {
      const start = f[i] as number;
      const len = (f[i + 1] as number) - start;
      if (len < bytes) continue;
      if (fit === 'first') return { extent: { start, end: start + bytes }, holeBytes: len };
      if (chosen < 0 || (fit === 'best' ? len < cur : len > cur)) {
        chosen = i;
        cur = len;
      }
    }
    if (chosen < 0) return undefined;
    const start = f[chosen] as number;
    return { extent: { start, end: start + bytes }, holeBytes: cur };
  }

  private insert(t: TakenExtent): void {
    let lo = 0;
    let hi = this.taken.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.taken[mid] as TakenExtent).start <= t.start) lo = mid + 1;
      else hi = mid;
    }
    this.taken.splice(lo, 0, t);
    this.recompute();
  }

  private recompute(): void {
    const free: number[] = [];
    let cursor = this.usable.start;
    let bytes = 0;
    let largest = 0;
    const push = (a: number, b: number) => {
      const s = alignUp(a);
      const e = alignDown(Math.min(b, this.usable.end));
      if (e > s) {
        free.push(s, e);
        bytes += e - s;
        if (e - s > largest) largest = e - s;
      }
    };
    let mine = 0;
    let foreign = 0;
    for (const t of this.taken) {
      if (t.start > cursor) push(cursor, t.start);
      if (t.end > cursor) cursor = t.end;
      if (t.claim.kind === 'replica' || t.claim.kind === 'reservation') mine++;
      else if (t.claim.kind === 'foreign') foreign += t.end - t.start;
    }
    this.meshstorExtents = mine;
    this.foreignBytes = foreign;
    push(cursor, this.usable.end);
    this.freePairs = Float64Array.from(free);
    this.freeBytes = bytes;
    this.largestFree = largest;
  }
}
