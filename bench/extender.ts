// Extender latency over HTTP with keep-alive, caches loaded as the informers would load them with
// 5,000 MeshStorNodes and 100,000 MeshStorVolumes (each with its PV and bound PVC). Each round is
// what kube-scheduler does for one pod: POST /filter then POST /prioritize with 500 candidate
// names (the nodes kube-scheduler samples at 5,000 nodes). Prints p50/p99/max of the pair and
// rounds per second, sequentially as the single scheduling loop calls it. The client:
//   --client go (the default): kube-scheduler's own HTTPExtender (k8s.io/kubernetes/pkg/scheduler,
//     the release the cluster tier runs) in a Go program, bench/extender-client-go, built by
//     `npm run setup:bench`: what kube-scheduler itself sees, JSON encoding and decoding included;
//   --client node: bench/extender-client.ts in a child process (this bench's client until
//     2026-11-29); --client in-process: the same in the extender's own process (until 2026-11-28).
// --floor: the same client against a server that computes nothing: it reads each body and sends
// the answer the real extender gave to that body once (one body only): the cost of the calls
// themselves (HTTP on both sides, and kube-scheduler's JSON), which no extender can go below.
//   node bench/extender.ts [--nodes 5000] [--volumes 100000] [--candidates 500] [--rounds 3000]
//     [--client go|node|in-process] [--floor]
import { fork, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeLogger } from '../kube/log.ts';
import { GiB } from '../placement/units.ts';
import { ExtenderMetrics } from '../scheduler/metrics.ts';
import { createVerbsApp } from '../scheduler/server.ts';
import { ExtenderState } from '../scheduler/state.ts';
import { msNode, msVolume, pod } from '../scheduler/test/fixtures.ts';
import { binDir } from '../test/cluster/binaries.ts';
import { type ClientJob, type ClientResult, measureRounds } from './extender-client.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    volumes: { type: 'string', default: '100000' },
    candidates: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3000' },
    client: { type: 'string', default: 'go' },
    floor: { type: 'boolean', default: false },
  },
});
const CLIENT = values.client;
if (CLIENT !== 'go' && CLIENT !== 'node' && CLIENT !== 'in-process')
  throw new Error(`--client ${CLIENT}: expected go, node or in-process`);
const GO_CLIENT = join(binDir(), 'extender-client');
if (CLIENT === 'go' && !existsSync(GO_CLIENT))
  throw new Error(`${GO_CLIENT} is missing: run npm run setup:bench (or pass --client node)`);
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
let port = (server.address() as AddressInfo).port;

// Bodies prepared up front: the bench measures the extender, not JSON.stringify in the client.
const bodies = Array.from({ length: 64 }, (_, i) => {
  const names = new Set<string>();
  while (names.size < CANDIDATES) names.add(name(rand(NODES)));
  const claims = [`pvc-${rand(VOLUMES)}`, `pvc-${rand(VOLUMES)}`];
  return JSON.stringify({ Pod: pod(`bench-${i}`, claims), NodeNames: [...names], Nodes: null });
});
const WARM_UP_ROUNDS = 300; // JIT and sockets

if (values.floor) {
  // the real extender's answers to the first body, sent back as they are to every call
  bodies.length = 1;
  const answers = new Map<string, string>();
  for (const verb of ['/filter', '/prioritize']) {
    const res = await fetch(`http://127.0.0.1:${port}${verb}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bodies[0],
    });
    answers.set(verb, await res.text());
  }
  server.close();
  const floor = createServer((req, res) => {
    req.resume(); // the body is read, not parsed
    req.on('end', () => {
      const out = answers.get(req.url ?? '') ?? '';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  let connections = 0;
  floor.on('connection', () => void connections++);
  process.once('exit', () => console.log(`floor server: ${connections} connections`));
  await new Promise<void>((r) => floor.listen(0, '127.0.0.1', () => r()));
  port = (floor.address() as AddressInfo).port;
  floor.unref();
}

const job: ClientJob = { port, bodies, warmUpRounds: WARM_UP_ROUNDS, rounds: ROUNDS };

/** The client in a child process, as kube-scheduler calls from its own. */
function childProcess(): Promise<ClientResult> {
  const child = fork(join(import.meta.dirname, 'extender-client.ts'), [], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as ClientResult));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the bench client exited (${code}) without a result`)));
    child.send(job);
  });
}

/** kube-scheduler's own extender client (Go), fed the same job on stdin. */
function goClient(): Promise<ClientResult> {
  const child = spawn(GO_CLIENT, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out) as ClientResult);
      else reject(new Error(`${GO_CLIENT} exited (${code}) without a result`));
    });
    child.stdin.end(
      JSON.stringify({
        url: `http://127.0.0.1:${port}`,
        bodies,
        warmUpRounds: WARM_UP_ROUNDS,
        rounds: ROUNDS,
      }),
    );
  });
}

// CPU time of this process: the extender's own (and, in-process, the client's too), which a
// machine shared with other work disturbs far less than wall-clock latency. It spans the warm-up
// rounds too (the child runs them unobserved), so it is divided by all rounds, warm-up included.
const inProc = CLIENT === 'in-process';
const cpu0 = process.cpuUsage();
// in this process, the client shares the extender's event loop, heap and GC
const result = inProc ? await measureRounds(job) : CLIENT === 'go' ? await goClient() : await childProcess();
const cpu = process.cpuUsage(cpu0);
const lat = [...result.latenciesMs].sort((x, y) => x - y);
const q = (p: number) => (lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] as number).toFixed(3);
const secs = result.wallMs / 1000;
const serverCpuMs = (cpu.user + cpu.system) / 1000 / (ROUNDS + WARM_UP_ROUNDS);
console.log(
  `filter+prioritize, ${CANDIDATES} candidates, 2 volumes/pod, keep-alive, sequential, ${ROUNDS} rounds, ` +
    `client ${inProc ? "in the extender's process" : CLIENT === 'go' ? "kube-scheduler's HTTPExtender (Go)" : 'Node, in its own process'}` +
    `${values.floor ? ', FLOOR (a server that only sends back canned answers)' : ''}: ` +
    `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms; ${(ROUNDS / secs).toFixed(0)} pods/s ` +
    `(${((2 * ROUNDS) / secs).toFixed(0)} requests/s); ` +
    `extender process CPU ${serverCpuMs.toFixed(3)} ms per pod${inProc ? ' (client included)' : ''}` +
    (inProc ? '' : `, client CPU ${(result.cpuMicros / 1000 / ROUNDS).toFixed(3)} ms per pod`),
);
server.close();
