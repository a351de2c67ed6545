// What the log keeps of a request: the volume it is about (its id, or the name CreateVolume was
// given) and its size on the wire. Never the request whole: a hostile caller's request can be
// megabytes (one fuzz run wrote 51 MB of log) and some fields are secrets.
import type * as grpc from '@grpc/grpc-js';

/** Longest id kept in a log line; a CSI id or name is at most 128 bytes anyway. */
const ID_CHARS = 128;

/** Wire sizes of the requests this process decoded, by the decoded message. */
const wireBytes = new WeakMap<object, number>();

/** The service definition with each request's wire size remembered for `describeRequest`. */
export function measured(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(def).map(([rpc, method]) => [
      rpc,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          const message = method.requestDeserialize(bytes);
          if (message !== null && typeof message === 'object') wireBytes.set(message, bytes.length);
          return message;
        },
      },
    ]),
  );
}

export interface RequestSummary {
  volume?: string;
  bytes?: number;
}

/** The volume a request names (cut to ID_CHARS) and its wire size, when known. */
export function describeRequest(request: unknown): RequestSummary {
  if (request === null || typeof request !== 'object') return {};
  const r = request as Record<string, unknown>;
  const id = [r.volume_id, r.name].find((v): v is string => typeof v === 'string' && v !== '');
  const out: RequestSummary = {};
  if (id !== undefined) out.volume = id.length > ID_CHARS ? `${id.slice(0, ID_CHARS)}…` : id;
  const bytes = wireBytes.get(request);
  if (bytes !== undefined) out.bytes = bytes;
  return out;
}
