// NetworkSimFabric: the simulated NVMe/TCP network over real TCP, so SimulatedHosts in different
// processes (one `meshstor agent` per node) reach each other the way nvmet-tcp hosts do.
//
// Protocol: one TCP connection per controller, newline-delimited JSON (sim-wire.ts). The initiator
// opens with `connect` (subsystem NQN, host NQN, DH-HMAC-CHAP secret); the target answers `refused`
// (the ConnectRefusedError message) or `connected` with the namespace's metadata. Then the initiator
// sends `read` and `write` (md superblock, fs signature), each answered by `ok` with the metadata
// after it. When the subsystem is unexported the target sends `gone` and waits (bounded) for the
// initiator to close; a closed connection is a lost controller either way (a killed target included).
import net from 'node:net';
import { ConnectRefusedError, HostError } from './errors.ts';
import {
  addressTaken,
  type Fabric,
  listenKey,
  noSubsystem,
  Sessions,
  type SimNamespace,
  type SimTarget,
  type Store,
} from './sim-fabric.ts';
import { fromWire, readMessages, reply, request, send, toWire, type WireStore } from './sim-wire.ts';
import type { ConnectSpec, ListenAddress } from './types.ts';

/** How long a connect handshake or a metadata request may take before the controller counts as lost. */
const REQUEST_MS = 10_000;
/** How long unexport waits for an initiator to acknowledge `gone` by closing. */
const GONE_MS = 2_000;

interface Listener {
  target: SimTarget;
  server: net.Server;
  ready: Promise<void>;
}

export class NetworkSimFabric implements Fabric {
  private readonly listeners = new Map<string, Listener>();
  private readonly sessions = new Sessions<net.Socket>();
  /** Every socket of this fabric, both sides, for close(). */
  private readonly sockets = new Set<net.Socket>();
  /** Sessions told `gone`: their requests are no longer served while they hang up. */
  private readonly dropped = new WeakSet<net.Socket>();

  // --- target side -----------------------------------------------------------------------------

  async listen(target: SimTarget, at: ListenAddress): Promise<void> {
    const k = listenKey(at);
    const have = this.listeners.get(k);
    if (have) {
      if (have.target !== target) throw addressTaken(at);
      return have.ready;
    }
    const server = net.createServer((sock) => this.serve(target, at, sock));
    const ready = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port, at.address, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e: NodeJS.ErrnoException) => {
      this.listeners.delete(k);
      throw addressTaken(at, `not ours to listen on (${e.code ?? e.message})`);
    });
    this.listeners.set(k, { target, server, ready });
    return ready;
  }

  /** Closes the port once its last subsystem is gone, as removing an nvmet port does. */
  unlisten(target: SimTarget, at: ListenAddress): void {
    const l = this.listeners.get(listenKey(at));
    if (l?.target !== target) return;
    this.listeners.delete(listenKey(at));
    l.server.close();
  }

  async dropSubsystem(target: SimTarget, subsystemNqn: string): Promise<void> {
    const socks = this.sessions.take(target, subsystemNqn);
    for (const s of socks) this.dropped.add(s);
    await Promise.all(socks.map(goodbye));
  }

  private serve(target: SimTarget, at: ListenAddress, sock: net.Socket): void {
    this.track(sock);
    let store: Store | undefined;
    readMessages(sock, request, (m) => {
      if (m.op === 'connect') {
        if (store) return sock.destroy();
        try {
          store = target.admit(at, m.subsystemNqn, m.hostNqn, {
            dhchapSecret: m.dhchapSecret ?? undefined,
            dhchapCtrlSecret: m.dhchapCtrlSecret ?? undefined,
          });
        } catch (e) {
          send(sock, { op: 'refused', error: (e as Error).message });
          sock.end();
          return;
        }
        const live = this.sessions.of(target, m.subsystemNqn);
        live.add(sock);
        sock.once('close', () => live.delete(sock));
        send(sock, { op: 'connected', store: toWire(store) });
        return;
      }
      if (!store) return sock.destroy();
      if (this.dropped.has(sock)) return;
      if (m.op === 'write') {
        store.md = m.md ?? undefined;
        store.fs = m.fs ?? undefined;
      }
      send(sock, { op: 'ok', id: m.id, store: toWire(store) });
    });
  }

  // --- initiator side --------------------------------------------------------------------------

  async connect(hostNqn: string, spec: ConnectSpec, lost: () => void): Promise<SimNamespace> {
    const sock = net.connect({ host: spec.target.address, port: spec.target.port, noDelay: true });
    this.track(sock);
    const ns = new RemoteNamespace(sock, spec, lost);
    send(sock, {
      op: 'connect',
      subsystemNqn: spec.subsystemNqn,
      hostNqn,
      dhchapSecret: spec.dhchapSecret ?? null,
      dhchapCtrlSecret: spec.dhchapCtrlSecret ?? null,
    });
    await ns.opened;
    // `gone` may have come in the same packet as `connected`: the subsystem went meanwhile.
    if (ns.ended) throw noSubsystem(spec.subsystemNqn, spec.target);
    return ns;
  }

  /** Closes every listener and connection of this fabric (initiators of its targets see them lost). */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(
      [...this.listeners.values()].map(
        (l) => new Promise<void>((resolve) => l.server.close(() => resolve())),
      ),
    );
    this.listeners.clear();
  }

  private track(sock: net.Socket): void {
    this.sockets.add(sock);
    // A peer that dies resets the connection; the 'close' handlers do the cleanup, so the error
    // itself needs no handling (unhandled, it would crash the process).
    sock.on('error', () => {});
    sock.once('close', () => this.sockets.delete(sock));
  }
}

