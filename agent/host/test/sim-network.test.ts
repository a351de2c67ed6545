// SimulatedHosts over NetworkSimFabric: the Host contract with every host on a fabric of its own
// (real TCP on 127.0.0.1), then a target in a separate process: RAID1 over its namespace, refusals,
// unexport and kill -9 as the initiator sees them.
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { GiB, MiB } from '../../../placement/index.ts';
import { ConnectRefusedError, DeviceInUseError, InvalidArgumentError } from '../errors.ts';
import { generateDhchapSecret } from '../names.ts';
import { NetworkSimFabric } from '../sim-network.ts';
import { SimulatedHost } from '../simulated.ts';
import type { ArrayInfo, Drive, ExportInfo, ListenAddress, Owner } from '../types.ts';
import { CONTRACT, type ContractEnv } from './contract.ts';

const NQN_A = 'nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a';
const NQN_B = 'nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-0000-4000-8000-00000000000b';
const NQN_E = 'nqn.2014-08.org.nvmexpress:uuid:0e0e0e0e-0000-4000-8000-00000000000e';
const PEER = fileURLToPath(new URL('./sim-peer.ts', import.meta.url));
const R1: Owner = { volumeId: 'vol-1', replicaId: 'r1' };
const R2: Owner = { volumeId: 'vol-1', replicaId: 'r2' };
const SIZE = 400 * MiB;

const fabrics: NetworkSimFabric[] = [];
const peers: ChildProcess[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.kill('SIGKILL');
  await Promise.all(fabrics.splice(0).map((f) => f.close()));
});

function netHost(hostNqn: string, drives: { id: string; sizeBytes: number }[]): SimulatedHost {
  const fabric = new NetworkSimFabric();
  fabrics.push(fabric);
  return new SimulatedHost({ hostNqn, drives, fabric });
}

/** A port nothing listens on right now (the kernel's pick, released again). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function netEnv(): Promise<ContractEnv> {
  const a = netHost(NQN_A, [{ id: 'SIM-A', sizeBytes: GiB }]);
  return {
    a,
    b: netHost(NQN_B, [{ id: 'SIM-B', sizeBytes: GiB }]),
    foreign: netHost(NQN_E, []),
    driveA: 'SIM-A',
    driveB: 'SIM-B',
    listenB: { address: '127.0.0.1', port: await freePort() },
    mountDir: '/mnt/contract',
    canWrite: async (path) => a.canWrite(path),
    cutMkfsShort: (devicePath) => a.cutMkfsShort(devicePath),
    forgetPartitionInKernel: async () => {},
  };
}

describe('Host contract on SimulatedHosts over NetworkSimFabric (TCP)', () => {
  for (const c of CONTRACT) it(c.name, async () => c.run(await netEnv()));
});

/** A networked SimulatedHost in a child process, driven by Host method name (sim-peer.ts). */
interface Peer {
  call<T>(method: string, ...args: unknown[]): Promise<T>;
  child: ChildProcess;
}

interface PeerAnswer {
  ready?: boolean;
  id?: number;
  result?: unknown;
  error?: { name: string; message: string };
}

async function startPeer(hostNqn: string, driveId: string): Promise<Peer> {
  const child = spawn(process.execPath, [PEER, hostNqn, driveId], { stdio: ['pipe', 'pipe', 'inherit'] });
  peers.push(child);
  const waiting = new Map<
    number,
    (m: { result?: unknown; error?: { name: string; message: string } }) => void
  >();
  let ready: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    ready = resolve;
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const m = JSON.parse(line) as PeerAnswer;
    if (m.ready) return ready();
    if (m.id !== undefined) waiting.get(m.id)?.(m);
  });
  await started;
  let seq = 0;
  return {
    child,
    call<T>(method: string, ...args: unknown[]) {
      const id = ++seq;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, (m) => {
          if (m.error) reject(Object.assign(new Error(m.error.message), { name: m.error.name }));
          else resolve(m.result as T);
        });
        child.stdin?.write(`${JSON.stringify({ id, method, args })}\n`);
      });
    },
  };
}

/** The peer carves R2 on its drive and exports it to `hostNqn` at `listen`. */
async function peerExport(peer: Peer, listen: ListenAddress, hostNqn: string, secret?: string) {
  const [d] = await peer.call<Drive[]>('listDrives');
  const f = d?.free[0];
  if (!d || !f) throw new Error('the peer has no free space');
  const [p] = await peer.call<{ path: string }[]>('createPartitions', d.id, [
    { ...R2, extent: { start: f.start, end: f.start + SIZE } },
  ]);
  if (!p) throw new Error('no partition on the peer');
  const ex = await peer.call<ExportInfo>('exportReplica', { ...R2, devicePath: p.path, listen });
  await peer.call('grantHost', ex.nqn, { hostNqn, dhchapSecret: secret });
  return { nqn: ex.nqn, path: p.path, driveId: d.id };
}

