// `meshstor agent`: the node agent. Serves the CSI Node service over the Host interface and, with
// Kubernetes state, publishes this node's MeshStorNode and cleans up partitions of deleted volumes.
// Today it runs on SimulatedHost (`--host simulated`); with --state memory --with-controller it is
// a one-node driver (Identity, Controller and Node on one socket) for csi-sanity and trials.
import { parseArgs } from 'node:util';
import { SimulatedHost } from '../agent/host/simulated.ts';
import { NodePublisher } from '../agent/publisher.ts';
import { reconcileDeletions } from '../agent/reconciler.ts';
import { ControllerService } from '../csi/controller.ts';
import { HostInventory } from '../csi/host-inventory.ts';
import { IdentityService } from '../csi/identity.ts';
import { KubeVolumeStore } from '../csi/kube-store.ts';
import { MemoryVolumeStore } from '../csi/memory-store.ts';
import { fsMountPoints } from '../csi/mount-points.ts';
import { NodeService } from '../csi/node.ts';
import { serveCsi } from '../csi/server.ts';
import type { VolumeStore } from '../csi/state.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { parseBytes } from '../placement/units.ts';
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
  --address ADDR           NVMe-oF address other nodes reach this node on (default 127.0.0.1)
  --port N                 NVMe-oF TCP port (default 4420)
  --resync-seconds N       how often to re-publish the node and clean up deleted volumes (default 5)
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

  const host = new SimulatedHost({
    hostNqn: `nqn.2014-08.org.nvmexpress:uuid:meshstor-${nodeName}`,
    drives: sizes.map((sizeBytes, i) => ({ id: `SIM${nodeName}-${i}`, sizeBytes })),
  });
  let store: VolumeStore;
  let publisher: NodePublisher | undefined;
  if (values.state === 'kube') {
    const kc = loadKubeConfig(values.kubeconfig);
    store = new KubeVolumeStore(kc);
    publisher = new NodePublisher(kc, { nodeName, zone: values.zone, address: values.address, port }, host);
    await publisher.publish();
  } else store = new MemoryVolumeStore();

  const withController = values['with-controller'];
  const server = await serveCsi(
    socket,
    {
      identity: new IdentityService({ controller: withController, ready: () => true }),
      controller: withController
        ? new ControllerService({ store, inventory: new HostInventory(nodeName, values.zone, host) })
        : undefined,
      node: new NodeService({
        nodeName,
        zone: values.zone,
        host,
        store,
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

  let timer: NodeJS.Timeout | undefined;
  const pass = async () => {
    if (!publisher) return;
    try {
      const r = await reconcileDeletions(nodeName, host, store);
      if (r.wiped.length) log('info', 'wiped', { partitions: r.wiped });
      for (const w of r.waiting) log('info', 'waiting to wipe', w);
      await publisher.publish();
    } catch (e) {
      log('warn', 'reconcile', { error: (e as Error).message });
    }
    timer = setTimeout(pass, resync * 1000);
  };
  if (publisher) timer = setTimeout(pass, resync * 1000);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log('info', 'stopping', { signal });
      if (timer) clearTimeout(timer);
      server.tryShutdown(() => resolve());
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
