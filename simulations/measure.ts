// End-of-run measurements taken from the cluster model itself: how evenly drives filled, how
// whole their free space stayed, GPT entries used, and every volume's placement as rows.
import type { ClusterState } from '../placement/cluster.ts';

export interface PlacementRow {
  volume: string;
  sizeBytes: number;
  replicaCount: number;
  replica: string;
  node: string;
  zone: string;
  drive: string;
  start: number;
  end: number;
  state: string;
  attachedNode: string;
}

export interface DriveStats {
  fillStddev: number;
  freeContiguity: number;
  slotsUsedShare: number;
  maxSlotsUsed: number;
}

export function finalStats(c: ClusterState, into: DriveStats): void {
  const fills: number[] = [];
  let contiguity = 0;
  let withFree = 0;
  let slotsUsed = 0;
  let slots = 0;
  let maxSlots = 0;
  for (const n of c.nodes) {
    for (const d of n.drives) {
      let mine = 0;
      let foreign = 0;
      for (const t of d.extents) {
        if (t.claim.kind === 'foreign') foreign += t.end - t.start;
        else mine += t.end - t.start;
      }
      const cap = d.capacityBytes - foreign;
      if (cap > 0) fills.push(mine / cap);
      if (d.freeBytes > 0) {
        contiguity += d.largestFree / d.freeBytes;
        withFree++;
      }
      slotsUsed += d.slotsUsed;
      slots += d.gptSlots;
      maxSlots = Math.max(maxSlots, d.slotsUsed);
    }
  }
  const mean = fills.reduce((a, b) => a + b, 0) / Math.max(1, fills.length);
  into.fillStddev = Math.sqrt(fills.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, fills.length));
  into.freeContiguity = withFree > 0 ? contiguity / withFree : 1;
  into.slotsUsedShare = slots > 0 ? slotsUsed / slots : 0;
  into.maxSlotsUsed = maxSlots;
}

/** One row per member of every volume, volumes by id, members in their order. */
export function placementRows(c: ClusterState): PlacementRow[] {
  const rows: PlacementRow[] = [];
  const ids = [...c.volumes.keys()].sort();
  for (const id of ids) {
    const v = c.volumes.get(id);
    if (!v) continue;
    for (const r of v.replicas) {
      rows.push({
        volume: v.id,
        sizeBytes: v.sizeBytes,
        replicaCount: v.replicaCount,
        replica: r.id,
        node: r.node,
        zone: c.node(r.node)?.zone ?? '',
        drive: r.drive,
        start: r.extent.start,
        end: r.extent.end,
        state: r.state,
        attachedNode: v.attachedNode ?? '',
      });
    }
  }
  return rows;
}