/** Tells an initiator its subsystem is gone and waits (bounded) for it to hang up. */
function goodbye(sock: net.Socket): Promise<void> {
  if (sock.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => sock.destroy(), GONE_MS);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    send(sock, { op: 'gone' });
  });
}

/** The initiator's end of one controller: the handshake, then metadata requests. */
class RemoteNamespace implements SimNamespace {
  readonly store: Store = { sizeBytes: 0 };
  /** Settles with the handshake: resolved when connected, ConnectRefusedError otherwise. */
  readonly opened: Promise<void>;
  private readonly sock: net.Socket;
  private readonly nqn: string;
  private readonly pending = new Map<
    number,
    { resolve: (w: WireStore) => void; reject: (e: Error) => void }
  >();
  private seq = 0;
  private connected = false;
  private over = false;

  get ended(): boolean {
    return this.over;
  }

  constructor(sock: net.Socket, spec: ConnectSpec, lost: () => void) {
    this.sock = sock;
    this.nqn = spec.subsystemNqn;
    this.opened = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => sock.destroy(), REQUEST_MS);
      // Until connected, any end of the connection is a refusal (nothing listens, or it hung up).
      sock.once('close', () => {
        clearTimeout(timer);
        if (!this.connected) reject(noSubsystem(spec.subsystemNqn, spec.target));
      });
      readMessages(sock, reply, (m) => {
        if (!this.connected) {
          clearTimeout(timer);
          if (m.op === 'connected') {
            this.connected = true;
            Object.assign(this.store, fromWire(m.store));
            return resolve();
          }
          reject(new ConnectRefusedError(m.op === 'refused' ? m.error : `${m.op} in answer to connect`));
          return sock.destroy();
        }
        if (m.op === 'gone') return this.end(lost);
        if (m.op !== 'ok') return sock.destroy();
        this.pending.get(m.id)?.resolve(m.store);
        this.pending.delete(m.id);
      });
    });
    sock.once('close', () => {
      if (this.connected) this.end(lost);
    });
  }

  async pull(): Promise<void> {
    Object.assign(this.store, fromWire(await this.request('read')));
  }

  async push(): Promise<void> {
    await this.request('write');
  }

  close(): void {
    this.end(() => {});
  }

  /** The controller is over: lost (unless we closed it), pending requests fail, the socket goes. */
  private end(lost: () => void): void {
    if (this.over) return;
    this.over = true;
    lost();
    for (const p of this.pending.values()) p.reject(this.lostError());
    this.pending.clear();
    this.sock.destroy();
  }

  private request(op: 'read' | 'write'): Promise<WireStore> {
    if (this.over) return Promise.reject(this.lostError());
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HostError(`${this.nqn}: no answer to ${op} within ${REQUEST_MS} ms`));
      }, REQUEST_MS);
      this.pending.set(id, {
        resolve: (w) => {
          clearTimeout(timer);
          resolve(w);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      if (op === 'read') send(this.sock, { op, id });
      else send(this.sock, { op, id, md: this.store.md ?? null, fs: this.store.fs ?? null });
    });
  }

  private lostError(): HostError {
    return new HostError(`the controller of ${this.nqn} is lost`);
  }
}
