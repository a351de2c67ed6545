// `meshstor controller`: the CSI Identity and Controller services on a unix socket.
// State backends: `kube` (MeshStorVolume and MeshStorNode objects) and `memory` (records in this
// process, nodes from a scenario's cluster section) for tests and trials.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { DeletionReconciler } from '../controller/deletion.ts';
import { LeaseElector } from '../controller/leader.ts';
import { type RunningPlacementCache, startPlacementCache } from '../controller/live-model.ts';
import { RelocationReconciler } from '../controller/relocation.ts';
import { ControllerService } from '../csi/controller.ts';
import { IdentityService } from '../csi/identity.ts';
import { serveCsi } from '../csi/server.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { EventRecorder } from '../kube/events.ts';
import { makeLogger } from '../kube/log.ts';
import { generateCluster } from '../simulations/cluster-gen.ts';
import { loadScenario } from '../simulations/run.ts';
import { KubeNodeInventory, KubeVolumeStore } from '../state/kube-store.ts';
import { MemoryVolumeStore, StaticInventory } from '../state/memory-store.ts';
import type { NodeInventory, VolumeStore } from '../state/store.ts';
import { every, shutdownServer } from './periodic.ts';
import { UsageError } from './simulate.ts';

export const CONTROLLER_USAGE = `usage: meshstor controller --csi-socket PATH [--state kube|memory] [options]

Serves the CSI Identity and Controller services on a unix socket.

options:
  --csi-socket PATH   the unix socket to serve on (required)
  --state kube        volumes are MeshStorVolume objects, nodes the MeshStorNodes agents publish (default);
                      placement reads both from informer caches, and Probe says not ready until
                      their first lists are in
  --state memory      keep volume records in this process (tests and trials)
  --kubeconfig FILE   with --state kube: the cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster)
  --lease-namespace NS  with --state kube: where the allocator Lease lives (default: $POD_NAMESPACE
                      or kube-system); only the lease holder allocates, the others answer UNAVAILABLE
  --cluster FILE      with --state memory: the nodes are the cluster section of this scenario
                      file (default: the embedded default scenario's 24 nodes)
  --resync-seconds N  how often to release deleted volumes whose partitions the agents wiped, start
                      moving a member to the node of a pod that has none, and release members
                      relocations removed (default 10)
  -h, --help          this text`;

export async function controllerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'csi-socket': { type: 'string' },
      state: { type: 'string', default: 'kube' },
      kubeconfig: { type: 'string' },
      'lease-namespace': { type: 'string' },
      cluster: { type: 'string' },
      'resync-seconds': { type: 'string', default: '10' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(CONTROLLER_USAGE);
    return 0;
  }
  const socket = values['csi-socket'];
  if (!socket) throw new UsageError('--csi-socket is required');
  const resyncEvery = Number(values['resync-seconds']);
  if (!(resyncEvery > 0)) throw new UsageError(`--resync-seconds ${values['resync-seconds']}: must be > 0`);
  const log = (level: string, msg: string, fields: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
  let store: VolumeStore;
  let inventory: NodeInventory;
  let nodeCount: number | undefined;
  let elector: LeaseElector | undefined;
  let cache: RunningPlacementCache | undefined;
  let events: EventRecorder | undefined;
  if (values.state === 'memory') {
    const nodes = generateCluster(loadScenario(values.cluster).scenario);
    store = new MemoryVolumeStore();
    inventory = new StaticInventory(nodes);
    nodeCount = nodes.length;
  } else if (values.state === 'kube') {
    const kc = loadKubeConfig(values.kubeconfig);
    events = EventRecorder.forCluster(kc, 'meshstor-controller', (m) => log('warn', 'event', { error: m }));
    store = new KubeVolumeStore(kc);
    // Still read fresh: DeleteVolume drops a finalizer only when no agent reports a partition.
    inventory = new KubeNodeInventory(kc);
    cache = startPlacementCache(kc, makeLogger('controller'));
    cache.cache.whenSynced.then(() => log('info', 'caches synced', cache?.cache.sizes() ?? {}));
    elector = new LeaseElector(kc, {
      namespace: values['lease-namespace'] ?? process.env.POD_NAMESPACE ?? 'kube-system',
      name: 'meshstor-allocator',
      identity: `${hostname()}-${process.pid}`,
      onChange: (leading, holder) => log('info', leading ? 'leading' : 'following', { holder }),
      onError: (message) => log('warn', 'lease', { error: message }),
    });
  } else {
    throw new UsageError(`--state ${values.state}: use kube or memory`);
  }
  let ready = false;
  const controller = new ControllerService({ store, inventory, leader: elector, model: cache?.cache });
  const deletion = new DeletionReconciler(controller.allocator);
  const relocation = new RelocationReconciler(controller.allocator);
  const server = await serveCsi(
    socket,
    {
      identity: new IdentityService({
        controller: true,
        ready: () => ready && (cache?.cache.synced() ?? true),
      }),
      controller,
    },
    log,
  );
  elector?.start();
  ready = true;
  log('info', 'serving', { socket, state: values.state, nodes: nodeCount });

  const pass = async () => {
    try {
      const released = await deletion.pass();
      if (released.length) log('info', 'volumes released', { volumes: released });
      const r = await relocation.pass();
      if (r.started.length) log('info', 'relocation started', { volumes: r.started });
      if (r.finished.length) log('info', 'relocation finished', { volumes: r.finished });
      for (const b of r.blocked) {
        log('warn', 'relocation blocked', b);
        await events?.warn({ kind: 'MeshStorVolume', name: b.volume }, 'RelocationBlocked', b.reason);
      }
    } catch (e) {
      log('warn', 'resync', { error: (e as Error).message });
    }
  };
  const passes = every(resyncEvery * 1000, pass);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log('info', 'stopping', { signal });
      void passes
        .stop()
        .then(() => Promise.all([elector?.stop(), cache?.stop()]))
        .then(() => shutdownServer(server))
        .then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
