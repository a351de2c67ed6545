// `node test/nodes/up.ts [--install]`: boots the nodes tier's cluster by hand and keeps it up until
// Ctrl-C (or SIGTERM), printing the admin kubeconfig, so a person can look around with kubectl.
// --install also installs the chart. Consoles and logs: MESHSTOR_NODES_DIR (default: a temp dir).
import { NodesCluster } from './cluster.ts';

const cluster = new NodesCluster({ dir: process.env.MESHSTOR_NODES_DIR });
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('stopping the cluster ...');
  await cluster.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
try {
  await cluster.start();
  if (process.argv.includes('--install')) cluster.helmInstall();
  console.log(`up: export KUBECONFIG=${cluster.kubeconfig}\n${cluster.where()}`);
  setInterval(() => undefined, 1 << 30);
} catch (e) {
  console.error(`nodes: ${e instanceof Error ? e.message : String(e)}\n${cluster.where()}`);
  await cluster.stop();
  process.exit(1);
}
