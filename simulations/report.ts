// Turns policy runs into a terminal table, CSV files and a markdown report.
import { formatBytes } from '../placement/units.ts';
import type { Scenario } from './scenario.ts';
import type { PolicyMetrics, PolicyRun } from './simulator.ts';

const pct = (x: number | null) => (x === null ? 'none' : `${(100 * x).toFixed(1)}%`);
const num = (x: number, d = 3) => x.toFixed(d);

interface Column {
  head: string;
  cell: (m: PolicyMetrics) => string;
}

const COLUMNS: Column[] = [
  { head: 'policy', cell: (m) => m.policy },
  { head: 'fill at 1st fail', cell: (m) => pct(m.fillAtFirstFailure) },
  { head: 'failed allocs', cell: (m) => `${m.failedAllocations}/${m.allocations}` },
  { head: 'locality end', cell: (m) => pct(m.locality) },
  { head: 'locality min', cell: (m) => pct(m.minLocality) },
  { head: 'relocated', cell: (m) => formatBytes(m.relocationBytes) },
  { head: 'drained', cell: (m) => formatBytes(m.drainBytes) },
  { head: 'rebuilt', cell: (m) => formatBytes(m.rebuildBytes) },
  { head: 'reloc failed', cell: (m) => String(m.relocationsFailed) },
  { head: 'lost/degraded', cell: (m) => `${m.volumesLost}/${m.volumesDegraded}` },
  { head: 'fill σ', cell: (m) => num(m.fillStddev) },
  { head: 'contiguity', cell: (m) => num(m.freeContiguity) },
  { head: 'slots used', cell: (m) => `${pct(m.slotsUsedShare)} (max ${m.maxSlotsUsed})` },
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
  const lines = ['policy,hour,fill,locality'];
  for (const r of runs) {
    for (const p of r.series)
      lines.push(`${r.metrics.policy},${p.t},${p.fill.toFixed(6)},${p.locality.toFixed(6)}`);
  }
  return `${lines.join('\n')}\n`;
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
    '',
    '## Results',
    '',
    markdownTable(runs),
    '',
  );
  for (const c of ctx.charts) out.push(`![${c}](${c})`, '');
  out.push('## Policies', '');
  for (const r of runs)
    out.push(`- **${r.metrics.policy}**: ${ctx.policyDescriptions[r.metrics.policy] ?? ''}`);
  out.push(
    '',
    '## What the columns mean',
    '',
    '- **fill at 1st fail**: share of raw replica space allocated when the first allocation failed (higher is better; `none` = nothing failed).',
    '- **failed allocs**: failed / attempted volume allocations.',
    '- **locality end / min**: share of pods running on a node with an in-sync replica of their volume, at the end and at the lowest sample after the first event, after relocations settled.',
    '- **relocated / drained / rebuilt**: bytes copied by relocation after reschedules, by the drain and by rebuilds after node loss.',
    "- **reloc failed**: relocations that found no room on the pod's node (the pod keeps using its volume over NVMe-oF).",
    '- **lost/degraded**: volumes whose last copy was on the lost node / volumes with fewer in-sync members than asked at the end.',
    '- **fill σ**: standard deviation of per-drive fill. **contiguity**: mean over drives of largest free extent / free bytes (1 = one hole).',
    '- **slots used**: GPT entries used over all drives (max on one drive).',
    '',
  );
  return out.join('\n');
}
