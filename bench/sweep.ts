// `npm run bench:sweep`: every scenario class in simulations/scenarios/ over several seeds, every
// policy on the same timelines; prints policy x class x metric (mean over seeds), the rank per
// class of meshstor-bytes (ADR 0001), meshstor-kept-holes (ADR 0003's first rule) and meshstor,
// and the wall time per policy. Wall times are measured here, never in tests.
//
//   node bench/sweep.ts [--seeds 1,2,3,4,5] [--classes a,b] [--policies a,b] [--out FILE.md]
//                       [--dwell HOURS] [--stay RATIO]   (override the scenarios' move policy)
//                       [--rank-room on|off]             (override workload.extenderRanksRoom)
import { readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadScenario, runScenario } from '../simulations/run.ts';
import type { PolicyMetrics } from '../simulations/simulator.ts';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3,4,5' },
    classes: { type: 'string' },
    policies: { type: 'string' },
    out: { type: 'string' },
    dwell: { type: 'string' },
    stay: { type: 'string' },
    'rank-room': { type: 'string' },
  },
});
const seeds = values.seeds.split(',').map(Number);
const dir = join(import.meta.dirname, '..', 'simulations', 'scenarios');
const classes = (
  values.classes?.split(',') ??
  readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => basename(f, '.yaml'))
).sort();
const BASELINES = ['most-free', 'longhorn', 'mayastor', 'topolvm', 'random'];
// MeshStor's policy, its two predecessors (ADR 0001's bytes-only, ADR 0003's first kept-holes rule)
// and the baselines; meshstor-worst-fit/-first-fit (ADR 0001's evidence) only when asked for.
const policies = values.policies?.split(',') ?? [
  'meshstor',
  'meshstor-kept-holes',
  'meshstor-bytes',
  ...BASELINES,
];

interface Metric {
  key: string;
  head: string;
  /** Higher is better? */
  up: boolean;
  get: (m: PolicyMetrics) => number;
  show: (x: number) => string;
}
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const TiB = 2 ** 40;
const GiB = 2 ** 30;
const METRICS: Metric[] = [
  // No failure at all counts as 100 %, as in ADR 0001.
  { key: 'fill1', head: 'fill at 1st fail', up: true, get: (m) => m.fillAtFirstFailure ?? 1, show: pct },
  { key: 'slots1', head: 'slots at 1st fail', up: true, get: (m) => m.slotsAtFirstFailure ?? 1, show: pct },
  {
    key: 'failedB',
    head: 'failed TiB',
    up: false,
    get: (m) => m.failedBytes / TiB,
    show: (x) => x.toFixed(2),
  },
  { key: 'tloc', head: 'locality (time)', up: true, get: (m) => m.timeLocality, show: pct },
  { key: 'remote', head: 'remote pod-h', up: false, get: (m) => m.remotePodHours, show: (x) => x.toFixed(0) },
  {
    key: 'moved',
    head: 'moved GiB/vol',
    up: false,
    get: (m) => m.bytesMovedPerVolume / GiB,
    show: (x) => x.toFixed(1),
  },
  { key: 'settle', head: 'settle max h', up: false, get: (m) => m.maxSettleHours, show: (x) => x.toFixed(1) },
  {
    key: 'degraded',
    head: 'lost+degraded',
    up: false,
    get: (m) => m.volumesLost + m.volumesDegraded,
    show: (x) => x.toFixed(1),
  },
];

type Sums = Map<string, Map<string, number[]>>; // policy -> metric -> per-seed values
const results = new Map<string, Sums>();
const wall = new Map<string, number>();
const wins = new Map<string, number>(); // `${class}/${metric}` -> seeds where meshstor is >= every baseline

