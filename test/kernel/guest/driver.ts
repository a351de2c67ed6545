// A driver process for scenarios g and h2: `node driver.ts '<RelocationPlan | RebuildPlan |
// CatchUpPlan json>'`. Runs every step of the relocation (rebuild, catch-up) from the start (each observes first), prints `@@STEP <i> <name>` after each, and
// with MESHSTOR_PAUSE=1 waits for a line on stdin before the next step, so the scenario can
// kill -9 it exactly between two steps.
import { createInterface } from 'node:readline';
import { nodes } from './env.ts';
import {
  type CatchUpPlan,
  catchUpSteps,
  type RebuildPlan,
  type RelocationPlan,
  rebuildSteps,
  relocationSteps,
} from './relocate.ts';

const plan = JSON.parse(process.argv[2] ?? '{}') as RelocationPlan | RebuildPlan | CatchUpPlan;
const n = nodes();
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const steps =
  'away' in plan
    ? catchUpSteps(n.a, n.b, plan)
    : 'lost' in plan
      ? rebuildSteps(n.a, n.b, plan)
      : relocationSteps(n.a, n.b, plan);
for (const [i, s] of steps.entries()) {
  await s.run();
  process.stdout.write(`@@STEP ${i + 1} ${s.name}\n`);
  if (process.env.MESHSTOR_PAUSE === '1' && i + 1 < steps.length) await lines.next();
}
process.stdout.write('@@DONE\n');
process.exit(0);
