// The client half of bench:extender. `measureRounds` is what kube-scheduler does per pod: POST
// /filter then POST /prioritize (keep-alive, one socket, sequential like its scheduling loop),
// timed per round. Run as a child process (the default), it gets its job from the parent over IPC
// and sends back the latencies and its own CPU time, so its GC and HTTP parsing no longer share an
// event loop and a heap with the extender it measures; bench/extender.ts `--in-process` calls
// `measureRounds` in the extender's own process.
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
  /** CPU time of the calling process over the measured rounds (warm-up excluded) */
  cpuMicros: number;
  wallMs: number;
}

export async function measureRounds(job: ClientJob): Promise<ClientResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const round = async (i: number): Promise<number> => {
    const body = job.bodies[i % job.bodies.length] as string;
    const t = performance.now();
    const a = await postJson(agent, { port: job.port }, '/filter', body);
    const b = await postJson(agent, { port: job.port }, '/prioritize', body);
    if (a !== 200 || b !== 200) throw new Error(`HTTP ${a}/${b}`);
    return performance.now() - t;
  };
  try {
    for (let i = 0; i < job.warmUpRounds; i++) await round(i);
    const latenciesMs: number[] = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < job.rounds; i++) latenciesMs.push(await round(i));
    const cpu = process.cpuUsage(cpu0);
    return { latenciesMs, cpuMicros: cpu.user + cpu.system, wallMs: performance.now() - t0 };
  } finally {
    agent.destroy();
  }
}

// a child forked by bench/extender.ts (an IPC channel): one job, one answer
if (process.send) {
  process.once('message', async (job: ClientJob) => {
    const result = await measureRounds(job);
    process.send?.(result, () => process.exit(0));
  });
}
