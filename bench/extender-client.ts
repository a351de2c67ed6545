// The client half of bench:extender, in its own process as kube-scheduler is: it gets the port and
// the request bodies from its parent over IPC, calls POST /filter then POST /prioritize for each
// round (keep-alive, one socket, sequential like kube-scheduler's scheduling loop), and sends back
// each round's latency and its own CPU time. Its GC and its HTTP parsing no longer share an event
// loop and a heap with the extender it measures.
import { Agent } from 'node:http';
import { postJson } from '../scheduler/warm-up.ts';

export interface ClientJob {
  port: number;
  bodies: string[];
  warmUpRounds: number;
  rounds: number;
}

export interface ClientResult {
  latenciesMs: number[];
  cpuMicros: number;
  wallMs: number;
}

process.once('message', async (job: ClientJob) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const round = async (i: number): Promise<number> => {
    const body = job.bodies[i % job.bodies.length] as string;
    const t = performance.now();
    const a = await postJson(agent, { port: job.port }, '/filter', body);
    const b = await postJson(agent, { port: job.port }, '/prioritize', body);
    if (a !== 200 || b !== 200) throw new Error(`HTTP ${a}/${b}`);
    return performance.now() - t;
  };
  for (let i = 0; i < job.warmUpRounds; i++) await round(i);
  const latenciesMs: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < job.rounds; i++) latenciesMs.push(await round(i));
  const cpu = process.cpuUsage(cpu0);
  const result: ClientResult = {
    latenciesMs,
    cpuMicros: cpu.user + cpu.system,
    wallMs: performance.now() - t0,
  };
  agent.destroy();
  process.send?.(result, () => process.exit(0));
});
