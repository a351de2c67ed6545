// `meshstor extender`: the kube-scheduler extender (scheduler/).
import { loadKubeConfig } from '../kube/client.ts';
import { type Door, readDoorTls } from '../scheduler/door.ts';
import { startExtender } from '../scheduler/extender.ts';
import { defineCommand, InputError, UsageError, untilStopSignal } from './cli.ts';

export const extenderCommand = defineCommand({
  name: 'extender',
  about: 'the kube-scheduler extender (filter, prioritize) for MeshStor volumes',
  description: `Serves filter and prioritize to kube-scheduler over HTTPS that requires a client
certificate signed by --client-ca (mutual TLS); /healthz, /readyz and /metrics are plain HTTP on
--probe-port. The PEM files are read at start and again each minute (a renewed certificate is used
for new connections without a restart); their contents are never logged.`,
  flags: {
    host: {
      kind: 'string',
      placeholder: 'ADDR',
      default: '0.0.0.0',
      about: 'address to listen on (kube-scheduler reaches it through a Service)',
    },
    port: {
      kind: 'integer',
      placeholder: 'N',
      min: 0,
      max: 65535,
      default: 8099,
      about: 'port of filter and prioritize (HTTPS, client certificate required)',
    },
    'probe-port': {
      kind: 'integer',
      placeholder: 'N',
      min: 0,
      max: 65535,
      default: 8100,
      about: 'port of /healthz, /readyz and /metrics (plain HTTP, no verbs)',
    },
    'tls-cert': {
      kind: 'string',
      placeholder: 'FILE',
      about: "the extender's serving certificate (PEM, chain first to last)",
    },
    'tls-key': { kind: 'string', placeholder: 'FILE', about: 'its private key (PEM)' },
    'client-ca': {
      kind: 'string',
      placeholder: 'FILE',
      about: "CA certificate(s) (PEM) that signed kube-scheduler's client certificate",
    },
    'insecure-http': {
      kind: 'boolean',
      about: 'serve the verbs over plain HTTP with no authentication (tests and benchmarks only)',
    },
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
    let door: Door;
    if (config.insecureHttp) {
      if (config.tlsCert || config.tlsKey || config.clientCa)
        throw new UsageError('--insecure-http and --tls-cert/--tls-key/--client-ca exclude each other');
      door = { insecureHttp: true };
    } else {
      const { tlsCert: cert, tlsKey: key, clientCa } = config;
      if (!cert || !key || !clientCa)
        throw new UsageError(
          'the extender serves its verbs over mutual TLS: give --tls-cert, --tls-key and --client-ca ' +
            '(or --insecure-http, for tests and benchmarks only)',
        );
      try {
        const files = { cert, key, clientCa };
        door = { tls: readDoorTls(files), files };
      } catch (e) {
        throw new InputError((e as Error).message);
      }
    }
    const ext = await startExtender({
      kc: loadKubeConfig(config.kubeconfig),
      log,
      door,
      host: config.host,
      port: config.port,
      probePort: config.probePort,
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
