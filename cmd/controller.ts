// `meshstor controller`: the CSI Identity and Controller services on a unix socket, and the
// deletion, relocation and expansion reconcilers on a timer. State backends: `kube` (MeshStorVolume and
// MeshStorNode objects) and `memory` (records in this process, nodes from a scenario's cluster
// section) for tests and trials.
import { hostname } from 'node:os';
import { DeletionReconciler } from '../controller/deletion.ts';
import { ExpansionReconciler } from '../controller/expansion.ts';
import { LeaseElector } from '../controller/leader.ts';
import { type RunningPlacementCache, startPlacementCache } from '../controller/live-model.ts';
import { REBUILDS_PER_NODE, RebuildReconciler, reportRebuildPass } from '../controller/rebuild.ts';
import { type EvacuatingNodes, RelocationReconciler } from '../controller/relocation.ts';
import { ControllerService } from '../csi/controller.ts';
import { IdentityService } from '../csi/identity.ts';
import { probeCsiSocket } from '../csi/probe.ts';
import { serveCsi, shutdownServer } from '../csi/server.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { evacuatingNodes } from '../kube/evacuation.ts';
import { EventRecorder } from '../kube/events.ts';
import { meshStorHeartbeats } from '../kube/heartbeats.ts';
import {
  CsiRpcMetrics,
  metricsEndpoint,
  metricsRegistry,
  type VolumeCensus,
  VolumeMetrics,
} from '../kube/metrics.ts';
import { every } from '../kube/periodic.ts';
import { generateCluster } from '../simulations/cluster-gen.ts';
import { loadScenario } from '../simulations/run.ts';
import { volumeCensus } from '../state/census.ts';
import { KubeNodeInventory, KubeVolumeStore } from '../state/kube-store.ts';
import { MemoryVolumeStore, StaticInventory } from '../state/memory-store.ts';
import type { NodeInventory, VolumeStore } from '../state/store.ts';
import { defineCommand, untilStopSignal } from './cli.ts';

