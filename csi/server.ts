// Serves the CSI services on a unix socket: loads our .proto, maps each RPC to a service method,
// bounds every call in time, turns every failure into a gRPC status, and logs each request by its
// volume id (or name) and its size, never whole (a hostile request can be megabytes; secrets).
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from '../kube/log.ts';
import { aborted, callFailure } from './errors.ts';
import { describeRequest, measured } from './request-summary.ts';
import { listenUnix } from './socket.ts';

export const PROTO_PATH = join(import.meta.dirname, 'proto', 'csi.proto');

/** How proto-loader presents messages: field names as in the .proto, int64 as strings, enums by name. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

interface CsiPackage {
  csi: { v1: Record<'Identity' | 'Controller' | 'Node', grpc.ServiceClientConstructor> };
}

export function loadCsi(): CsiPackage {
  // The loaded definition is untyped by nature; CsiPackage names the three services we use.
  return grpc.loadPackageDefinition(
    protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS),
  ) as unknown as CsiPackage;
}

// Service objects are plain classes; their async methods are looked up by RPC name.
type Handlers = object;

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/**
 * The longest status message sent: it travels as an HTTP/2 header, and one too large (an error that
 * quoted a hostile megabyte-long value) is a protocol error that tears down the caller's whole
 * connection, failing every other call on it.
 */
const MAX_DETAILS_CHARS = 1024;
const boundedDetails = (m: string) =>
  m.length > MAX_DETAILS_CHARS ? `${m.slice(0, MAX_DETAILS_CHARS)}…` : m;

/** How long a call may run when its caller set no deadline, or a later one (5 minutes). */
export const MAX_CALL_MS = 5 * 60_000;

/**
 * A signal that aborts when the caller cancels, when the call's deadline passes (never later than
 * `maxCallMs` from now, so no call holds a volume's lock without one), or when the server is
 * stopping: handlers pass it down to the Host, whose commands are killed when it aborts. Its
 * reason is the gRPC status the call then ends with. `done` releases the timer and listeners.
 */
export function callSignal(
  call: grpc.ServerUnaryCall<unknown, unknown>,
  stopping: AbortSignal | undefined,
  maxCallMs = MAX_CALL_MS,
): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const onCancel = () => ac.abort(aborted('cancelled', 'the call was cancelled by its caller'));
  call.on('cancelled', onCancel);
  const onStop = () => ac.abort(aborted('stopping', 'the driver is stopping; retry'));
  stopping?.addEventListener('abort', onStop, { once: true });
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  const latest = Date.now() + maxCallMs;
  const end = Number.isFinite(at) && at > 0 ? Math.min(at, latest) : latest;
  const timer = setTimeout(
    () => ac.abort(aborted('deadline', 'the call passed its deadline')),
    Math.max(0, end - Date.now()),
  );
  if (stopping?.aborted) onStop();
  return {
    signal: ac.signal,
    done: () => {
      clearTimeout(timer);
      call.off('cancelled', onCancel);
      stopping?.removeEventListener('abort', onStop);
    },
  };
}

function implement(
  def: grpc.ServiceDefinition,
  impl: Handlers,
  log: Logger | undefined,
  services: CsiServices,
): grpc.UntypedServiceImplementation {
  const { stopping, observe, maxCallMs } = services;
  const out: grpc.UntypedServiceImplementation = {};
  for (const [rpc] of Object.entries(def)) {
    const fn = (impl as Record<string, unknown>)[lowerFirst(rpc)];
    if (typeof fn !== 'function') continue; // gRPC answers UNIMPLEMENTED
    out[rpc] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const t0 = performance.now();
      const { signal, done } = callSignal(call, stopping, maxCallMs);
      const request = describeRequest(call.request);
      Promise.resolve()
        .then(() => fn.call(impl, call.request, signal))
        .finally(done)
        .then(
          (res) => {
            observe?.(rpc, 'OK', (performance.now() - t0) / 1000);
            log?.info({ ms: Math.round(performance.now() - t0), request }, rpc);
            callback(null, res);
          },
          (e: unknown) => {
            const err = callFailure(e, signal);
            observe?.(rpc, grpc.status[err.code], (performance.now() - t0) / 1000);
            const fields = { code: grpc.status[err.code], error: boundedDetails(err.message), request };
            if (err.code === grpc.status.INTERNAL) log?.error(fields, rpc);
            else log?.warn(fields, rpc);
            callback({ code: err.code, details: boundedDetails(err.message) });
          },
        );
    };
  }
  return out;
}

export interface CsiServices {
  identity: Handlers;
  controller?: Handlers | undefined;
  node?: Handlers | undefined;
  /** Aborts every call in flight (the process is stopping): their host commands are killed. */
  stopping?: AbortSignal | undefined;
  /** The longest a call may run (default MAX_CALL_MS), whatever deadline its caller set. */
  maxCallMs?: number | undefined;
  /** Hears every call's method, gRPC status name and duration (the metrics). */
  observe?: ((method: string, code: string, seconds: number) => void) | undefined;
}

/** Starts serving on `socketPath` (a stale socket file is replaced; any other file is refused). */
export async function serveCsi(
  socketPath: string,
  services: CsiServices,
  log?: Logger,
): Promise<grpc.Server> {
  const pkg = loadCsi();
  const server = new grpc.Server();
  const served = [
    ['Identity', services.identity],
    ['Controller', services.controller],
    ['Node', services.node],
  ] as const;
  for (const [name, impl] of served) {
    if (!impl) continue;
    const def = pkg.csi.v1[name].service;
    server.addService(measured(def), implement(def, impl, log, services));
  }
  await listenUnix(server, socketPath);
  return server;
}

/** Stops serving: lets calls in flight finish, but not for longer than `graceMs`. */
export function shutdownServer(server: grpc.Server, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
