// A driver process for scenario g: `node driver.ts '<RelocationPlan | RebuildPlan json>'`. Runs
// every step of the relocation (or rebuild) from the start (each observes first), prints `@@STEP <i> <name>` after each, and
// with MESHSTOR_PAUSE=1 waits for a line on stdin before the next step, so the scenario can
// kill -9 it exactly between two steps.
import { createInterface } from 'node:readline';
import { nodes } from './env.ts';
import { type RebuildPlan, type RelocationPlan, rebuildSteps, relocationSteps } from './relocate.ts';

const plan = JSON.parse(process.argv[2] ?? '{}') as RelocationPlan | RebuildPlan;
const n = nodes();
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const steps = 'lost' in plan ? rebuildSteps(n.a, n.b, plan) : relocationSteps(n.a, n.b, plan);
for (const [i, s] of steps.entries()) {
  await s.run();
  process.stdout.write(`@@STEP ${i + 1} ${s.name}\n`);
  if (process.env.MESHSTOR_PAUSE === '1' && i + 1 < steps.length) await lines.next();
}
process.stdout.write('@@DONE\n');
process.exit(0);
