// The liveness check of a process serving CSI: Identity.Probe over its own socket, the way kubelet's
// livenessprobe sidecar did it, so a server that stopped answering (or never bound) is caught, not
// only a process that died.
import * as grpc from '@grpc/grpc-js';
import { loadCsi } from './server.ts';

let csi: ReturnType<typeof loadCsi> | undefined;

/**
 * Undefined when the driver on `socket` answers Probe within `timeoutMs`, ready or not; otherwise
 * why not. A driver that answers "not ready" is alive (its caches are syncing, or the apiserver is
 * slow to answer it): a liveness restart would only start that work over, and on a loaded node it
 * kept the controller from ever becoming ready. Readiness is Probe's own answer, which the sidecars
 * read themselves.
 */
export async function probeCsiSocket(socket: string, timeoutMs = 8_000): Promise<string | undefined> {
  csi ??= loadCsi();
  const client = new csi.csi.v1.Identity(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    await new Promise<unknown>((resolve, reject) =>
      (
        client as unknown as {
          Probe: (r: object, o: grpc.CallOptions, cb: (e: Error | null, v: never) => void) => void;
        }
      ).Probe({}, { deadline: Date.now() + timeoutMs }, (e, v) => (e ? reject(e) : resolve(v))),
    );
    return undefined;
  } catch (e) {
    return `the CSI driver does not answer Probe on ${socket}: ${(e as Error).message}`;
  } finally {
    client.close();
  }
}
