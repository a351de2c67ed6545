// `meshstor simulate [scenario.yaml]`: compare placement policies on a scenario (the embedded
// default when no file is given), print the table, write report.md, CSV and SVG charts.
import cliProgress from 'cli-progress';
import { loadScenario, type Progress, runScenario, writeOutputs } from '../simulations/run.ts';
import { defineCommand, UsageError } from './cli.ts';

/** A bar on a terminal; plain lines every 10% elsewhere (a log has no use for redraws). */
function progressBar(enabled: boolean): Progress | undefined {
  if (!enabled) return undefined;
  let n = 0;
  let total = 0;
  if (!process.stderr.isTTY) {
    let shown = 0;
    return {
      start: (t) => {
        total = t;
      },
      tick: (policy) => {
        n++;
        const pct = Math.floor((100 * n) / Math.max(1, total));
        if (pct >= shown + 10) {
          shown = pct - (pct % 10);
          process.stderr.write(`simulating: ${shown}% (${n}/${total} events, ${policy})\n`);
        }
      },
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: 'simulating {bar} {percentage}% | {value}/{total} events | {policy}',
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (t) => bar.start(t, 0, { policy: '' }),
    tick: (policy) => {
      n++;
      // Redrawing on every event would cost more than the simulation itself.
      if (n % 500 === 0) bar.update(n, { policy });
    },
    stop: () => {
      bar.update(n);
      bar.stop();
    },
  };
}

export const simulateCommand = defineCommand({
  name: 'simulate',
  about: 'compare placement policies on a scenario (default: the embedded one)',
  description: `Runs a placement scenario once per policy and compares them. Without a file it runs the embedded
default scenario (3 zones, 24 nodes, a Patroni-like workload, a drain and a node loss).`,
  positionals: { usage: '[SCENARIO.yaml]', max: 1 },
  flags: {
    out: {
      kind: 'string',
      placeholder: 'DIR',
      about:
        'where report.md, metrics.csv, timeseries.csv and the SVG charts go (default: simulation-output/<scenario name>)',
    },
    policies: {
      kind: 'string',
      placeholder: 'A,B',
      about: "only these policies (default: the scenario's list)",
    },
    'no-charts': { kind: 'boolean', default: false, about: 'skip the SVG charts' },
    progress: { kind: 'boolean', about: 'always show the progress bar (default: only on a terminal)' },
    'no-progress': { kind: 'boolean', default: false, about: 'never show it' },
  },
  async run(config, { positionals }) {
    const { scenario, source } = loadScenario(positionals[0]);
    if (config.policies) {
      const { scenarioSchema } = await import('../simulations/scenario.ts');
      const checked = scenarioSchema.safeParse({ ...scenario, policies: config.policies.split(',') });
      if (!checked.success)
        throw new UsageError(`--policies: ${checked.error.issues.map((i) => i.message).join('; ')}`);
      scenario.policies = checked.data.policies;
    }
    const show = config.noProgress ? false : (config.progress ?? Boolean(process.stderr.isTTY));
    const t0 = performance.now();
    const result = await runScenario(scenario, source, {
      charts: !config.noCharts,
      progress: progressBar(show),
    });
    const secs = (performance.now() - t0) / 1000;
    const dir = config.out ?? `simulation-output/${scenario.name}`;
    const written = writeOutputs(dir, result.files);
    console.log(`scenario ${scenario.name} (${source}), seed ${scenario.seed}\n`);
    console.log(result.table);
    console.log(`\nwrote ${written.join(', ')}`);
    console.error(`simulated ${result.eventsProcessed} events in ${secs.toFixed(2)} s`);
    return 0;
  },
});