export const controllerCommand = defineCommand({
  name: 'controller',
  about:
    'serve the CSI Identity and Controller services; release deleted volumes, start relocations and rebuilds',
  description: `Serves the CSI Identity and Controller services on a unix socket. With --state kube, the
allocator Lease picks the one replica that runs the reconcilers; CSI calls are served on any replica
(the sidecars' own leader election decides which one receives them).`,
  flags: {
    'csi-socket': {
      kind: 'string',
      placeholder: 'PATH',
      about: 'the unix socket to serve on',
      required: true,
    },
    state: {
      kind: 'string',
      placeholder: 'BACKEND',
      choices: ['kube', 'memory'],
      default: 'kube',
      about:
        'kube: volumes are MeshStorVolume objects, nodes the MeshStorNodes agents publish; placement\nreads both from informer caches and Probe says not ready until their first lists are in.\nmemory: records in this process (tests and trials)',
    },
    kubeconfig: {
      kind: 'string',
      placeholder: 'FILE',
      about: 'with --state kube: the cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster)',
    },
    'lease-namespace': {
      kind: 'string',
      placeholder: 'NS',
      env: 'POD_NAMESPACE',
      default: 'kube-system',
      about: 'with --state kube: where the allocator Lease lives',
    },
    cluster: {
      kind: 'string',
      placeholder: 'FILE',
      about:
        "with --state memory: the nodes are this scenario file's cluster section (default: the embedded one's 24 nodes)",
    },
    'metrics-port': {
      kind: 'integer',
      placeholder: 'N',
      min: 0,
      max: 65535,
      about: 'serve Prometheus /metrics and /healthz on this port (off when not given)',
    },
    'resync-seconds': {
      kind: 'integer',
      placeholder: 'N',
      min: 1,
      default: 10,
      about:
        'how often to release deleted volumes whose partitions the agents wiped, start moving a\nmember to the node of a pod that has none, release members relocations removed, and\nadvance expansions waiting for a member to move',
    },
    'rebuild-grace': {
      kind: 'integer',
      placeholder: 'SECONDS',
      min: 0,
      default: 600,
      about:
        "with --state kube: a member whose node's agent has sent no heartbeat for this long is rebuilt\nelsewhere; a node back sooner is caught up from the bitmap instead",
    },
    'rebuilds-per-node': {
      kind: 'integer',
      placeholder: 'N',
      min: 1,
      default: REBUILDS_PER_NODE,
      about:
        "with --state kube: start no rebuild that would give a node more than N full resyncs at once\n(rebuilds and relocations, counted on the node running the array and the new member's node)",
    },
  },
  async run(config, { log }) {
    let store: VolumeStore;
    let inventory: NodeInventory;
    let nodeCount: number | undefined;
    let elector: LeaseElector | undefined;
    let cache: RunningPlacementCache | undefined;
    let events: EventRecorder | undefined;
    let evacuating: EvacuatingNodes | undefined;
    let heartbeats: (() => Promise<ReadonlyMap<string, number>>) | undefined;
    if (config.state === 'memory') {
      const nodes = generateCluster(loadScenario(config.cluster).scenario);
      store = new MemoryVolumeStore();
      inventory = new StaticInventory(nodes);
      nodeCount = nodes.length;
    } else {
      const kc = loadKubeConfig(config.kubeconfig);
      events = EventRecorder.forCluster(kc, 'meshstor-controller', (m) => log.warn({ error: m }, 'event'));
      store = new KubeVolumeStore(kc);
      // Still read fresh: DeleteVolume drops a finalizer only when no agent reports a partition.
      inventory = new KubeNodeInventory(kc);
      evacuating = evacuatingNodes(kc);
      heartbeats = meshStorHeartbeats(kc);
      cache = startPlacementCache(kc, log);
      cache.cache.whenSynced.then(() => log.info(cache?.cache.sizes() ?? {}, 'caches synced'));
      elector = new LeaseElector(kc, {
        namespace: config.leaseNamespace,
        name: 'meshstor-allocator',
        identity: `${hostname()}-${process.pid}`,
        onChange: (leading, holder) => log.info({ holder }, leading ? 'leading' : 'following'),
        onError: (message) => log.warn({ error: message }, 'lease'),
      });
    }
    const registry = config.metricsPort !== undefined ? metricsRegistry('controller', true) : undefined;
    const rpcMetrics = registry ? new CsiRpcMetrics(registry) : undefined;
    let census: VolumeCensus | undefined;
    if (registry) new VolumeMetrics(registry, () => census);
    let ready = false;
    const stopping = new AbortController();
    // CSI calls are served by whichever replica the sidecars' own leader election picked (only its
    // external-provisioner and external-resizer call), and are safe on any replica: the allocator's
    // write-then-re-read never keeps two records on one extent. Tying calls to the allocator Lease
    // as well would stall provisioning whenever the sidecars lead in the other replica. The Lease
    // picks the one replica that runs the background reconcilers.
    const controller = new ControllerService({ store, inventory, model: cache?.cache });
    const deletion = new DeletionReconciler(controller.allocator, { leader: elector });
    const relocation = new RelocationReconciler(
      controller.allocator,
      (records) => {
        if (registry) census = volumeCensus(records);
      },
      elector,
      evacuating,
    );
    // Without heartbeats (--state memory) no node is ever known lost: no rebuild pass.
    const rebuild =
      heartbeats &&
      new RebuildReconciler(controller.allocator, {
        heartbeats,
        times: { graceMs: config.rebuildGrace * 1000 },
        perNode: config.rebuildsPerNode,
        leader: elector,
      });
    const server = await serveCsi(
      config.csiSocket,
      {
        identity: new IdentityService({
          controller: true,
          ready: () => ready && (cache?.cache.synced() ?? true),
        }),
        controller,
        stopping: stopping.signal,
        observe: rpcMetrics?.observe,
      },
      log,
    );
    const metrics = await metricsEndpoint(config.metricsPort, registry, {
      // the liveness probe: the CSI socket answers Probe ready (as the livenessprobe sidecar checked)
      unhealthy: () => probeCsiSocket(config.csiSocket),
    });
    elector?.start();
    ready = true;
    log.info(
      {
        socket: config.csiSocket,
        state: config.state,
        nodes: nodeCount,
        metricsPort: metrics.port,
      },
      'serving',
    );

    // After the relocation pass, which releases the members moves for growth left behind.
    const expansion = new ExpansionReconciler(controller.allocator, elector);
    const expansionPass = async () => {
      const x = await expansion.pass();
      for (const s of x.started) {
        log.info(s, 'moving a member to a larger extent for an expansion');
        await events?.note({ kind: 'MeshStorVolume', name: s.volume }, 'ExpansionRelocating', s.move);
      }
      for (const g of x.grown) {
        log.info(g, 'expansion done');
        await events?.note({ kind: 'MeshStorVolume', name: g.volume }, 'Expanded', `${g.sizeBytes} bytes`);
      }
      for (const b of x.blocked) {
        log.warn(b, 'expansion blocked');
        await events?.warn({ kind: 'MeshStorVolume', name: b.volume }, 'ExpansionBlocked', b.reason);
      }
    };
    const pass = async () => {
      try {
        const released = await deletion.pass();
        if (released.length) log.info({ volumes: released }, 'volumes released');
        const ledger = deletion.lastLedgerPass;
        deletion.lastLedgerPass = undefined; // report each ledger pass once
        if (ledger && (ledger.adopted || ledger.released))
          log.info({ adopted: ledger.adopted, released: ledger.released }, 'ledger reconciled');
        for (const volume of ledger?.clashes ?? []) {
          log.error({ volume }, 'double booking: another allocation claims bytes of this volume');
          await events?.warn(
            { kind: 'MeshStorVolume', name: volume },
            'DoubleBooked',
            'another allocation claims bytes of this volume in the ledger; an administrator must look',
          );
        }
        const r = await relocation.pass();
        if (r.started.length) log.info({ volumes: r.started }, 'relocation started');
        if (r.finished.length) log.info({ volumes: r.finished }, 'relocation finished');
        if (r.queued.length) log.info({ volumes: r.queued }, 'evacuation queued behind running moves');
        for (const b of r.blocked) {
          log.warn(b, 'relocation blocked');
          await events?.warn({ kind: 'MeshStorVolume', name: b.volume }, 'RelocationBlocked', b.reason);
        }
        const rb = await rebuild?.pass();
        if (rb) await reportRebuildPass(rb, log, events);
        await expansionPass();
      } catch (e) {
        log.warn({ error: (e as Error).message }, 'resync');
      }
    };
    const passes = every(config.resyncSeconds * 1000, pass);

    const signal = await untilStopSignal();
    log.info({ signal }, 'stopping');
    stopping.abort(new Error('the controller is stopping'));
    await passes.stop();
    await Promise.all([elector?.stop(), cache?.stop()]);
    await shutdownServer(server);
    await metrics.close();
    return 0;
  },
});
