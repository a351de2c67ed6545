// Turns policy runs into a terminal table, CSV files and a markdown report.
import { formatBytes } from '../placement/units.ts';
import type { Scenario } from './scenario.ts';
import type { PolicyMetrics, PolicyRun } from './simulator.ts';

const pct = (x: number | null) => (x === null ? 'none' : `${(100 * x).toFixed(1)}%`);
const hours = (x: number | null) => (x === null ? 'open' : `${x.toFixed(1)} h`);
const num = (x: number, d = 3) => x.toFixed(d);

interface Column {
  head: string;
  cell: (m: PolicyMetrics) => string;
}

const COLUMNS: Column[] = [
  { head: 'policy', cell: (m) => m.policy },
  { head: 'fill at 1st fail', cell: (m) => pct(m.fillAtFirstFailure) },
  { head: 'slots at 1st fail', cell: (m) => pct(m.slotsAtFirstFailure) },
  { head: 'failed allocs', cell: (m) => `${m.failedAllocations}/${m.allocations}` },
  { head: 'failed bytes', cell: (m) => formatBytes(m.failedBytes) },
  { head: 'locality time', cell: (m) => pct(m.timeLocality) },
  { head: 'remote pod-h', cell: (m) => m.remotePodHours.toFixed(0) },
  { head: 'locality end', cell: (m) => pct(m.locality) },
  { head: 'locality min', cell: (m) => pct(m.minLocality) },
  { head: 'relocated', cell: (m) => formatBytes(m.relocationBytes) },
  { head: 'drained', cell: (m) => formatBytes(m.drainBytes) },
  { head: 'rebuilt', cell: (m) => formatBytes(m.rebuildBytes) },
  { head: 'caught up', cell: (m) => formatBytes(m.catchUpBytes) },
  { head: 'moved/vol', cell: (m) => formatBytes(m.bytesMovedPerVolume) },
  { head: 'settle mean/max', cell: (m) => `${hours(m.meanSettleHours)}/${hours(m.maxSettleHours)}` },
  { head: 'peak syncs node/all', cell: (m) => `${m.peakSyncsPerNode}/${m.peakSyncsQueued}` },
  { head: 'reloc failed', cell: (m) => String(m.relocationsFailed) },
  { head: 'lost/degraded', cell: (m) => `${m.volumesLost}/${m.volumesDegraded}` },
  { head: 'fill σ', cell: (m) => num(m.fillStddev) },
  { head: 'contiguity', cell: (m) => num(m.freeContiguity) },
  { head: 'slots used', cell: (m) => `${pct(m.slotsUsedShare)} (max ${m.maxSlotsUsed})` },
  {
    head: 'reserve eaten',
    cell: (m) =>
      m.reserveEatenAtHour === null ? 'never' : `${m.reserveEatenHours} h from ${m.reserveEatenAtHour} h`,
  },
];