const log = (line: string) => process.stdout.write(`${line}\n`);
log(`sweep: classes ${classes.join(', ')}; seeds ${seeds.join(', ')}; ${policies.length} policies`);
for (const cls of classes) {
  const sums: Sums = new Map(policies.map((p) => [p, new Map(METRICS.map((x) => [x.key, []]))]));
  for (const seed of seeds) {
    const { scenario } = loadScenario(join(dir, `${cls}.yaml`));
    scenario.seed = seed;
    scenario.policies = policies;
    if (values.dwell !== undefined) scenario.moves.dwellHours = Number(values.dwell);
    if (values.stay !== undefined) scenario.moves.stayPerMoveHour = Number(values.stay);
    if (values['rank-room'] !== undefined) scenario.workload.extenderRanksRoom = values['rank-room'] === 'on';
    const t0 = performance.now();
    const r = await runScenario(scenario, cls, { charts: false });
    const byPolicy = new Map(r.runs.map((x) => [x.metrics.policy, x]));
    for (const run of r.runs) {
      wall.set(run.metrics.policy, (wall.get(run.metrics.policy) ?? 0) + run.wallMs);
      for (const x of METRICS) sums.get(run.metrics.policy)?.get(x.key)?.push(x.get(run.metrics));
    }
    const mine = byPolicy.get('meshstor')?.metrics;
    if (mine) {
      for (const x of METRICS) {
        const v = x.get(mine);
        const best = BASELINES.every((b) => {
          const o = byPolicy.get(b);
          return !o || (x.up ? v >= x.get(o.metrics) - 1e-12 : v <= x.get(o.metrics) + 1e-12);
        });
        if (best) wins.set(`${cls}/${x.key}`, (wins.get(`${cls}/${x.key}`) ?? 0) + 1);
      }
    }
    log(`  ${cls} seed ${seed}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  results.set(cls, sums);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** 1-based rank of `who` against the baselines on one metric (ties share the better rank). */
function rank(sums: Sums, who: string, x: Metric): number {
  const v = mean(sums.get(who)?.get(x.key) ?? []);
  let better = 0;
  for (const b of BASELINES) {
    const o = sums.get(b);
    if (!o) continue;
    const w = mean(o.get(x.key) ?? []);
    if (x.up ? w > v + 1e-9 : w < v - 1e-9) better++;
  }
  return better + 1;
}

const out: string[] = [];
out.push(
  `# Placement sweep: seeds ${seeds.join(', ')}${values.dwell === undefined ? '' : `, dwell ${values.dwell} h`}${values.stay === undefined ? '' : `, stay ${values.stay}x`}`,
  '',
);
for (const cls of classes) {
  const sums = results.get(cls) as Sums;
  out.push(`## ${cls}`, '');
  out.push(`| policy | ${METRICS.map((x) => x.head).join(' | ')} |`);
  out.push(`|---|${METRICS.map(() => '---:').join('|')}|`);
  for (const p of policies) {
    const row = METRICS.map((x) => x.show(mean(sums.get(p)?.get(x.key) ?? [])));
    out.push(`| ${p} | ${row.join(' | ')} |`);
  }
  const baseMoved = BASELINES.map((b) => mean(sums.get(b)?.get('moved') ?? []));
  out.push(
    '',
    `Rank among each MeshStor policy + the ${BASELINES.length} baselines (meshstor-bytes → meshstor-kept-holes → meshstor), seeds where meshstor beat or tied every baseline; median baseline moved ${median(baseMoved).toFixed(1)} GiB/vol:`,
    '',
  );
  out.push(
    `| metric | ${METRICS.map((x) => x.head).join(' | ')} |`,
    `|---|${METRICS.map(() => '---:').join('|')}|`,
    `| rank bytes → kept-holes → meshstor | ${METRICS.map((x) => ['meshstor-bytes', 'meshstor-kept-holes', 'meshstor'].map((p) => (sums.has(p) ? rank(sums, p, x) : '–')).join(' → ')).join(' | ')} |`,
    `| seeds won (after) | ${METRICS.map((x) => `${wins.get(`${cls}/${x.key}`) ?? 0}/${seeds.length}`).join(' | ')} |`,
    '',
  );
}
out.push('## Wall time per policy (sum over classes and seeds)', '');
for (const p of policies) out.push(`- ${p}: ${((wall.get(p) ?? 0) / 1000).toFixed(1)} s`);
const text = `${out.join('\n')}\n`;
log(text);
if (values.out) writeFileSync(values.out, text);
