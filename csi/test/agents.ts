// Nodes of an in-process cluster: each with its node service and its agent's passes (own
// KeyedLock) on a shared volume store and peer directory. Used by csi/test/node-remote.test.ts on
// SimulatedHost and by the kernel tier's scenario s (test/kernel/guest/stage.ts) on LinuxHost.
import type { Host, ListenAddress } from '../../agent/host/types.ts';
import { agentPass } from '../../agent/pass.ts';
import { KeyedLock } from '../../state/lock.ts';
import type { StaticPeers } from '../../state/memory-store.ts';
import type { VolumeStore } from '../../state/store.ts';
import { NodeService } from '../node.ts';

export function clusterNode<H extends Host>(o: {
  name: string;
  host: H;
  store: VolumeStore;
  peers: StaticPeers;
  listen: ListenAddress;
  connectWaitMs: number;
}) {
  const { name, host, store, listen } = o;
  o.peers.set({ node: name, hostNqn: host.hostNqn, address: listen, ready: true });
  const locks = new KeyedLock();
  const svc = new NodeService({
    // these tests play kubelet at paths of their own: any absolute path is under '/'
    kubeletDir: '/',
    nodeName: name,
    host,
    store,
    peers: o.peers,
    locks,
    connectWaitMs: o.connectWaitMs,
    mountPoints: { ensure: async () => {}, remove: async () => {} },
  });
  /** One round of the agent's resync loop (what cmd/agent.ts runs, without the MeshStorNode publish). */
  const wholePass = () => agentPass({ nodeName: name, host, store, listen, locks, peers: o.peers });
  const pass = async () => (await wholePass()).exports;
  return { host, svc, pass, wholePass, listen };
}

/** Runs the live agents' export passes, over and over, until `work` settles (their resync loops). */
export async function withAgents<T>(passes: (() => Promise<unknown>)[], work: Promise<T>): Promise<T> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  // Handled when returned; until then a rejection must not count as unhandled (it ends the process).
  settled.catch(() => {});
  while (!done) {
    for (const pass of passes) await pass();
    await new Promise((r) => setTimeout(r, 20));
  }
  return settled;
}