export function terminalTable(runs: readonly PolicyRun[]): string {
  const rows = [COLUMNS.map((c) => c.head), ...runs.map((r) => COLUMNS.map((c) => c.cell(r.metrics)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) =>
    r.map((x, i) => (i === 0 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(rows[0] as string[]), sep, ...rows.slice(1).map(line)].join('\n');
}

export function markdownTable(runs: readonly PolicyRun[]): string {
  const head = `| ${COLUMNS.map((c) => c.head).join(' | ')} |`;
  const sep = `|${COLUMNS.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`;
  return [head, sep, ...runs.map((r) => `| ${COLUMNS.map((c) => c.cell(r.metrics)).join(' | ')} |`)].join(
    '\n',
  );
}

const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

export function metricsCsv(runs: readonly PolicyRun[]): string {
  const keys = Object.keys((runs[0] as PolicyRun).metrics) as (keyof PolicyMetrics)[];
  return `${[keys.join(','), ...runs.map((r) => keys.map((k) => csvCell(r.metrics[k])).join(','))].join('\n')}\n`;
}

export function seriesCsv(runs: readonly PolicyRun[]): string {
  const lines = ['policy,hour,fill,locality,syncs'];
  for (const r of runs) {
    for (const p of r.series)
      lines.push(`${r.metrics.policy},${p.t},${p.fill.toFixed(6)},${p.locality.toFixed(6)},${p.syncs}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Every member of every volume at the end of each policy's run. */
export function placementsCsv(runs: readonly PolicyRun[]): string {
  const lines = ['policy,volume,sizeBytes,replicaCount,replica,node,zone,drive,start,end,state,attachedNode'];
  for (const r of runs) {
    for (const x of r.placements) {
      lines.push(
        [
          r.metrics.policy,
          x.volume,
          x.sizeBytes,
          x.replicaCount,
          x.replica,
          x.node,
          x.zone,
          x.drive,
          x.start,
          x.end,
          x.state,
          x.attachedNode,
        ]
          .map(csvCell)
          .join(','),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Hours from each scenario event until the syncs it caused ended, per policy. */
export function settleTable(events: readonly string[], runs: readonly PolicyRun[]): string {
  if (events.length === 0) return '';
  const head = `| event | ${runs.map((r) => r.metrics.policy).join(' | ')} |`;
  const sep = `|---|${runs.map(() => '---:').join('|')}|`;
  const rows = events.map((e, i) => {
    const cells = runs.map((r) => hours(r.settle.find((x) => x.index === i)?.hours ?? null));
    return `| ${e} | ${cells.join(' | ')} |`;
  });
  return [head, sep, ...rows].join('\n');
}

export interface ReportContext {
  scenario: Scenario;
  source: string;
  nodes: number;
  rawBytes: number;
  groups: number;
  volumes: number;
  events: string[];
  policyDescriptions: Record<string, string>;
  charts: string[];
}

export function markdownReport(ctx: ReportContext, runs: readonly PolicyRun[]): string {
  const s = ctx.scenario;
  const out: string[] = [];
  out.push(`# Placement simulation: ${s.name}`, '');
  if (s.description) out.push(s.description, '');
  out.push(
    `- Scenario: \`${ctx.source}\`, seed ${s.seed}, ${s.durationHours} simulated hours`,
    `- Cluster: ${ctx.nodes} nodes in ${s.cluster.zones.length} zones, ${formatBytes(ctx.rawBytes)} raw space for replicas (OS partitions excluded), ${s.cluster.gptSlots} GPT slots per drive`,
    `- Workload: ${ctx.groups} database clusters of ${s.workload.groupSize} (${ctx.volumes} volumes requested), ${s.workload.binding}, spread ${s.workload.spread}`,
    `- Events: ${ctx.events.length ? ctx.events.join('; ') : 'none'}`,
    `- Syncs: ${formatBytes(s.sync.perSyncCap)}/s per sync at most, ${s.sync.concurrentPerNode} at once into a node (drives ${formatBytes(s.sync.driveBandwidth)}/s, network ${formatBytes(s.sync.networkBandwidth)}/s per node); data follows a pod after ${s.moves.dwellHours} h on its node and at least ${s.moves.stayPerMoveHour}x the copy's duration`,
    '',
    '## Results',
    '',
    markdownTable(runs),
    '',
  );
  if (ctx.events.length > 0) {
    out.push('## Time to settle after each event', '', settleTable(ctx.events, runs), '');
  }
  for (const c of ctx.charts) out.push(`![${c}](${c})`, '');
  out.push('## Policies', '');
  for (const r of runs)
    out.push(`- **${r.metrics.policy}**: ${ctx.policyDescriptions[r.metrics.policy] ?? ''}`);
  out.push(
    '',
    '## What the columns mean',
    '',
    '- **fill at 1st fail**: share of raw replica space allocated when the first allocation failed (higher is better; `none` = nothing failed). **slots at 1st fail**: share of GPT entries in use then.',
    '- **failed allocs**: failed / attempted volume allocations. **failed bytes**: usable bytes of the volumes that could not be allocated.',
    '- **locality time**: share of pod-hours run next to an in-sync replica; **remote pod-h**: pod-hours run with the data only over the network (a volume is remote until its move completes).',
    '- **moved/vol**: bytes copied by relocation, drain and rebuild per volume allocated. **settle mean/max**: hours from each scenario event until the last sync it caused ended (`open`: some never ended). **peak syncs node/all**: most syncs running into one node at once / running or waiting in the cluster.',
    '- **locality end / min**: share of pods running on a node with an in-sync replica of their volume, at the end and at the lowest sample after the first event, after relocations settled.',
    '- **relocated / drained / rebuilt**: bytes copied by relocation after reschedules, by the drain and by rebuilds after node loss.',
    "- **reloc failed**: relocation attempts that found no room on the pod's node (the pod keeps using its volume over NVMe-oF; the attempt is repeated every `moves.retryHours`, and each one counts).",
    '- **lost/degraded**: volumes whose last copy was on the lost node / volumes with fewer in-sync members than asked at the end.',
    '- **fill σ**: standard deviation of per-drive fill. **contiguity**: mean over drives of largest free extent / free bytes (1 = one hole).',
    '- **slots used**: GPT entries used over all drives (max on one drive).',
    '- **reserve eaten**: sampled hours during which a loss of the fullest node could not have been rebuilt (free space elsewhere < its bytes), and the first such hour.',
    '',
  );
  return out.join('\n');
}
