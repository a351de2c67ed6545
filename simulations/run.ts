// Runs a scenario for every policy it names and writes the outputs. Same scenario and seed give
// byte-identical files: nothing here reads a clock or the environment into the outputs.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { policyByName } from '../placement/policies.ts';
import { renderCharts } from './charts.ts';
import { generateCluster } from './cluster-gen.ts';
import { markdownReport, metricsCsv, placementsCsv, seriesCsv, terminalTable } from './report.ts';
import { parseScenario, type Scenario, ScenarioError, SimulationInputError } from './scenario.ts';
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
  const eventSteps = timeline.flatMap((st) => (st.kind === 'event' ? [st] : []));
  eventSteps.sort((a, b) => a.index - b.index);
  const events = eventSteps.map((st) => describeEvent(st.event, st.t));
  const markers = eventSteps.map((st) => ({ t: st.t, label: st.event.type }));
  const files: Record<string, string> = {};
  const charts = opts.charts === false ? {} : await renderCharts(runs, markers);
  Object.assign(files, charts);
  files['metrics.csv'] = metricsCsv(runs);
  files['timeseries.csv'] = seriesCsv(runs);
  if (scenario.outputs.placements) files['placements.csv'] = placementsCsv(runs);
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
    eventsProcessed: runs.reduce((s, r) => s + r.metrics.events + r.metrics.timedEvents, 0),
  };
}

function describeEvent(e: Scenario['events'][number], t: number): string {
  const where =
    e.type === 'driveFailure'
      ? ` (${e.node}, drive ${e.drive})`
      : 'node' in e
        ? ` (${e.node})`
        : e.type === 'zoneOutage' || e.type === 'nodeAdded'
          ? ` (zone ${e.zone})`
          : '';
  const storm =
    e.type === 'evictionStorm'
      ? ` (${e.fraction * 100}% of pods${e.zone === undefined ? '' : ` in zone ${e.zone}`})`
      : '';
  const detail =
    e.type === 'nodeLoss' && e.returnAfterHours !== undefined ? `, back after ${e.returnAfterHours} h` : '';
  return `${e.type} at ${t} h${where}${detail}${storm}`;
}

/**
 * mkdir -p one level at a time: Node's recursive mkdir can spin forever under /proc, where a
 * missing name is ENOENT however often its parent is made.
 */
function makeDirectories(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  while (!existsSync(at)) {
    missing.unshift(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  if (!statSync(at).isDirectory()) {
    throw Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR' });
  }
  for (const d of missing) mkdirSync(d);
}

/** Writes the files under `dir`; a directory that cannot be made or written is a clear error. */
export function writeOutputs(dir: string, files: Record<string, string>): string[] {
  const fail = (e: unknown, what: string) =>
    new SimulationInputError(
      `cannot write the outputs to ${dir}: ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  try {
    makeDirectories(dir);
  } catch (e) {
    throw fail(e, 'cannot make the directory');
  }
  return Object.keys(files)
    .sort()
    .map((name) => {
      const path = join(dir, name);
      try {
        writeFileSync(path, files[name] as string);
      } catch (e) {
        throw fail(e, `cannot write ${name}`);
      }
      return path;
    });
}
