// The extender's HTTP surfaces (express 5), two apps for two doors: the verbs (POST /filter and
// /prioritize in the kube-scheduler extender wire format), served over mutual TLS to kube-scheduler
// alone; and the probes (/healthz, /readyz after the caches synced, /metrics), served apart to
// kubelet and Prometheus. Bad requests get a 4xx with a message saying what is wrong, and the
// process keeps serving.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../kube/log.ts';
import { writeMetrics } from '../kube/metrics.ts';
import { boundedJsonBody } from './json-body.ts';
import type { ExtenderMetrics } from './metrics.ts';
import type { ExtenderState } from './state.ts';
import { WARM_UP_HEADER } from './warm-up.ts';
import { candidateNames, type ExtenderArgs, parseExtenderArgs, sparsePriorities } from './wire.ts';

export interface VerbsAppOptions {
  state: ExtenderState;
  metrics: ExtenderMetrics;
  log: Logger;
  /** Largest accepted request body (express/body-parser size string). */
  bodyLimit?: string;
  now?: () => number;
}

export interface ProbesAppOptions {
  metrics: ExtenderMetrics;
  ready: () => { ready: boolean; waitingFor: string[] };
}

function bareApp(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  return app;
}

/** POST /filter and /prioritize: what kube-scheduler calls (behind mutual TLS in a cluster). */
export function createVerbsApp(opts: VerbsAppOptions): express.Express {
  const { state, metrics, log } = opts;
  const now = opts.now ?? Date.now;
  const app = bareApp();

  const verb =
    (name: 'filter' | 'prioritize', answer: (args: ExtenderArgs, names: string[]) => unknown) =>
    (req: Request, res: Response): void => {
      const args = parseExtenderArgs(req.body);
      const names = candidateNames(args);
      const out = JSON.stringify(answer(args, names));
      // Written as is, past res.json's checks (content negotiation, ETag, charset handling).
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(out),
      });
      res.end(out);
      (res.locals.endTimer as (() => void) | undefined)?.();
      if (debug) {
        log.debug({
          verb: name,
          pod: `${args.Pod.metadata.namespace}/${args.Pod.metadata.name}`,
          nodes: names.length,
        });
      }
    };
  const debug = log.isLevelEnabled('debug');

  // Timed from before the body is read and parsed, so the histogram holds the whole call.
  const timed = (name: 'filter' | 'prioritize') => (req: Request, res: Response, next: NextFunction) => {
    // The extender's own warm-up calls (warm-up.ts) are not kube-scheduler's: not counted.
    if (!req.headers[WARM_UP_HEADER]) res.locals.endTimer = metrics.latency.startTimer({ verb: name });
    next();
  };
  const json = boundedJsonBody(opts.bodyLimit ?? '8mb');
  app.post(
    '/filter',
    timed('filter'),
    json,
    verb('filter', (args, names) => {
      const r = state.filter(args.Pod, names, now());
      if (args.NodeNames != null) return r;
      // Not nodeCacheCapable: answer with the Node objects that passed, as kube-scheduler expects.
      const keep = new Set(r.NodeNames);
      return {
        Nodes: { ...args.Nodes, items: (args.Nodes?.items ?? []).filter((n) => keep.has(n.metadata.name)) },
        NodeNames: null,
        FailedNodes: r.FailedNodes,
        FailedAndUnresolvableNodes: r.FailedAndUnresolvableNodes,
        Error: '',
      };
    }),
  );
  app.post(
    '/prioritize',
    timed('prioritize'),
    json,
    // only the hosts above the lowest score, shifted down to it: the same ranking (wire.ts)
    verb('prioritize', (args, names) => sparsePriorities(state.prioritize(args.Pod, names, now()))),
  );
  app.use((req, res) => {
    res
      .status(404)
      .json({ Error: `no such endpoint: ${req.method} ${req.path} (use POST /filter, POST /prioritize)` });
  });
  // Express 5 forwards thrown errors and rejected promises here: nothing goes unhandled.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { status?: number; type?: string; message?: string; limit?: number };
    let status = typeof e.status === 'number' && e.status >= 400 && e.status < 600 ? e.status : 500;
    let message = e.message ?? String(err);
    if (e.type === 'entity.too.large') message = `request body larger than the limit of ${e.limit} bytes`;
    else if (status === 500) message = `internal error: ${message}`;
    if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') status = 415;
    const v = req.path.replace(/^\//, '') || 'unknown';
    metrics.errors.inc({ verb: v, code: String(status) });
    (status >= 500 ? log.error : log.warn).call(
      log,
      { verb: v, status, err: message },
      'extender request failed',
    );
    if (!res.headersSent) res.status(status).json({ Error: message });
  });
  return app;
}

/** GET /healthz, /readyz and /metrics: for kubelet and Prometheus, on a port of their own. */
export function createProbesApp(opts: ProbesAppOptions): express.Express {
  const app = bareApp();
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.get('/readyz', (_req, res) => {
    const r = opts.ready();
    if (r.ready) res.type('text/plain').send('ok');
    else
      res
        .status(503)
        .type('text/plain')
        .send(`caches not synced yet: ${r.waitingFor.join(', ')}`);
  });
  app.get('/metrics', (_req, res) => writeMetrics(opts.metrics.registry, res));
  app.use((req, res) => {
    res
      .status(404)
      .type('text/plain')
      .send(`no such endpoint: ${req.method} ${req.path} (use GET /healthz, /readyz, /metrics)\n`);
  });
  return app;
}
