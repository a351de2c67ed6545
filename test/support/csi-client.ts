// A CSI client over a unix socket, for tests that play kubelet or the external-provisioner.
import * as grpc from '@grpc/grpc-js';
import { loadCsi } from '../../csi/server.ts';

export interface CsiClient {
  call(method: string, request: object): Promise<unknown>;
  close(): void;
}

/** A client of one CSI service on `socket`; `call` takes the RPC's name (NodeStageVolume, ...). */
export function csiClient(socket: string, service: 'Identity' | 'Controller' | 'Node'): CsiClient {
  const pkg = loadCsi();
  const client = new pkg.csi.v1[service](
    `unix:${socket}`,
    grpc.credentials.createInsecure(),
  ) as unknown as Record<string, (r: object, cb: (e: grpc.ServiceError | null, v: unknown) => void) => void>;
  return {
    call: (m, r) =>
      new Promise((resolve, reject) => client[m]?.call(client, r, (e, v) => (e ? reject(e) : resolve(v)))),
    close: () => (client as unknown as grpc.Client).close(),
  };
}

/** A Node service client (what kubelet calls). */
export type CsiNodeClient = CsiClient;

export function csiNodeClient(socket: string): CsiNodeClient {
  return csiClient(socket, 'Node');
}
