// Unix socket files of the gRPC servers (the CSI socket, kubelet's registration socket): a stale
// socket left by a previous run is replaced, anything else at that path is never touched.
import { lstatSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';

/** Binds a gRPC server (insecure: a unix socket, guarded by file permissions) at `socketPath`, replacing a stale socket. */
export async function listenUnix(server: grpc.Server, socketPath: string): Promise<void> {
  clearStaleSocket(socketPath);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

/** Makes `socketPath` free to bind: a stale socket is removed, any other file refused, a missing directory named. */
function clearStaleSocket(socketPath: string): void {
  removeSocket(socketPath);
  lstatSync(dirname(socketPath)); // a clear ENOENT for a missing directory
}

/** Removes `socketPath` if it is a socket (true when one was removed); refuses any other kind of file. */
export function removeSocket(socketPath: string): boolean {
  try {
    if (!lstatSync(socketPath).isSocket())
      throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
    unlinkSync(socketPath);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return false;
  }
}
