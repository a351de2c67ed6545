// `meshstor agent`: the node agent. Serves the CSI Node service over the Host interface and, with
// Kubernetes state, every --resync-seconds and on every change to a volume of this node, runs the
// agent's pass (agent/pass.ts: exports, member states, relocation steps, wipes) and publishes this
// node's MeshStorNode.
// Today it runs on SimulatedHost (`--host simulated`) over NetworkSimFabric, so agents in separate
// processes reach each other's exports over real TCP at their --address/--port; with --state memory
// --with-controller it is a one-node driver (Identity, Controller and Node on one socket) for
// csi-sanity and trials, which never exports and so never listens.
import { parseArgs } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { NetworkSimFabric } from '../agent/host/sim-network.ts';
import { SimulatedHost } from '../agent/host/simulated.ts';
import { HostInventory } from '../agent/host-inventory.ts';
import { fsMountPoints } from '../agent/mount-points.ts';
import { agentPass } from '../agent/pass.ts';
import { NodePublisher } from '../agent/publisher.ts';
import { ControllerService } from '../csi/controller.ts';
import { IdentityService } from '../csi/identity.ts';
import { NodeService } from '../csi/node.ts';
import { serveCsi } from '../csi/server.ts';
import { loadKubeConfig } from '../kube/client.ts';
import type { MeshStorVolume } from '../kube/crds.ts';
import { EventRecorder } from '../kube/events.ts';
import { makeLogger } from '../kube/log.ts';
import { parseBytes } from '../placement/units.ts';
import { KubePeerDirectory, KubeVolumeStore, WatchedVolumeStore } from '../state/kube-store.ts';
import { KeyedLock } from '../state/lock.ts';
import { MemoryVolumeStore } from '../state/memory-store.ts';
import type { PeerDirectory, VolumeStore } from '../state/store.ts';
import { every, shutdownServer } from './periodic.ts';
import { UsageError } from './simulate.ts';

export const AGENT_USAGE = `usage: meshstor agent --csi-socket PATH --node NAME [options]

Serves the CSI Node service for one node.

options:
  --csi-socket PATH        the unix socket to serve on (required)
  --node NAME              this node's name (required)
  --zone ZONE              this node's zone (topology)
  --state kube             volumes are MeshStorVolume objects; publishes this node's MeshStorNode (default)
  --state memory           volumes live in this process (with --with-controller: a one-node driver)
  --kubeconfig FILE        with --state kube: the cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster)
  --address ADDR           NVMe-oF address other nodes reach this node on: published in its MeshStorNode,
                           and where the simulated target's TCP listener opens while it exports
                           a replica (default 127.0.0.1)
  --port N                 NVMe-oF TCP port of that listener (default 4420)
  --resync-seconds N       how often to export replicas, clean up deleted volumes and re-publish (default 5);
                           a change to a volume of this node's runs that pass at once (a watch)
  --host simulated         the Host implementation (only "simulated" so far)
  --drives LIST            simulated NVMe drives, comma separated sizes (default "100GiB,100GiB")
  --with-controller        with --state memory: also serve the Controller from the same state
  -h, --help               this text`;

