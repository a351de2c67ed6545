// Placement benchmarks on a 5,000-node model holding 100k volumes: allocate, scoreNodes, and the
// simulator's event rate. Prints what it measured; asserts nothing about time.
import { ClusterState } from '../placement/cluster.ts';
import { PlacementEngine } from '../placement/engine.ts';
import type { NodeInfo } from '../placement/model.ts';
import { Rng } from '../placement/rng.ts';
import { GiB } from '../placement/units.ts';
import { loadScenario, runScenario } from '../simulations/run.ts';
import { fmt, measure } from './stats.ts';

const NODES = Number(process.env.BENCH_NODES ?? 5000);
const VOLUMES = Number(process.env.BENCH_VOLUMES ?? 100_000);

function bigCluster(): NodeInfo[] {
  const nodes: NodeInfo[] = [];
  for (let i = 0; i < NODES; i++) {
    nodes.push({
      name: `node-${String(i).padStart(5, '0')}`,
      labels: { zone: `zone-${i % 3}`, rack: `rack-${i % 60}` },
      schedulable: true,
      agentHealthy: true,
      drives: Array.from({ length: 4 }, (_, d) => ({
        id: `nvme${d}`,
        sizeBytes: 7_680_000_000_000,
        logicalBlockSize: 4096,
        gptSlots: 128,
        partitions: [],
      })),
    });
  }
  return nodes;
}

const SIZES = [10, 50, 100, 200, 500, 1000].map((g) => g * GiB);

export async function benchPlacement(log: (line: string) => void): Promise<Record<string, unknown>> {
  const rng = new Rng(7);
  const t0 = performance.now();
  const engine = new PlacementEngine(ClusterState.fromSnapshot({ nodes: bigCluster(), volumes: [] }), {
    seed: 1,
  });
  const request = (i: number, prefix: string) => ({
    volumeId: `${prefix}-${i}`,
    sizeBytes: SIZES[rng.int(SIZES.length)] as number,
    replicaCount: 1 + rng.int(3),
    preferredNode: i % 2 === 0 ? `node-${String(rng.int(NODES)).padStart(5, '0')}` : undefined,
  });
  const load = measure(VOLUMES, (i) => {
    const req = request(i, 'load');
    if (engine.allocate(req).ok) engine.commit(req, 'InSync');
  });
  log(
    `model: ${NODES} nodes x 4 drives, ${engine.cluster.volumes.size} volumes loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  log(`  loading (allocate + commit) ${fmt(load)}`);

  const alloc = measure(20_000, (i) => {
    const req = request(i, 'bench');
    engine.allocate(req);
  });
  log(`allocate (reserve, ${NODES} nodes, 100k volumes)  ${fmt(alloc)}`);
  for (let i = 0; i < 20_000; i++) engine.release(`bench-${i}`);

  const ids = [...engine.cluster.volumes.keys()];
  const candidates = Array.from(
    { length: 500 },
    (_, i) => `node-${String((i * 10) % NODES).padStart(5, '0')}`,
  );
  const score = measure(20_000, () => {
    const pod = [rng.pick(ids), rng.pick(ids)].map((id) => ({ volumeId: id, sizeBytes: 100 * GiB }));
    engine.scoreNodes(pod, candidates);
  });
  log(`scoreNodes (500 candidates, 2 volumes)  ${fmt(score)}`);

  const { scenario, source } = loadScenario();
  scenario.durationHours *= 4;
  await runScenario(scenario, source, { charts: false }); // warm-up: JIT and module loading
  const s0 = performance.now();
  const sim = await runScenario(scenario, source, { charts: false });
  const simSec = (performance.now() - s0) / 1000;
  const perMin = (sim.eventsProcessed / simSec) * 60;
  log(
    `simulator: ${sim.eventsProcessed} events (default scenario x4 duration, ${scenario.policies.length} policies) in ${simSec.toFixed(2)} s = ${Math.round(perMin).toLocaleString('en-US')} events/min`,
  );
  return { allocate: alloc, scoreNodes: score, simulatorEventsPerMinute: perMin };
}
