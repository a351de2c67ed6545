// Three simulated nodes on one fabric, each with its node service and its agent's passes, sharing
// one in-memory volume store: the test bed for volumes whose members live on other nodes.
import { SimFabric, SimulatedHost } from '../../agent/host/simulated.ts';
import { HostInventory } from '../../agent/host-inventory.ts';
import { DeletionReconciler } from '../../controller/deletion.ts';
import { RelocationReconciler } from '../../controller/relocation.ts';
import { MiB } from '../../placement/units.ts';
import { MemoryVolumeStore, StaticPeers } from '../../state/memory-store.ts';
import type { VolumeRecord } from '../../state/store.ts';
import { ControllerService } from '../controller.ts';
import { clusterNode, withAgents as runAgents } from './agents.ts';
import { stageRequest } from './requests.ts';

export const GiB = 1024 * MiB;
export const NODES = ['n1', 'n2', 'n3'] as const;
export type NodeName = (typeof NODES)[number];

export function cluster() {
  const fabric = new SimFabric();
  const store = new MemoryVolumeStore();
  const peers = new StaticPeers();
  const nodes = new Map(
    NODES.map((name, i) => {
      const host = new SimulatedHost({
        hostNqn: `nqn.2014-08.org.nvmexpress:uuid:${name}`,
        fabric,
        drives: [{ id: `D${name}`, sizeBytes: 10 * GiB }],
      });
      const listen = { address: `127.0.0.${i + 2}`, port: 4420 };
      return [name, clusterNode({ name, host, store, peers, listen, connectWaitMs: 2_000 })] as const;
    }),
  );
  const node = (n: NodeName) => nodes.get(n) as NonNullable<ReturnType<typeof nodes.get>>;
  /** Runs every live agent's passes until `work` settles, as the agents' resync loops would. */
  const withAgents = <T>(work: Promise<T>, down: NodeName[] = []): Promise<T> =>
    runAgents(
      NODES.filter((n) => !down.includes(n)).map((n) => node(n).pass),
      work,
    );
  const controller = new ControllerService({
    store,
    inventory: {
      nodes: async () =>
        (
          await Promise.all(NODES.map((n) => new HostInventory(n, undefined, node(n).host, store).nodes()))
        ).flat(),
    },
  });
  const relocation = new RelocationReconciler(controller.allocator);
  const deletion = new DeletionReconciler(controller.allocator);
  return { fabric, store, peers, node, withAgents, controller, relocation, deletion };
}

let nextStart = 64 * MiB;
export function volume(id: string, on: NodeName[]): VolumeRecord {
  const start = nextStart;
  nextStart += 2 * GiB;
  if (nextStart > 9 * GiB) nextStart = 64 * MiB;
  return {
    id,
    name: id,
    sizeBytes: GiB,
    replicaCount: on.length,
    spread: { domain: 'zone', mode: 'none' },
    fsType: 'xfs',
    phase: 'Active',
    replicas: on.map((n, i) => ({
      id: `r${i}`,
      node: n,
      drive: `D${n}`,
      extent: { start, end: start + GiB + 64 * MiB },
      state: 'Pending' as const,
    })),
  };
}

export const stage = (volume_id: string) => stageRequest(volume_id, `/stage/${volume_id}`);
export const unstage = (volume_id: string) => ({ volume_id, staging_target_path: `/stage/${volume_id}` });
