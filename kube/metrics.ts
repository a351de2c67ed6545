// Prometheus metrics of the controller and the agent (prom-client), each process on a registry of
// its own (several components share one process in tests), and the small HTTP server that serves
// them. The extender has its own metric set (scheduler/metrics.ts) on the same registry helper and
// the same /metrics writer.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Called once per CSI RPC: its method (NodeStageVolume), gRPC status name (OK, NOT_FOUND) and duration. */
export type CsiRpcObserver = (method: string, code: string, seconds: number) => void;

/** Why a host command failed, a small fixed set (a label value). */
export type HostCommandFailure = 'exit' | 'timeout' | 'cancelled' | 'not_run';

/** Called once per host command: the program (mdadm), its duration, and why it failed, if it did. */
export type HostCommandObserver = (command: string, seconds: number, failure?: HostCommandFailure) => void;

/** A registry for one component; with `defaults`, the process metrics prefixed `meshstor_<component>_`. */
export function metricsRegistry(component: string, defaults = false): Registry {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: `meshstor_${component}_` });
  return registry;
}

/** CSI calls: from a few ms (probes) to minutes (NodeStage waiting for remote exports, mkfs). */
const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Host commands: sgdisk takes about a second, mdadm --create and mkfs.xfs longer. */
const COMMAND_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class CsiRpcMetrics {
  readonly duration: Histogram<'method' | 'code'>;
  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'meshstor_csi_rpc_duration_seconds',
      help: 'Time to answer one CSI call, by method and gRPC status code',
      labelNames: ['method', 'code'],
      buckets: RPC_BUCKETS,
      registers: [registry],
    });
  }
  readonly observe: CsiRpcObserver = (method, code, seconds) => {
    this.duration.observe({ method, code }, seconds);
  };
}

export class HostCommandMetrics {
  readonly duration: Histogram<'command'>;
  readonly failures: Counter<'command' | 'reason'>;
  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'meshstor_host_command_duration_seconds',
      help: 'Time one host command (sgdisk, mdadm, nvme, mkfs.xfs ...) ran, failed or not, by program',
      labelNames: ['command'],
      buckets: COMMAND_BUCKETS,
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'meshstor_host_command_failures_total',
      help: 'Host commands that failed, by program and reason (exit, timeout, cancelled, not_run)',
      labelNames: ['command', 'reason'],
      registers: [registry],
    });
  }
  readonly observe: HostCommandObserver = (command, seconds, failure) => {
    this.duration.observe({ command }, seconds);
    if (failure) this.failures.inc({ command, reason: failure });
  };
}

/**
 * Whether kubelet registered this agent's CSI plugin (csi/registration.ts), read at scrape time:
 * 1 registered, 0 refused or not yet answered; absent when the agent does not register.
 */
export function kubeletRegistrationGauge(registry: Registry, registered: () => boolean | undefined): Gauge {
  return new Gauge({
    name: 'meshstor_kubelet_plugin_registered',
    help: 'Whether kubelet registered this agent as the CSI plugin (1) or refused it or has not answered yet (0)',
    registers: [registry],
    collect() {
      const r = registered();
      if (r !== undefined) this.set(r ? 1 : 0);
    },
  });
}

/** Counts of the volume records at one moment (state/census.ts computes it from the records). */
export interface VolumeCensus {
  /** By the volume's Ready reason: InSync, Syncing, Relocating, Degraded, Provisioned, Deleting. */
  volumes: Record<string, number>;
  /** By member state: Pending, Syncing, InSync, Faulty, Removed. */
  members: Record<string, number>;
  relocations: number;
  /** Bytes the relocations in progress still have to copy (as far as their records know). */
  relocationBytesRemaining: number;
}

/** A gauge filled from the census at scrape time: by state (a state that is gone is dropped) or one number. */
function censusGauge(
  registry: Registry,
  name: string,
  help: string,
  census: () => VolumeCensus | undefined,
  value: (c: VolumeCensus) => Record<string, number> | number,
): Gauge<'state'> {
  const v0 = value({ volumes: {}, members: {}, relocations: 0, relocationBytesRemaining: 0 });
  return new Gauge({
    name,
    help,
    labelNames: typeof v0 === 'number' ? [] : ['state'],
    registers: [registry],
    collect() {
      const c = census();
      if (!c) return; // not known yet: no made-up zeros
      const v = value(c);
      if (typeof v === 'number') return void this.set(v);
      this.reset();
      for (const [state, n] of Object.entries(v)) this.set({ state }, n);
    },
  });
}

/** The controller's view of the volumes, read at scrape time from `census` (undefined: not known yet). */
export class VolumeMetrics {
  readonly volumes: Gauge<'state'>;
  readonly members: Gauge<'state'>;
  readonly relocations: Gauge<'state'>;
  readonly relocationBytesRemaining: Gauge<'state'>;
  constructor(registry: Registry, census: () => VolumeCensus | undefined) {
    const gauge = censusGauge.bind(undefined, registry);
    this.volumes = gauge(
      'meshstor_volumes',
      'MeshStor volumes by state (the reason of their Ready condition)',
      census,
      (c) => c.volumes,
    );
    this.members = gauge(
      'meshstor_members',
      'Replicas (MD array members) of MeshStor volumes by state',
      census,
      (c) => c.members,
    );
    this.relocations = gauge(
      'meshstor_relocations_in_progress',
      'Volumes with a member moving to another node',
      census,
      (c) => c.relocations,
    );
    this.relocationBytesRemaining = gauge(
      'meshstor_relocation_bytes_remaining',
      'Bytes the relocations in progress still have to copy',
      census,
      (c) => c.relocationBytesRemaining,
    );
  }
}

