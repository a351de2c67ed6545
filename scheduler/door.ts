// The extender's door: the verbs answer only kube-scheduler. `/prioritize` reserves room on a node
// for a pending claim, so whoever may call it can hold capacity; the verbs are therefore served
// over HTTPS that requires a client certificate signed by the CA the extender is given (mutual
// TLS, as KubeSchedulerConfiguration's extender `tlsConfig` offers). A connection without such a
// certificate ends in the TLS handshake, before any HTTP is read. The PEM files are re-read each
// minute, so a renewed Secret takes effect without a restart. Plain HTTP only when asked for
// explicitly (tests and benchmarks), and then the log says so at warn level on every start.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../kube/log.ts';

/** PEM material of the verbs' mutual TLS (never logged). */
export interface DoorTls {
  /** The extender's serving certificate (chain) and its private key. */
  cert: Buffer;
  key: Buffer;
  /** CA certificate(s) whose client certificates may call the verbs (kube-scheduler's). */
  clientCa: Buffer;
}

/** Paths of the door's PEM files. */
export interface DoorFiles {
  cert: string;
  key: string;
  clientCa: string;
}

/**
 * How the verbs are served: mutual TLS, or plain HTTP only when a caller asks for it by name.
 * With `files`, the PEM files are read again every `reloadMs` (default 60 s) and a changed, valid
 * set is used for new connections: a renewed Secret (cert-manager, say) needs no restart.
 */
export type Door = { tls: DoorTls; files?: DoorFiles; reloadMs?: number } | { insecureHttp: true };

/**
 * Reads the door's PEM files and checks they make a TLS context (a key that does not match its
 * certificate fails here, at start, not at kube-scheduler's first call). Errors name the flag and
 * path, never the contents.
 */
export function readDoorTls(files: DoorFiles): DoorTls {
  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`--${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const tls: DoorTls = {
    cert: read('tls-cert', files.cert),
    key: read('tls-key', files.key),
    clientCa: read('client-ca', files.clientCa),
  };
  try {
    createSecureContext({ cert: tls.cert, key: tls.key, ca: tls.clientCa });
  } catch (e) {
    throw new Error(
      `--tls-cert ${files.cert}, --tls-key ${files.key}, --client-ca ${files.clientCa}: ${(e as Error).message}`,
    );
  }
  return tls;
}

const tlsOptions = (tls: DoorTls) => ({
  cert: tls.cert,
  key: tls.key,
  ca: tls.clientCa,
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.2' as const,
});

const samePem = (a: DoorTls, b: DoorTls) =>
  a.cert.equals(b.cert) && a.key.equals(b.key) && a.clientCa.equals(b.clientCa);

/**
 * Reads `files` again and, when they changed and make a valid TLS context, puts them in place for
 * new connections (open ones keep theirs). A bad or half-written set keeps the current one and is
 * logged by path, never by content. Returns what is in place now.
 */
export function reloadDoorTls(server: HttpsServer, current: DoorTls, files: DoorFiles, log: Logger): DoorTls {
  let next: DoorTls;
  try {
    next = readDoorTls(files);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'extender TLS files unusable; keeping the certificates in use');
    return current;
  }
  if (samePem(next, current)) return current;
  server.setSecureContext(tlsOptions(next));
  log.info({ cert: files.cert, clientCa: files.clientCa }, 'extender TLS certificates reloaded');
  return next;
}

/** The server for the verbs: HTTPS requiring a client certificate from `clientCa`, or plain HTTP. */
export function verbsServer(door: Door, handler: RequestListener, log: Logger): Server {
  if ('insecureHttp' in door) {
    log.warn(
      'INSECURE: --insecure-http serves filter and prioritize over plain HTTP without authentication; ' +
        'anyone who reaches the port can reserve capacity. For tests and benchmarks only.',
    );
    return createHttpServer(handler);
  }
  const server = createHttpsServer(tlsOptions(door.tls), handler);
  const { files } = door;
  if (files) {
    let inUse = door.tls;
    const timer = setInterval(() => {
      inUse = reloadDoorTls(server, inUse, files, log);
    }, door.reloadMs ?? 60_000);
    timer.unref();
    server.once('close', () => clearInterval(timer));
  }
  // https.Server is an http.Server to every caller here (listen, close, address).
  return server as unknown as Server;
}

/** Starts `server` on host:port (0: any free port) and answers the port it got. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops a server and drops its idle keep-alive connections. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * The verbs on a unix socket in a fresh directory only this user can enter, for the extender's own
 * warm-up calls (warm-up.ts): the same HTTP and express path as kube-scheduler's calls, without a
 * client certificate and without a TCP port anyone else could reach. Closed when the warm-up ends.
 */
export async function privateSocket(
  handler: RequestListener,
): Promise<{ socketPath: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'meshstor-extender-'));
  const socketPath = join(dir, 'verbs.sock');
  const server = createHttpServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    socketPath,
    close: async () => {
      await closeServer(server);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