/** Host A with a local R1 partition, connected to the peer's export. */
async function initiator(listen: ListenAddress, nqn: string, secret?: string) {
  const a = netHost(NQN_A, [{ id: 'SIM-A', sizeBytes: GiB }]);
  const [d] = await a.listDrives();
  const f = d?.free[0];
  if (!f) throw new Error('no free space on A');
  const [p] = await a.createPartitions('SIM-A', [{ ...R1, extent: { start: f.start, end: f.start + SIZE } }]);
  if (!p) throw new Error('no partition on A');
  const dev = await a.connect({ subsystemNqn: nqn, target: listen, dhchapSecret: secret, ctrlLossTmoSec: 5 });
  return { a, local: p.path, dev };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const memberState = (arr: ArrayInfo | undefined, dev: string) =>
  arr?.members.find((m) => m.devicePath === dev)?.state;

describe('a SimulatedHost target in another process', () => {
  it('carries a RAID1 leg whose superblock reaches the target; kill -9 of the target faults it', async () => {
    const peer = await startPeer(NQN_B, 'SIM-B');
    const listen = { address: '127.0.0.1', port: await freePort() };
    const ex = await peerExport(peer, listen, NQN_A);
    const { a, local, dev } = await initiator(listen, ex.nqn);
    const arr = await a.createArray({ volumeId: R1.volumeId, devices: [local, dev] });
    await a.makeFilesystem(arr.devicePath);
    await a.mount(arr.devicePath, '/mnt/net');
    // The peer reads its own partition: it carries the superblock A wrote over TCP.
    const seen = await peer.call<ArrayInfo>('assembleArray', { volumeId: R1.volumeId, devices: [ex.path] });
    expect(seen.uuid).toBe(arr.uuid);
    expect(seen.name).toBe(arr.name);
    await peer.call('stopArray', R1.volumeId);
    await expect(peer.call('wipePartition', ex.driveId, R2)).rejects.toMatchObject({
      name: DeviceInUseError.name,
    });

    peer.child.kill('SIGKILL');
    const after = await until('the remote member goes faulty', async () => {
      const got = await a.getArray(R1.volumeId);
      return memberState(got, dev) === 'faulty' ? got : undefined;
    });
    expect(after.degraded).toBe(true);
    expect(memberState(after, local)).toBe('in_sync');
    expect(await a.findDeviceByNqn(ex.nqn)).toBeUndefined();
    expect((await a.filesystemUsage('/mnt/net')).sizeBytes).toBe(arr.sizeBytes);
  });

  it('refuses a host NQN not on the allow-list, a wrong secret and a port nobody listens on', async () => {
    const peer = await startPeer(NQN_B, 'SIM-B');
    const listen = { address: '127.0.0.1', port: await freePort() };
    const secret = generateDhchapSecret();
    const ex = await peerExport(peer, listen, NQN_A, secret);
    const spec = { subsystemNqn: ex.nqn, target: listen, dhchapSecret: secret, ctrlLossTmoSec: 5 };
    const stranger = netHost(NQN_E, []);
    await expect(stranger.connect(spec)).rejects.toThrow(
      new ConnectRefusedError(`${ex.nqn} does not allow host ${NQN_E}`),
    );
    const a = netHost(NQN_A, []);
    await expect(a.connect({ ...spec, dhchapSecret: generateDhchapSecret() })).rejects.toThrow(
      new ConnectRefusedError(`DH-HMAC-CHAP authentication of ${NQN_A} to ${ex.nqn} failed`),
    );
    const nowhere = { address: '127.0.0.1', port: await freePort() };
    await expect(a.connect({ ...spec, target: nowhere })).rejects.toThrow(
      new ConnectRefusedError(`no subsystem ${ex.nqn} at 127.0.0.1:${nowhere.port}`),
    );
    expect(await a.findDeviceByNqn(ex.nqn)).toBeUndefined();
    expect(await a.connect(spec)).toMatch(/^\/dev\/nvme\d+n1$/);
  });

  it('refuses an export at an address another process listens on', async () => {
    const peer = await startPeer(NQN_B, 'SIM-B');
    const listen = { address: '127.0.0.1', port: await freePort() };
    await peerExport(peer, listen, NQN_A);
    const a = netHost(NQN_A, [{ id: 'SIM-A', sizeBytes: GiB }]);
    const [p] = await a.createPartitions('SIM-A', [{ ...R1, extent: { start: MiB, end: MiB + SIZE } }]);
    if (!p) throw new Error('no partition on A');
    await expect(a.exportReplica({ ...R1, devicePath: p.path, listen })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(await a.listExports()).toEqual([]);
  });

  it('an unexport in the target process drops the controller before it returns', async () => {
    const peer = await startPeer(NQN_B, 'SIM-B');
    const listen = { address: '127.0.0.1', port: await freePort() };
    const ex = await peerExport(peer, listen, NQN_A);
    const { a, local, dev } = await initiator(listen, ex.nqn);
    await a.createArray({ volumeId: R1.volumeId, devices: [local, dev] });
    await peer.call('unexport', ex.nqn);
    expect(await a.findDeviceByNqn(ex.nqn)).toBeUndefined();
    expect(memberState(await a.getArray(R1.volumeId), dev)).toBe('faulty');
    await expect(
      a.connect({ subsystemNqn: ex.nqn, target: listen, ctrlLossTmoSec: 5 }),
    ).rejects.toBeInstanceOf(ConnectRefusedError);
    // No longer exported: the target may wipe it now.
    await peer.call('wipePartition', ex.driveId, R2);
  });

  it('a revoke blocks new connects only: the connected controller keeps reading and writing', async () => {
    const peer = await startPeer(NQN_B, 'SIM-B');
    const listen = { address: '127.0.0.1', port: await freePort() };
    const ex = await peerExport(peer, listen, NQN_A);
    const { a, local, dev } = await initiator(listen, ex.nqn);
    await peer.call('revokeHost', ex.nqn, NQN_A);
    const arr = await a.createArray({ volumeId: R1.volumeId, devices: [local, dev] });
    expect(memberState(arr, dev)).toBe('in_sync');
    await a.stopArray(R1.volumeId);
    await a.disconnect(ex.nqn);
    await expect(
      a.connect({ subsystemNqn: ex.nqn, target: listen, ctrlLossTmoSec: 5 }),
    ).rejects.toBeInstanceOf(ConnectRefusedError);
  });
});
