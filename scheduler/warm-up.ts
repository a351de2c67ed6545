// Warm-up before /readyz turns ready: a freshly started extender runs its filter and prioritize
// paths unoptimised (V8 compiles hot code only after it has run a while), and in a cluster run the
// first few hundred pods paid for that (issue 15: 0.56-0.68 of the scheduler's throughput fresh,
// 0.97 warm). So the extender calls itself over HTTP on a private unix socket (door.ts), the same
// HTTP and express path kube-scheduler's calls take, with a pod that changes nothing (its claim, if any, is bound: nothing is reserved), and only then
// says ready. The calls carry WARM_UP_HEADER so the latency histogram does not count them.
import { Agent, request } from 'node:http';
import type { ExtenderState } from './state.ts';

export const WARM_UP_HEADER = 'x-meshstor-warm-up';

/** Where the verbs listen over plain HTTP: a loopback port or a unix socket. */
export type PlainTarget = { port: number } | { socketPath: string };

/** POSTs a JSON body to the extender over plain HTTP and answers the status (the bench uses it too). */
export function postJson(
  agent: Agent,
  target: PlainTarget,
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...('port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath }),
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The body of one warm-up call: up to `candidates` real node names, one bound claim if any. */
export function warmUpBody(state: ExtenderState, candidates: number): string {
  const s = state.warmUpSample(candidates);
  const volumes = s.claim ? [{ name: 'data', persistentVolumeClaim: { claimName: s.claim.name } }] : [];
  return JSON.stringify({
    Pod: {
      metadata: {
        name: 'meshstor-extender-warm-up',
        namespace: s.claim?.namespace ?? 'default',
        uid: 'warm-up',
      },
      spec: { volumes },
    },
    NodeNames: s.nodes,
    Nodes: null,
  });
}

/**
 * `rounds` filter+prioritize pairs against the extender at `target`. Returns how long it took (ms).
 * A failed call ends the warm-up early: readiness must not hang on it.
 */
export async function warmUp(
  state: ExtenderState,
  target: PlainTarget,
  rounds = 500,
  candidates = 500,
): Promise<number> {
  const t = performance.now();
  const body = warmUpBody(state, candidates);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < rounds; i++) {
      const a = await postJson(agent, target, '/filter', body, { [WARM_UP_HEADER]: '1' });
      const b = await postJson(agent, target, '/prioritize', body, { [WARM_UP_HEADER]: '1' });
      if (a !== 200 || b !== 200) break;
    }
  } catch {
    // a refused connection only means no warm-up
  } finally {
    agent.destroy();
  }
  return performance.now() - t;
}
