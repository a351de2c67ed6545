// Line charts over simulated time, one line per policy (MeshStor's drawn thick, the others thin),
// with the scenario's events as dashed rules and each policy's first failed allocation as a point:
// vega-lite compiled to vega and rendered to SVG headless (no browser, no canvas), so the files
// are the same on every run.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { PolicyRun, SeriesPoint } from './simulator.ts';

export interface ChartEvent {
  t: number;
  label: string;
}

type Field = 'fill' | 'locality' | 'syncs';

/** An axis that shows the differences: from just below the lowest value, never wider than 0..1. */
function shareDomain(values: readonly number[]): [number, number] {
  const low = values.length > 0 ? Math.min(...values) : 0;
  return [Math.max(0, Math.floor((low - 0.02) * 20) / 20), 1];
}

function lineSpec(
  title: string,
  field: Field,
  runs: readonly PolicyRun[],
  events: readonly ChartEvent[],
): TopLevelSpec {
  const values = runs.flatMap((r) =>
    r.series.map((p: SeriesPoint) => ({
      policy: r.metrics.policy,
      mine: r.metrics.policy === 'meshstor' ? 'meshstor' : 'baseline',
      hour: p.t,
      value: p[field],
    })),
  );
  const share = field !== 'syncs';
  const y = {
    field: 'value',
    type: 'quantitative' as const,
    title: share ? field : 'syncs running or waiting',
    ...(share ? { axis: { format: '%' }, scale: { domain: shareDomain(values.map((v) => v.value)) } } : {}),
  };
  const failures =
    field === 'fill'
      ? runs.flatMap((r) => {
          const at = r.metrics.fillAtFirstFailure;
          if (at === null) return [];
          const p = r.series.find((x) => x.fill >= at - 1e-9) ?? r.series[r.series.length - 1];
          return p ? [{ policy: r.metrics.policy, hour: p.t, value: at }] : [];
        })
      : [];
  const color = { field: 'policy', type: 'nominal' as const, sort: runs.map((r) => r.metrics.policy) };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 640,
    height: 300,
    background: 'white',
    layer: [
      {
        data: { values },
        mark: { type: 'line' },
        encoding: {
          x: { field: 'hour', type: 'quantitative', title: 'simulated hours' },
          y,
          color,
          strokeWidth: {
            field: 'mine',
            type: 'ordinal',
            sort: ['meshstor', 'baseline'],
            scale: { domain: ['meshstor', 'baseline'], range: [3, 1] },
            legend: null,
          },
        },
      },
      ...(events.length > 0
        ? [
            {
              data: { values: events.map((e) => ({ hour: e.t, label: e.label })) },
              mark: { type: 'rule' as const, strokeDash: [4, 4], color: '#888' },
              encoding: { x: { field: 'hour', type: 'quantitative' as const } },
            },
            {
              data: { values: events.map((e) => ({ hour: e.t, label: e.label })) },
              mark: { type: 'text' as const, angle: 270, align: 'left' as const, dx: 4, dy: -4, fontSize: 9 },
              encoding: {
                x: { field: 'hour', type: 'quantitative' as const },
                y: { value: 0 },
                text: { field: 'label', type: 'nominal' as const },
              },
            },
          ]
        : []),
      ...(failures.length > 0
        ? [
            {
              data: { values: failures },
              mark: { type: 'point' as const, shape: 'cross', size: 80, filled: true },
              encoding: { x: { field: 'hour', type: 'quantitative' as const }, y, color },
            },
          ]
        : []),
    ],
  } as TopLevelSpec;
}

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return `${svg}\n`;
}

export async function renderCharts(
  runs: readonly PolicyRun[],
  events: readonly ChartEvent[] = [],
): Promise<Record<string, string>> {
  return {
    'fill.svg': await render(
      lineSpec('Share of raw replica space allocated (x: first failed allocation)', 'fill', runs, events),
    ),
    // Locality and the syncs that restore it share a time axis: one file, two panels.
    'locality.svg': await render({
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      background: 'white',
      vconcat: [
        lineSpec('Pods next to an in-sync replica', 'locality', runs, events),
        lineSpec('Syncs running or waiting (rebuild storms)', 'syncs', runs, events),
      ].map(({ $schema: _s, background: _b, ...panel }) => panel),
    } as TopLevelSpec),
  };
}
