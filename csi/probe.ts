// The liveness check of a process serving CSI: Identity.Probe over its own socket, the way kubelet's
// livenessprobe sidecar did it, so a server that stopped answering (or never bound) is caught, not
// only a process that died.
import * as grpc from '@grpc/grpc-js';
import { loadCsi } from './server.ts';

let csi: ReturnType<typeof loadCsi> | undefined;

/** Undefined when the driver on `socket` answers Probe ready within `timeoutMs`; otherwise why not. */
export async function probeCsiSocket(socket: string, timeoutMs = 3_000): Promise<string | undefined> {
  csi ??= loadCsi();
  const client = new csi.csi.v1.Identity(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    const res = await new Promise<{ ready?: { value?: boolean } | null }>((resolve, reject) =>
      (
        client as unknown as {
          Probe: (r: object, o: grpc.CallOptions, cb: (e: Error | null, v: never) => void) => void;
        }
      ).Probe({}, { deadline: Date.now() + timeoutMs }, (e, v) => (e ? reject(e) : resolve(v))),
    );
    // CSI: an absent ready field means ready
    return res.ready?.value === false ? 'the CSI driver answers Probe: not ready' : undefined;
  } catch (e) {
    return `the CSI driver does not answer Probe on ${socket}: ${(e as Error).message}`;
  } finally {
    client.close();
  }
}
