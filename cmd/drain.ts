// `meshstor drain NODE`: prints the plan for moving every MeshStor replica off a node (controller/
// drain.ts) and, with --yes, asks for it: cordons the Node and labels it meshstor.io/evacuate=true;
// the controller's relocation reconciler then moves the replicas through the relocation steps
// (add before remove), and this command follows them until the node holds none (or --detach).
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { type DrainReport, formatDrainReport, planDrainReport } from '../controller/drain.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { EVACUATE_LABEL } from '../kube/evacuation.ts';
import { KubeNodeInventory, KubeVolumeStore } from '../state/kube-store.ts';
import { defineCommand, UsageError } from './cli.ts';

export const drainCommand = defineCommand({
  name: 'drain',
  about: 'plan (and with --yes run) moving every MeshStor replica off a node',
  description:
    'Prints every replica on NODE, its destination, the bytes to copy, the order, and which volumes have fewer in-sync copies than their replicaCount while it runs. Nothing changes without --yes. With --yes the Node is cordoned and labelled meshstor.io/evacuate=true, and `meshstor controller` moves the replicas (a new copy is added and resynced before the old one is removed); this command follows until the node holds none. Remove the label (and uncordon) to stop.',
  positionals: { usage: 'NODE', max: 1 },
  flags: {
    kubeconfig: {
      kind: 'string',
      placeholder: 'FILE',
      about: 'the cluster (default: $KUBECONFIG, ~/.kube/config or the in-cluster service account)',
    },
    'dry-run': { kind: 'boolean', about: 'print the plan only (the default without --yes)' },
    yes: { kind: 'boolean', about: 'cordon the node, label it for evacuation and follow the moves' },
    detach: { kind: 'boolean', about: 'with --yes: return once the node is cordoned and labelled' },
    timeout: {
      kind: 'integer',
      placeholder: 'S',
      min: 1,
      default: 24 * 3600,
      about: 'with --yes: seconds to follow the moves before giving up (they go on in the controller)',
    },
  },
  async run(config, { positionals }) {
    const node = positionals[0];
    if (!node) throw new UsageError('name the node to drain');
    if (config.yes && config.dryRun) throw new UsageError('--yes and --dry-run exclude each other');
    const kc = loadKubeConfig(config.kubeconfig);
    const inventory = new KubeNodeInventory(kc);
    const store = new KubeVolumeStore(kc);
    const read = async (): Promise<DrainReport> => {
      const [nodes, records] = await Promise.all([inventory.nodes(), store.list()]);
      if (!nodes.some((n) => n.name === node)) throw new UsageError(`no MeshStorNode ${node}`);
      return planDrainReport(nodes, records, node);
    };
    const report = await read();
    console.log(formatDrainReport(report, !config.yes));
    if (!config.yes) return 0;

    await kc.makeApiClient(CoreV1Api).patchNode(
      {
        name: node,
        body: { spec: { unschedulable: true }, metadata: { labels: { [EVACUATE_LABEL]: 'true' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    console.log(
      `Node ${node} cordoned and labelled ${EVACUATE_LABEL}=true: the controller moves the replicas.`,
    );
    if (config.detach) return 0;
    const deadline = Date.now() + config.timeout * 1000;
    let last = '';
    for (;;) {
      const now = await read();
      const running = now.moves.filter((m) => m.running).length;
      const moving = now.moves.filter((m) => !m.waits).length;
      const left = now.moves.length + now.unplaceable.length;
      const line = `${left} replicas on ${node}: ${running} moving, ${moving - running} next, ${left - moving} waiting`;
      if (line !== last) console.log(line);
      last = line;
      if (left === 0) {
        console.log(`Node ${node} holds no MeshStor replica.`);
        return 0;
      }
      if (moving === 0) {
        console.log(formatDrainReport(now, false));
        console.log('Nothing left can move now; the controller goes on when they can.');
        return 1;
      }
      if (Date.now() > deadline) {
        console.log(`Gave up following after ${config.timeout} s; the controller goes on.`);
        return 1;
      }
      await new Promise((r) => setTimeout(r, 5000));
    }
  },
});
