// Line charts of fill and locality over time, one line per policy: vega-lite compiled to vega and
// rendered to SVG headless (no browser, no canvas), so the files are the same on every run.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { PolicyRun } from './simulator.ts';

function lineSpec(title: string, field: 'fill' | 'locality', runs: readonly PolicyRun[]): TopLevelSpec {
  const values = runs.flatMap((r) =>
    r.series.map((p) => ({ policy: r.metrics.policy, hour: p.t, value: p[field] })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 640,
    height: 300,
    background: 'white',
    data: { values },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'hour', type: 'quantitative', title: 'simulated hours' },
      y: {
        field: 'value',
        type: 'quantitative',
        title: field,
        axis: { format: '%' },
        scale: { domain: [0, 1] },
      },
      color: { field: 'policy', type: 'nominal', sort: runs.map((r) => r.metrics.policy) },
    },
  };
}

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return `${svg}\n`;
}

export async function renderCharts(runs: readonly PolicyRun[]): Promise<Record<string, string>> {
  return {
    'fill.svg': await render(lineSpec('Share of raw replica space allocated', 'fill', runs)),
    'locality.svg': await render(lineSpec('Pods next to an in-sync replica', 'locality', runs)),
  };
}
