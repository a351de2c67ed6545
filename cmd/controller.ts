// `meshstor controller`: the CSI Identity and Controller services on a unix socket.
// State backends: `memory` (records in this process, nodes from a scenario's cluster section) for
// tests and trials; the MeshStorVolume/MeshStorNode backend arrives with the CRDs.
import { parseArgs } from 'node:util';
import { ControllerService } from '../csi/controller.ts';
import { IdentityService } from '../csi/identity.ts';
import { MemoryVolumeStore, StaticInventory } from '../csi/memory-store.ts';
import { serveCsi } from '../csi/server.ts';
import { generateCluster } from '../simulations/cluster-gen.ts';
import { loadScenario } from '../simulations/run.ts';
import { UsageError } from './simulate.ts';

export const CONTROLLER_USAGE = `usage: meshstor controller --csi-socket PATH [--state memory] [--cluster SCENARIO.yaml]

Serves the CSI Identity and Controller services on a unix socket.

options:
  --csi-socket PATH   the unix socket to serve on (required)
  --state memory      keep volume records in this process (the only backend so far)
  --cluster FILE      with --state memory: the nodes are the cluster section of this scenario
                      file (default: the embedded default scenario's 24 nodes)
  -h, --help          this text`;

export async function controllerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'csi-socket': { type: 'string' },
      state: { type: 'string', default: 'memory' },
      cluster: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(CONTROLLER_USAGE);
    return 0;
  }
  const socket = values['csi-socket'];
  if (!socket) throw new UsageError('--csi-socket is required');
  if (values.state !== 'memory') {
    throw new UsageError(
      `--state ${values.state}: only "memory" exists so far (the Kubernetes backend comes with the CRDs)`,
    );
  }
  const { scenario } = loadScenario(values.cluster);
  const nodes = generateCluster(scenario);
  const log = (level: string, msg: string, fields: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`);
  let ready = false;
  const server = await serveCsi(
    socket,
    {
      identity: new IdentityService({ controller: true, ready: () => ready }),
      controller: new ControllerService({
        store: new MemoryVolumeStore(),
        inventory: new StaticInventory(nodes),
      }),
    },
    log,
  );
  ready = true;
  log('info', 'serving', { socket, state: values.state, nodes: nodes.length });
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