/** One array resyncing or rebuilding on this node, as md reports it. */
export interface ResyncSample {
  array: string;
  /** md's sync_action: resync, recover ... */
  action: string;
  /** 0..1 */
  progress: number;
  sizeBytes: number;
}

/**
 * The agent's resyncs and rebuilds (md on this node): how many, bytes left, and bytes copied. The
 * copied bytes are a counter (rate() of it is the resync rate); the gauge holds the rate between
 * the last two samples for a quick look without PromQL.
 */
export class ResyncMetrics {
  readonly inProgress: Gauge;
  readonly remaining: Gauge;
  readonly copied: Counter;
  readonly rate: Gauge;
  private last = new Map<string, number>();
  private lastAt: number | undefined;

  constructor(registry: Registry) {
    this.inProgress = new Gauge({
      name: 'meshstor_resyncs_in_progress',
      help: 'MD arrays on this node resyncing or rebuilding a member',
      registers: [registry],
    });
    this.remaining = new Gauge({
      name: 'meshstor_resync_bytes_remaining',
      help: 'Bytes the resyncs and rebuilds on this node still have to copy',
      registers: [registry],
    });
    this.copied = new Counter({
      name: 'meshstor_resync_bytes_total',
      help: 'Bytes copied by resyncs and rebuilds on this node',
      registers: [registry],
    });
    this.rate = new Gauge({
      name: 'meshstor_resync_bytes_per_second',
      help: 'Resync and rebuild speed on this node between the last two samples',
      registers: [registry],
    });
  }

  /** Records the arrays syncing now (all of them, each pass; `nowMs` for tests). */
  sample(arrays: readonly ResyncSample[], nowMs = Date.now()): void {
    let remaining = 0;
    let copied = 0;
    const next = new Map<string, number>();
    for (const a of arrays) {
      const done = Math.round(Math.min(1, Math.max(0, a.progress)) * a.sizeBytes);
      remaining += a.sizeBytes - done;
      const key = `${a.array}\0${a.action}`;
      const before = this.last.get(key);
      // a resync that started over (or is new) counts from where it is now, never backwards
      if (before !== undefined && done > before) copied += done - before;
      next.set(key, done);
    }
    this.inProgress.set(arrays.length);
    this.remaining.set(remaining);
    this.copied.inc(copied);
    const seconds = this.lastAt === undefined ? 0 : (nowMs - this.lastAt) / 1000;
    this.rate.set(seconds > 0 ? copied / seconds : 0);
    this.last = next;
    this.lastAt = nowMs;
  }
}

/** Writes the registry in the Prometheus text format (shared by serveMetrics and the extender). */
export async function writeMetrics(registry: Registry, res: ServerResponse): Promise<void> {
  try {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(body);
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`collecting metrics failed: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}

export interface MetricsServerOptions {
  /** Address to listen on (default all). */
  host?: string;
  /** /healthz answers 503 with the message while this returns (or resolves to) one. */
  unhealthy?: () => string | undefined | Promise<string | undefined>;
}

/** Answers /healthz: 200 "ok", or 503 with the problem (a check that throws is a problem too). */
async function writeHealth(unhealthy: MetricsServerOptions['unhealthy'], res: ServerResponse): Promise<void> {
  let bad: string | undefined;
  try {
    bad = await unhealthy?.();
  } catch (e) {
    bad = `the health check failed: ${e instanceof Error ? e.message : String(e)}`;
  }
  res.writeHead(bad ? 503 : 200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(bad ? `${bad}\n` : 'ok\n');
}

/** GET /metrics and /healthz on `port` (0: any free port; the server's address() says which). */
export function serveMetrics(
  port: number,
  registry: Registry,
  opts: MetricsServerOptions = {},
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('only GET\n');
    } else if (path === '/metrics') void writeMetrics(registry, res);
    else if (path === '/healthz') void writeHealth(opts.unhealthy, res);
    else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`no such endpoint: ${path} (use /metrics, /healthz)\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, opts.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** The port a server listens on (for port 0). */
export const listeningPort = (server: Server): number => (server.address() as AddressInfo).port;

/** A process's `/metrics` endpoint when `--metrics-port` was given: where it listens, and its stop. */
export interface MetricsEndpoint {
  /** The port it listens on (the one asked for, or the one chosen for port 0); undefined when off. */
  port: number | undefined;
  close(): Promise<void>;
}

/** Serves `registry` (and /healthz by `opts.unhealthy`) on `port` when both are given; otherwise an endpoint that is off. */
export async function metricsEndpoint(
  port: number | undefined,
  registry: Registry | undefined,
  opts: MetricsServerOptions = {},
): Promise<MetricsEndpoint> {
  if (port === undefined || !registry) return { port: undefined, close: async () => {} };
  const server = await serveMetrics(port, registry, opts);
  return {
    port: listeningPort(server),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
