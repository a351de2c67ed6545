// Serves the CSI services on a unix socket: loads our .proto, maps each RPC to a service method,
// turns every failure into a gRPC status, and logs requests with secrets redacted.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from '../kube/log.ts';
import { toCsiError } from './errors.ts';
import { redact } from './redact.ts';
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
 * A signal that aborts when the caller cancels, when the call's deadline passes, or when the server
 * is stopping: handlers pass it down to the Host, whose commands are killed when it aborts.
 * `done` releases the deadline timer once the call has ended.
 */
export function callSignal(
  call: grpc.ServerUnaryCall<unknown, unknown>,
  stopping: AbortSignal | undefined,
): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const onCancel = () => ac.abort(new Error('the call was cancelled by its caller'));
  call.on('cancelled', onCancel);
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  const timer =
    Number.isFinite(at) && at > 0
      ? setTimeout(() => ac.abort(new Error('the call passed its deadline')), Math.max(0, at - Date.now()))
      : undefined;
  const signal = stopping ? AbortSignal.any([ac.signal, stopping]) : ac.signal;
  return {
    signal,
    done: () => {
      clearTimeout(timer);
      call.off('cancelled', onCancel);
    },
  };
}

function implement(
  def: grpc.ServiceDefinition,
  impl: Handlers,
  log: Logger | undefined,
  services: CsiServices,
): grpc.UntypedServiceImplementation {
  const { stopping, observe } = services;
  const out: grpc.UntypedServiceImplementation = {};
  for (const [rpc] of Object.entries(def)) {
    const fn = (impl as Record<string, unknown>)[lowerFirst(rpc)];
    if (typeof fn !== 'function') continue; // gRPC answers UNIMPLEMENTED
    out[rpc] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const t0 = performance.now();
      const { signal, done } = callSignal(call, stopping);
      Promise.resolve()
        .then(() => fn.call(impl, call.request, signal))
        .finally(done)
        .then(
          (res) => {
            observe?.(rpc, 'OK', (performance.now() - t0) / 1000);
            log?.info({ ms: Math.round(performance.now() - t0), request: redact(call.request) }, rpc);
            callback(null, res);
          },
          (e: unknown) => {
            const err = toCsiError(e);
            observe?.(rpc, grpc.status[err.code], (performance.now() - t0) / 1000);
            const fields = { code: grpc.status[err.code], error: err.message, request: redact(call.request) };
            if (err.code === grpc.status.INTERNAL) log?.error(fields, rpc);
            else log?.warn(fields, rpc);
            callback({ code: err.code, details: err.message });
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
  server.addService(
    pkg.csi.v1.Identity.service,
    implement(pkg.csi.v1.Identity.service, services.identity, log, services),
  );
  if (services.controller) {
    server.addService(
      pkg.csi.v1.Controller.service,
      implement(pkg.csi.v1.Controller.service, services.controller, log, services),
    );
  }
  if (services.node)
    server.addService(
      pkg.csi.v1.Node.service,
      implement(pkg.csi.v1.Node.service, services.node, log, services),
    );
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
