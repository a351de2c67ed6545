// Runs a scenario for every policy it names and writes the outputs. Same scenario and seed give
// byte-identical files: nothing here reads a clock or the environment into the outputs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { policyByName } from '../placement/policies.ts';
import { renderCharts } from './charts.ts';
import { generateCluster } from './cluster-gen.ts';
import { markdownReport, metricsCsv, seriesCsv, terminalTable } from './report.ts';
import { parseScenario, type Scenario, ScenarioError } from './scenario.ts';
import { type PolicyRun, simulatePolicy } from './simulator.ts';
import { buildTimeline } from './timeline.ts';

export const DEFAULT_SCENARIO_PATH = new URL('./default-scenario.yaml', import.meta.url);

export function loadScenario(path?: string): { scenario: Scenario; source: string } {
  if (!path) {
    return {
      scenario: parseScenario(readFileSync(DEFAULT_SCENARIO_PATH, 'utf8'), 'default'),
      source: 'default (embedded)',
    };
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError(path, [
      `cannot read scenario file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    ]);
  }
  return { scenario: parseScenario(text, path), source: path };
}

export interface Progress {
  start(total: number): void;
  tick(label: string): void;
  stop(): void;
}

export interface SimulationResult {
  runs: PolicyRun[];
  table: string;
  files: Record<string, string>;
  eventsProcessed: number;
}

export async function runScenario(
  scenario: Scenario,
  source: string,
  opts: { charts?: boolean; progress?: Progress } = {},
): Promise<SimulationResult> {
  const nodes = generateCluster(scenario);
  const timeline = buildTimeline(
    scenario,
    nodes.map((n) => n.name),
  );
  const policies = scenario.policies.map(policyByName);
  opts.progress?.start(timeline.length * policies.length);
  const runs: PolicyRun[] = [];
  for (const p of policies) {
    runs.push(simulatePolicy(scenario, nodes, timeline, p, () => opts.progress?.tick(p.name)));
  }
  opts.progress?.stop();

  let rawBytes = 0;
  for (const n of nodes) {
    for (const d of n.drives)
      rawBytes += d.sizeBytes - d.partitions.reduce((s, x) => s + (x.end - x.start), 0);
  }
  const arrivals = timeline.filter((s) => s.kind === 'arrival');
  const events = timeline.flatMap((s) =>
    s.kind === 'event'
      ? [
          `${s.event.type} at ${s.t} h${'node' in s.event ? ` (${s.event.node})` : ''}${s.event.type === 'evictionStorm' ? ` (${s.event.fraction * 100}% of pods)` : ''}`,
        ]
      : [],
  );
  const files: Record<string, string> = {};
  const charts = opts.charts === false ? {} : await renderCharts(runs);
  Object.assign(files, charts);
  files['metrics.csv'] = metricsCsv(runs);
  files['timeseries.csv'] = seriesCsv(runs);
  files['report.md'] = markdownReport(
    {
      scenario,
      source,
      nodes: nodes.length,
      rawBytes,
      groups: arrivals.length,
      volumes: arrivals.length * scenario.workload.groupSize,
      events,
      policyDescriptions: Object.fromEntries(policies.map((p) => [p.name, p.description])),
      charts: Object.keys(charts),
    },
    runs,
  );
  return {
    runs,
    table: terminalTable(runs),
    files,
    eventsProcessed: runs.reduce((s, r) => s + r.metrics.events, 0),
  };
}

export function writeOutputs(dir: string, files: Record<string, string>): string[] {
  mkdirSync(dir, { recursive: true });
  return Object.keys(files)
    .sort()
    .map((name) => {
      const path = join(dir, name);
      writeFileSync(path, files[name] as string);
      return path;
    });
}
