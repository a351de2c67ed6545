// The wire format of NetworkSimFabric: newline-delimited JSON, one message per line, checked on
// receipt (a peer that sends anything else is hung up on).
import type net from 'node:net';
import { z } from 'zod';
import type { Store } from './sim-fabric.ts';

const wireStore = z.object({
  sizeBytes: z.number(),
  md: z.object({ uuid: z.string(), name: z.string(), events: z.number().optional() }).nullable(),
  fs: z.string().nullable(),
});
export type WireStore = z.infer<typeof wireStore>;

/** Initiator to target. */
export const request = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('connect'),
    subsystemNqn: z.string(),
    hostNqn: z.string(),
    dhchapSecret: z.string().nullable(),
    dhchapCtrlSecret: z.string().nullable(),
  }),
  z.object({ op: z.literal('read'), id: z.number() }),
  z.object({ op: z.literal('write'), id: z.number(), md: wireStore.shape.md, fs: wireStore.shape.fs }),
]);
export type Request = z.infer<typeof request>;

/** Target to initiator. */
export const reply = z.discriminatedUnion('op', [
  z.object({ op: z.literal('refused'), error: z.string() }),
  z.object({ op: z.literal('connected'), store: wireStore }),
  z.object({ op: z.literal('ok'), id: z.number(), store: wireStore }),
  z.object({ op: z.literal('gone') }),
]);
export type Reply = z.infer<typeof reply>;

/** A line longer than this is not ours: the peer is hung up on. */
const MAX_LINE = 64 * 1024;

export function send(sock: net.Socket, m: Request | Reply): void {
  if (!sock.destroyed) sock.write(`${JSON.stringify(m)}\n`);
}

/** Calls `handle` with each valid message, in order; destroys the socket on anything else. */
export function readMessages<T>(sock: net.Socket, schema: z.ZodType<T>, handle: (m: T) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0 && !sock.destroyed; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = schema.safeParse(parseJson(line));
      if (!m.success) return sock.destroy();
      handle(m.data);
    }
    if (buf.length > MAX_LINE) sock.destroy();
  });
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

export const toWire = (s: Store): WireStore => ({
  sizeBytes: s.sizeBytes,
  md: s.md ?? null,
  fs: s.fs ?? null,
});

export const fromWire = (w: WireStore): Store => ({
  sizeBytes: w.sizeBytes,
  md: w.md ?? undefined,
  fs: w.fs ?? undefined,
});
