// A networked SimulatedHost in a process of its own, for sim-network.test.ts: argv is its host NQN
// and drive id; stdin takes {id, method, args} lines and calls that Host method, stdout answers
// {id, result} or {id, error}. It prints {ready: true} first.
import { createInterface } from 'node:readline';
import { GiB } from '../../../placement/index.ts';
import { NetworkSimFabric } from '../sim-network.ts';
import { SimulatedHost } from '../simulated.ts';

const [hostNqn, driveId] = process.argv.slice(2);
if (!hostNqn || !driveId) throw new Error('usage: sim-peer.ts HOST_NQN DRIVE_ID');
const host = new SimulatedHost({
  hostNqn,
  drives: [{ id: driveId, sizeBytes: GiB }],
  fabric: new NetworkSimFabric(),
});
// Methods are looked up by name from the test's requests: the test only names Host methods.
const methods = host as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
const answer = (m: object) => process.stdout.write(`${JSON.stringify(m)}\n`);

answer({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  const { id, method, args } = JSON.parse(line) as { id: number; method: string; args: unknown[] };
  const fn = methods[method];
  // Not awaited: an unexport waits for initiators to hang up, and the test may ask more meanwhile.
  Promise.resolve()
    .then(() => {
      if (typeof fn !== 'function') throw new Error(`no method ${method}`);
      return fn.apply(host, args);
    })
    .then(
      (result) => answer({ id, result: result ?? null }),
      (e: Error) => answer({ id, error: { name: e.name, message: e.message } }),
    );
}
