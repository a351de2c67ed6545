// A CSI Node client over a unix socket, for tests that play kubelet.
import * as grpc from '@grpc/grpc-js';
import { loadCsi } from '../../csi/server.ts';

export interface CsiNodeClient {
  call(method: string, request: object): Promise<unknown>;
  close(): void;
}

export function csiNodeClient(socket: string): CsiNodeClient {
  const pkg = loadCsi();
  const client = new pkg.csi.v1.Node(
    `unix:${socket}`,
    grpc.credentials.createInsecure(),
  ) as unknown as Record<string, (r: object, cb: (e: grpc.ServiceError | null, v: unknown) => void) => void>;
  return {
    call: (m, r) =>
      new Promise((resolve, reject) => client[m]?.call(client, r, (e, v) => (e ? reject(e) : resolve(v)))),
    close: () => (client as unknown as grpc.Client).close(),
  };
}
