// `meshstor extender`: the kube-scheduler extender (scheduler/).
import { loadKubeConfig } from '../kube/client.ts';
import { startExtender } from '../scheduler/extender.ts';
import { defineCommand, untilStopSignal } from './cli.ts';

export const extenderCommand = defineCommand({
  name: 'extender',
  about: 'the kube-scheduler extender (filter, prioritize) for MeshStor volumes',
  flags: {
    host: {
      kind: 'string',
      placeholder: 'ADDR',
      default: '0.0.0.0',
      about: 'address to listen on (kube-scheduler reaches it through a Service)',
    },
    port: { kind: 'integer', placeholder: 'N', min: 0, max: 65535, default: 8099, about: 'port' },
    kubeconfig: {
      kind: 'string',
      placeholder: 'FILE',
      about: 'the cluster (default: $KUBECONFIG, ~/.kube/config or the in-cluster service account)',
    },
    'heartbeat-stale': {
      kind: 'integer',
      placeholder: 'S',
      min: 1,
      default: 90,
      about: 'seconds after which an agent that did not report counts as down',
    },
  },
  async run(config, { log }) {
    process.on('unhandledRejection', (e) => {
      // A safety net: every promise is handled on purpose; should one slip through, say so loudly.
      log.fatal({ err: String(e) }, 'unhandled rejection');
      process.exitCode = 1;
    });
    const ext = await startExtender({
      kc: loadKubeConfig(config.kubeconfig),
      log,
      host: config.host,
      port: config.port,
      heartbeatStaleMs: config.heartbeatStale * 1000,
      defaultMetrics: true,
    });
    ext.whenSynced.catch(() => {});
    const signal = await untilStopSignal();
    log.info({ signal }, 'shutting down');
    await ext.close();
    return 0;
  },
});
