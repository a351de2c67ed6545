// Extender latency over HTTP with keep-alive, caches loaded as the informers would load them with
// 5,000 MeshStorNodes and 100,000 MeshStorVolumes (each with its PV and bound PVC). Each round is
// what kube-scheduler does for one pod: POST /filter then POST /prioritize with 500 candidate
// names (the nodes kube-scheduler samples at 5,000 nodes). Prints p50/p99/max of the pair and
// rounds per second, sequentially as the single scheduling loop calls it.
//   node bench/extender.ts [--nodes 5000] [--volumes 100000] [--candidates 500] [--rounds 3000]
import { Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { makeLogger } from '../kube/log.ts';
import { GiB } from '../placement/units.ts';
import { ExtenderMetrics } from '../scheduler/metrics.ts';
import { createVerbsApp } from '../scheduler/server.ts';
import { ExtenderState } from '../scheduler/state.ts';
import { msNode, msVolume, pod } from '../scheduler/test/fixtures.ts';
import { postJson } from '../scheduler/warm-up.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    volumes: { type: 'string', default: '100000' },
    candidates: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3000' },
  },
});
const NODES = Number(values.nodes);
const VOLUMES = Number(values.volumes);
const CANDIDATES = Number(values.candidates);
const ROUNDS = Number(values.rounds);
const now = Date.now();
const name = (i: number) => `node-${String(i).padStart(5, '0')}`;

// Deterministic pseudo-random numbers (no Math.random: runs are comparable).
let seed = 42;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};

const t0 = performance.now();
const state = new ExtenderState();
state.setStorageClass('meshstor', 'meshstor.io');
for (let i = 0; i < NODES; i++) {
  state.setMeshStorNode(
    msNode(name(i), { driveBytes: 8 * 1024 * GiB, heartbeat: now, zone: `z${i % 3}` }),
    now,
  );
}
const tNodes = performance.now();
// Each volume: 2 replicas on distinct nodes, extents stacked per node so none overlap.
const nextStart = new Map<string, number>();
for (let v = 0; v < VOLUMES; v++) {
  const a = rand(NODES);
  const b = (a + 1 + rand(NODES - 1)) % NODES;
  const nodes = [name(a), name(b)];
  const start = Math.max(nextStart.get(nodes[0] as string) ?? 1, nextStart.get(nodes[1] as string) ?? 1);
  const vol = msVolume(`vol-${v}`, nodes, { sizeBytes: 10 * GiB, start: start * 1024 * 1024 });
  const len =
    ((vol.spec.replicas?.[0]?.extent.end ?? 0) - (vol.spec.replicas?.[0]?.extent.start ?? 0)) / (1024 * 1024);
  for (const n of nodes) nextStart.set(n, start + len);
  state.setMeshStorVolume(vol);
  state.setPv(`pv-${v}`, 'meshstor.io', `vol-${v}`);
  state.setPvc(
    'default',
    `pvc-${v}`,
    {
      uid: `u-${v}`,
      volumeName: `pv-${v}`,
      storageClassName: 'meshstor',
      requestBytes: 10 * GiB,
      selectedNode: '',
    },
    now,
  );
}
const tLoad = performance.now();
console.log(
  `loaded ${NODES} nodes in ${(tNodes - t0).toFixed(0)} ms, ${VOLUMES} volumes+PVs+PVCs in ${(tLoad - tNodes).toFixed(0)} ms; ` +
    `heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB, resident ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
);

const metrics = new ExtenderMetrics(() => state.sizes());
// The verbs' app over plain HTTP (as `--insecure-http`): the bench measures the handlers, not TLS.
const app = createVerbsApp({
  state,
  metrics,
  log: makeLogger('bench', 'silent'),
  now: () => now,
});
const server = await new Promise<import('node:http').Server>((r) => {
  const s = app.listen(0, '127.0.0.1', () => r(s));
});
const port = (server.address() as AddressInfo).port;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

const post = (path: string, body: string) => postJson(agent, { port }, path, body);

// Bodies prepared up front: the bench measures the extender, not JSON.stringify in the client.
const bodies = Array.from({ length: 64 }, (_, i) => {
  const names = new Set<string>();
  while (names.size < CANDIDATES) names.add(name(rand(NODES)));
  const claims = [`pvc-${rand(VOLUMES)}`, `pvc-${rand(VOLUMES)}`];
  return JSON.stringify({ Pod: pod(`bench-${i}`, claims), NodeNames: [...names], Nodes: null });
});

async function round(i: number): Promise<number> {
  const body = bodies[i % bodies.length] as string;
  const t = performance.now();
  const a = await post('/filter', body);
  const b = await post('/prioritize', body);
  if (a !== 200 || b !== 200) throw new Error(`HTTP ${a}/${b}`);
  return performance.now() - t;
}

for (let i = 0; i < 300; i++) await round(i); // warm-up (JIT, sockets)
const lat: number[] = [];
const tRun = performance.now();
// CPU time of this process (client and server both: the client's part is the same for any server
// code), which a machine shared with other work disturbs far less than wall-clock latency.
const cpu0 = process.cpuUsage();
for (let i = 0; i < ROUNDS; i++) lat.push(await round(i));
const cpu = process.cpuUsage(cpu0);
const secs = (performance.now() - tRun) / 1000;
lat.sort((x, y) => x - y);
const q = (p: number) => (lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] as number).toFixed(3);
console.log(
  `filter+prioritize, ${CANDIDATES} candidates, 2 volumes/pod, keep-alive, sequential, ${ROUNDS} rounds: ` +
    `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms; ${(ROUNDS / secs).toFixed(0)} pods/s ` +
    `(${((2 * ROUNDS) / secs).toFixed(0)} requests/s); ` +
    `CPU ${((cpu.user + cpu.system) / 1000 / ROUNDS).toFixed(3)} ms per pod (client included)`,
);
agent.destroy();
server.close();
