// `meshstor agent`: the CSI Node service for this node, over the Host interface.
// Today it runs on SimulatedHost (`--host simulated`) and, with --with-controller, serves the
// Controller too from the same in-memory state: a single-node driver for csi-sanity and trials.
// LinuxHost and the MeshStorVolume reconciler take over with the CRDs.
import { mkdir, rmdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { SimulatedHost } from '../agent/host/simulated.ts';
import { ControllerService } from '../csi/controller.ts';
import { HostInventory } from '../csi/host-inventory.ts';
import { IdentityService } from '../csi/identity.ts';
import { MemoryVolumeStore } from '../csi/memory-store.ts';
import { NodeService } from '../csi/node.ts';
import { serveCsi } from '../csi/server.ts';
import { parseBytes } from '../placement/units.ts';
import { UsageError } from './simulate.ts';

export const AGENT_USAGE = `usage: meshstor agent --csi-socket PATH --node NAME [options]

Serves the CSI Node service for one node.

options:
  --csi-socket PATH        the unix socket to serve on (required)
  --node NAME              this node's name (required)
  --zone ZONE              this node's zone (topology)
  --host simulated         the Host implementation (only "simulated" so far)
  --drives LIST            simulated NVMe drives, comma separated sizes (default 2x100GiB: "100GiB,100GiB")
  --with-controller        also serve the Controller service from the same in-memory state
  -h, --help               this text`;

export async function agentCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'csi-socket': { type: 'string' },
      node: { type: 'string' },
      zone: { type: 'string' },
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
  let sizes: number[];
  try {
    sizes = values.drives.split(',').map((s) => parseBytes(s));
  } catch (e) {
    throw new UsageError(`--drives: ${(e as Error).message}`);
  }
  const host = new SimulatedHost({
    hostNqn: `nqn.2014-08.org.nvmexpress:uuid:meshstor-${nodeName}`,
    drives: sizes.map((sizeBytes, i) => ({ id: `SIM${nodeName}-${i}`, sizeBytes })),
  });
  const store = new MemoryVolumeStore();
  const log = (level: string, msg: string, fields: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
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
        mountPoints: {
          ensure: async (path) => {
            await mkdir(path, { recursive: true });
          },
          // rmdir, not rm -r: a directory with anything in it is not ours to delete.
          remove: async (path) => {
            await rmdir(path).catch((e: NodeJS.ErrnoException) => {
              if (e.code !== 'ENOENT') throw e;
            });
          },
        },
      }),
    },
    log,
  );
  log('info', 'serving', { socket, node: nodeName, host: values.host, controller: withController });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log('info', 'stopping', { signal });
      server.tryShutdown(() => resolve());
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
