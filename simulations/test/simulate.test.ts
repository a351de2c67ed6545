import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCENARIO_PATH, runScenario } from '../run.ts';
import { parseScenario } from '../scenario.ts';

// A smaller copy of the default so the unit tier stays quick; same shape and events.
const small = readFileSync(DEFAULT_SCENARIO_PATH, 'utf8')
  .replace('nodesPerZone: 8', 'nodesPerZone: 4')
  .replace('durationHours: 2400', 'durationHours: 1200')
  .replace(/at: 900/, 'at: 400')
  .replace(/at: 1300/, 'at: 600')
  .replace(/at: 1500/, 'at: 800')
  .replace(/at: 1800/, 'at: 1000')
  .replace(/at: 2100/, 'at: 1100')
  .replace(/at: 2200/, 'at: 1150');

describe('simulation runs', () => {
  it('same scenario and seed give byte-identical outputs, charts included', async () => {
    const s = parseScenario(small);
    const a = await runScenario(s, 'small');
    const b = await runScenario(parseScenario(small), 'small');
    expect(Object.keys(a.files).sort()).toEqual([
      'fill.svg',
      'locality.svg',
      'metrics.csv',
      'placements.csv',
      'report.md',
      'timeseries.csv',
    ]);
    for (const k of Object.keys(a.files)) expect(b.files[k], k).toBe(a.files[k]);
    expect(a.files['fill.svg']).toMatch(/^<svg/);
    expect(a.table).toBe(b.table);
  });

  it('a different seed gives a different run', async () => {
    const a = await runScenario(parseScenario(small), 'small', { charts: false });
    const b = await runScenario(parseScenario(small.replace('seed: 42', 'seed: 43')), 'small', {
      charts: false,
    });
    expect(b.files['metrics.csv']).not.toBe(a.files['metrics.csv']);
  });

  it('reports every policy with sane metrics and the events it resolved', async () => {
    const r = await runScenario(parseScenario(small), 'small', { charts: false });
    expect(r.runs.map((x) => x.metrics.policy)).toEqual(parseScenario(small).policies);
    for (const { metrics: m, series } of r.runs) {
      expect(m.allocations).toBeGreaterThan(0);
      expect(m.locality).toBeGreaterThanOrEqual(0);
      expect(m.locality).toBeLessThanOrEqual(1);
      expect(m.finalFill).toBeGreaterThan(0);
      expect(m.finalFill).toBeLessThanOrEqual(1);
      expect(m.drainBytes + m.rebuildBytes).toBeGreaterThan(0); // the drained/lost node held replicas
      expect(series.length).toBe(Math.floor(1200 / 24) + 1);
    }
    expect(r.files['report.md']).toMatch(/drain at 400 h \([abc]-0\d\)/);
    expect(r.files['report.md']).toMatch(/nodeLoss at 600 h/);
    expect(r.files['report.md']).toMatch(/\| meshstor \|/);
    expect(r.files['metrics.csv']?.split('\n')[0]).toMatch(/^policy,fillAtFirstFailure,/);
  });

  it('an eviction storm makes data follow pods: relocation moves bytes and locality recovers', async () => {
    const storm = parseScenario(
      small.replace(
        /events:[\s\S]*$/,
        'events:\n  - { at: 600, type: evictionStorm, fraction: 0.5 }\npolicies: [meshstor]\n',
      ),
    );
    const r = await runScenario(storm, 'storm', { charts: false });
    const m = r.runs[0]?.metrics;
    expect(m?.relocationBytes).toBeGreaterThan(0);
    expect(m?.locality).toBeGreaterThan(0.8);
  });
});

describe('writing outputs', () => {
  it('an --out under a file or one that cannot be made is a clear error', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { writeOutputs } = await import('../run.ts');
    const { SimulationInputError } = await import('../scenario.ts');
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-out-'));
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    expect(() => writeOutputs(join(file, 'out'), { 'a.csv': '1\n' })).toThrow(SimulationInputError);
    expect(() => writeOutputs(join(file, 'out'), { 'a.csv': '1\n' })).toThrow(
      /cannot write the outputs to .*a-file\/out: cannot make the directory \(ENOTDIR\)/,
    );
    expect(() => writeOutputs('/proc/meshstor-out', { 'a.csv': '1\n' })).toThrow(SimulationInputError);
    expect(writeOutputs(join(dir, 'ok'), { 'a.csv': '1\n' })).toEqual([join(dir, 'ok', 'a.csv')]);
  });
});