export async function agentCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'csi-socket': { type: 'string' },
      node: { type: 'string' },
      zone: { type: 'string' },
      state: { type: 'string', default: 'kube' },
      kubeconfig: { type: 'string' },
      address: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '4420' },
      'resync-seconds': { type: 'string', default: '5' },
      host: { type: 'string', default: 'simulated' },
      drives: { type: 'string', default: '100GiB,100GiB' },
      'with-controller': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(AGENT_USAGE);
    return 0;
  }
  const socket = values['csi-socket'];
  const nodeName = values.node;
  if (!socket) throw new UsageError('--csi-socket is required');
  if (!nodeName) throw new UsageError('--node is required');
  if (values.host !== 'simulated')
    throw new UsageError(`--host ${values.host}: only "simulated" exists so far`);
  if (values.state !== 'kube' && values.state !== 'memory')
    throw new UsageError(`--state ${values.state}: use kube or memory`);
  if (values['with-controller'] && values.state !== 'memory')
    throw new UsageError('--with-controller needs --state memory');
  const port = Number(values.port);
  const resync = Number(values['resync-seconds']);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError(`--port ${values.port}: not a TCP port`);
  if (!(resync > 0)) throw new UsageError(`--resync-seconds ${values['resync-seconds']}: must be > 0`);
  let sizes: number[];
  try {
    sizes = values.drives.split(',').map((s) => parseBytes(s));
  } catch (e) {
    throw new UsageError(`--drives: ${(e as Error).message}`);
  }
  const log = (level: string, msg: string, fields: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`);

  // Real TCP between agent processes: one agent per node, each exporting at its --address/--port.
  const fabric = new NetworkSimFabric();
  const host = new SimulatedHost({
    hostNqn: `nqn.2014-08.org.nvmexpress:uuid:meshstor-${nodeName}`,
    drives: sizes.map((sizeBytes, i) => ({ id: `SIM${nodeName}-${i}`, sizeBytes })),
    fabric,
  });
  let store: VolumeStore;
  let publisher: NodePublisher | undefined;
  let peers: PeerDirectory | undefined;
  let watched: { store: WatchedVolumeStore; kc: KubeConfig } | undefined;
  let events: EventRecorder | undefined;
  if (values.state === 'kube') {
    const kc = loadKubeConfig(values.kubeconfig);
    watched = { store: new WatchedVolumeStore(new KubeVolumeStore(kc)), kc };
    store = watched.store;
    peers = new KubePeerDirectory(kc);
    events = EventRecorder.forCluster(kc, `meshstor-agent/${nodeName}`, (m) =>
      log('warn', 'event', { error: m }),
    );
    publisher = new NodePublisher(kc, { nodeName, zone: values.zone, address: values.address, port }, host);
    await publisher.publish(await store.list());
  } else store = new MemoryVolumeStore();

  const withController = values['with-controller'];
  // One lock per volume shared by the node service and the export pass (agent/exports.ts).
  const locks = new KeyedLock();
  const listen = { address: values.address, port };
  const server = await serveCsi(
    socket,
    {
      identity: new IdentityService({ controller: withController, ready: () => true }),
      controller: withController
        ? new ControllerService({ store, inventory: new HostInventory(nodeName, values.zone, host, store) })
        : undefined,
      node: new NodeService({
        nodeName,
        zone: values.zone,
        host,
        store,
        peers,
        locks,
        mountPoints: fsMountPoints,
      }),
    },
    log,
  );
  log('info', 'serving', {
    socket,
    node: nodeName,
    host: values.host,
    state: values.state,
    controller: withController,
  });

  const pass = async (publisher: NodePublisher) => {
    try {
      const {
        records,
        exports: x,
        members,
        relocations,
        deletions: r,
      } = await agentPass({
        nodeName,
        host,
        store,
        listen,
        locks,
      });
      if (x.created.length) log('info', 'partitions created', { replicas: x.created });
      if (x.exported.length) log('info', 'exported', { replicas: x.exported });
      if (x.unexported.length) log('info', 'unexported', { replicas: x.unexported });
      for (const w of x.waiting) log('info', 'waiting to export', w);
      for (const f of x.failed) {
        log('warn', 'replica not served', f);
        await events?.warn(
          { kind: 'MeshStorVolume', name: f.volume },
          'ReplicaNotServed',
          `node ${nodeName}, replica ${f.replica}: ${f.reason}`,
        );
      }
      if (members.length) log('info', 'member states reported', { volumes: members });
      for (const p of relocations) log('info', 'relocation', { ...p });
      if (r.wiped.length) log('info', 'wiped', { partitions: r.wiped });
      for (const w of r.waiting) log('info', 'waiting to wipe', w);
      await publisher.publish(records);
    } catch (e) {
      log('warn', 'reconcile', { error: (e as Error).message });
    }
  };
  const passes = publisher ? every(resync * 1000, () => pass(publisher)) : undefined;
  // A change to a volume with a member here or attached here runs a pass at once: exports follow
  // an attachment (and relocation steps follow each other) without waiting for the period.
  const involves = (v: MeshStorVolume | undefined) =>
    !!v && (v.spec.attachment?.node === nodeName || (v.spec.replicas ?? []).some((r) => r.node === nodeName));
  watched?.store.start(watched.kc, makeLogger('agent'), (before, after) => {
    if (involves(before) || involves(after)) passes?.kick();
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log('info', 'stopping', { signal });
      void (passes?.stop() ?? Promise.resolve())
        .then(() => watched?.store.stop())
        .then(() => shutdownServer(server))
        .then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await fabric.close();
  return 0;
}
