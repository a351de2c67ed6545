// The drain plan `meshstor drain NODE` prints before anything moves: every replica on the node,
// where it goes (placement's planDrain: the pod's node when it has room, else where the policy
// says, each destination reserved before the next is picked), the bytes to copy, the order (the
// most exposed volumes first, then the largest: the order the relocation reconciler starts them),
// how many copies stay in sync while each runs, and what waits and why. Pure: records and nodes in,
// plan out. The moves themselves are the relocation reconciler's (relocation.ts), asked by the
// Node label meshstor.io/evacuate=true.
import { ClusterState } from '../placement/cluster.ts';
import { PlacementEngine } from '../placement/engine.ts';
import type { NodeInfo } from '../placement/model.ts';
import { formatBytes } from '../placement/units.ts';
import type { VolumeRecord } from '../state/store.ts';
import { volumeModel } from './rebuilder.ts';
import { evacuationSource } from './relocator.ts';

export interface DrainMove {
  /** 1, 2, …: the order moves start in. */
  order: number;
  volume: string;
  replica: string;
  to: { node: string; drive: string };
  bytes: number;
  replicaCount: number;
  /** In-sync copies while the move runs (the leaving one stays until the new one is in sync). */
  inSyncWhileMoving: number;
  /** In-sync copies off the drained node while it runs: 0 means the only copy is on it. */
  inSyncElsewhere: number;
  /** Why it does not start now, when it does not. */
  waits?: string | undefined;
  /** The move is under way (the record's relocation takes this replica off the node). */
  running: boolean;
}

export interface DrainReport {
  node: string;
  moves: DrainMove[];
  /** Volumes with a replica on the node that placement cannot put anywhere else, and why. */
  unplaceable: { volume: string; reason: string }[];
  totalBytes: number;
}

/** The relocation running now that takes the volume's member off `node`, if any. */
function runningOff(rec: VolumeRecord, node: string): VolumeRecord['replicas'][number] | undefined {
  const r = rec.relocation;
  if (!r || r.step === 'done' || r.step === 'cancelled') return undefined;
  const from = rec.replicas.find((x) => x.id === r.fromReplica);
  return from?.node === node ? rec.replicas.find((x) => x.id === r.toReplica) : undefined;
}

/** Why a volume's member on `node` is not moved now (undefined: it moves, or starts in its turn). */
export function whyWaiting(rec: VolumeRecord, node: string): string | undefined {
  if (evacuationSource(rec, new Set([node])) === node || runningOff(rec, node)) return undefined;
  if (rec.relocation && rec.relocation.step !== 'done' && rec.relocation.step !== 'cancelled')
    return 'another move of this volume is running; it starts after that one';
  if (!rec.attachment)
    return 'not attached: no node runs its array to resync a new member; it moves once a pod stages it';
  const live = rec.replicas.filter((r) => r.state !== 'Removed');
  const inSync = live.filter((r) => r.state === 'InSync').length;
  return `degraded (${inSync} of ${rec.replicaCount} copies in sync): it is caught up or rebuilt first`;
}

export function planDrainReport(
  nodes: readonly NodeInfo[],
  records: readonly VolumeRecord[],
  node: string,
): DrainReport {
  const cluster = ClusterState.fromSnapshot({
    nodes: [...nodes],
    volumes: records.filter((r) => r.phase === 'Active').map(volumeModel),
  });
  const plan = new PlacementEngine(cluster).planDrain(node);
  const byId = new Map(records.map((r) => [r.id, r]));
  const moves: DrainMove[] = [];
  const add = (rec: VolumeRecord, to: { node: string; drive: string }, bytes: number, running: boolean) => {
    const leaving = rec.replicas.find((r) => r.node === node && r.state !== 'Removed');
    const inSync = rec.replicas.filter((r) => r.state === 'InSync');
    moves.push({
      order: moves.length + 1,
      volume: rec.id,
      replica: leaving?.id ?? '?',
      to: { node: to.node, drive: to.drive },
      running,
      bytes,
      replicaCount: rec.replicaCount,
      inSyncWhileMoving: inSync.length,
      inSyncElsewhere: inSync.filter((r) => r.node !== node).length,
      waits: whyWaiting(rec, node),
    });
  };
  // moves under way first, going where their records say (placement would plan a new one)
  for (const rec of records) {
    const to = rec.phase === 'Active' ? runningOff(rec, node) : undefined;
    if (to) add(rec, to, rec.relocation?.bytesTotal ?? rec.sizeBytes, true);
  }
  const planned = new Set(moves.map((m) => m.volume));
  for (const m of plan.moves) {
    const rec = byId.get(m.volumeId);
    if (rec && m.to && !planned.has(rec.id)) add(rec, m.to, m.bytes, false);
  }
  return {
    node,
    moves,
    unplaceable: plan.unplaceable
      .filter((u) => !planned.has(u.volumeId))
      .map((u) => ({ volume: u.volumeId, reason: u.message })),
    totalBytes: moves.reduce((s, m) => s + m.bytes, 0),
  };
}

/** The plan as `meshstor drain` prints it. */
export function formatDrainReport(r: DrainReport, dryRun: boolean): string {
  const lines: string[] = [];
  lines.push(
    `Drain plan for node ${r.node}${dryRun ? ' (dry run: nothing changes; --yes cordons the node and moves the replicas)' : ''}`,
  );
  if (r.moves.length === 0 && r.unplaceable.length === 0) {
    lines.push('No MeshStor replica is on this node: nothing to move.');
    return lines.join('\n');
  }
  const rows = r.moves.map((m) => [
    String(m.order),
    m.volume,
    m.replica,
    formatBytes(m.bytes),
    `${m.to.node}/${m.to.drive}`,
    `${m.inSyncWhileMoving} of ${m.replicaCount}`,
    m.running ? 'moving' : m.waits ? 'waits' : 'moves',
  ]);
  const head = ['#', 'volume', 'replica', 'bytes', 'to (node/drive)', 'in sync while moving', 'now'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const fmt = (row: string[]) => `  ${row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd();
  if (rows.length) lines.push(fmt(head), ...rows.map(fmt));
  lines.push(
    `Total: ${r.moves.length} moves, ${formatBytes(r.totalBytes)} to copy. Each replica leaves only once its new copy is in sync.`,
  );
  const fewer = r.moves.filter((m) => m.inSyncWhileMoving < m.replicaCount);
  lines.push('Fewer in-sync copies than replicaCount while it runs:');
  if (fewer.length === 0) lines.push('  none');
  for (const m of fewer) lines.push(`  ${m.volume}: ${m.inSyncWhileMoving} of ${m.replicaCount} in sync`);
  const alone = r.moves.filter((m) => m.inSyncElsewhere === 0 && m.inSyncWhileMoving > 0);
  if (alone.length) {
    lines.push(`Only copy on ${r.node} until its new copy is in sync:`);
    for (const m of alone) lines.push(`  ${m.volume}`);
  }
  const waiting = r.moves.filter((m) => m.waits);
  if (waiting.length) {
    lines.push('Waiting (not moved now):');
    for (const m of waiting) lines.push(`  ${m.volume}: ${m.waits}`);
  }
  if (r.unplaceable.length) {
    lines.push('Cannot be placed anywhere else (they stay on the node):');
    for (const u of r.unplaceable) lines.push(`  ${u.volume}: ${u.reason}`);
  }
  return lines.join('\n');
}
