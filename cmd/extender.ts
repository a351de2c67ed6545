// `meshstor extender`: the kube-scheduler extender (scheduler/). Flags:
//   --host ADDR          address to listen on (default 0.0.0.0: kube-scheduler reaches it through a Service)
//   --port N             port (default 8099)
//   --kubeconfig FILE    default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account
//   --heartbeat-stale S  seconds after which an agent that did not report counts as down (default 90)
//   --log-level LEVEL    pino level (default info)
import { parseArgs } from 'node:util';
import { loadKubeConfig } from '../kube/client.ts';
import { makeLogger } from '../kube/log.ts';
import { startExtender } from '../scheduler/extender.ts';

export const EXTENDER_USAGE = `usage: meshstor extender [--host 0.0.0.0] [--port 8099] [--kubeconfig FILE]
                        [--heartbeat-stale 90] [--log-level info]`;

export async function runExtender(argv: string[]): Promise<number> {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'string', default: '8099' },
        kubeconfig: { type: 'string' },
        'heartbeat-stale': { type: 'string', default: '90' },
        'log-level': { type: 'string', default: process.env.MESHSTOR_LOG_LEVEL ?? 'info' },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`meshstor extender: ${(e as Error).message}\n${EXTENDER_USAGE}`);
    return 2;
  }
  const port = Number(values.port);
  const stale = Number(values['heartbeat-stale']);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || !(stale > 0)) {
    console.error(`meshstor extender: --port must be 0..65535 and --heartbeat-stale > 0\n${EXTENDER_USAGE}`);
    return 2;
  }
  const log = makeLogger('extender', values['log-level']);
  process.on('unhandledRejection', (e) => {
    // A safety net: every promise is handled on purpose; should one slip through, say so loudly.
    log.fatal({ err: String(e) }, 'unhandled rejection');
    process.exitCode = 1;
  });
  const ext = await startExtender({
    kc: loadKubeConfig(values.kubeconfig),
    log,
    host: values.host,
    port,
    heartbeatStaleMs: stale * 1000,
    defaultMetrics: true,
  });
  ext.whenSynced.catch(() => {});
  await new Promise<void>((resolve) => {
    const bye = (sig: string) => {
      log.info({ signal: sig }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => bye('SIGTERM'));
    process.once('SIGINT', () => bye('SIGINT'));
  });
  await ext.close();
  return 0;
}
