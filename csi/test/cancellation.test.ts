// A CSI call whose deadline passes, or an agent that stops, leaves no host command running: the
// call's signal reaches exec, which kills the command's process group.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { exec } from '../../agent/host/exec.ts';
import { SimulatedHost } from '../../agent/host/simulated.ts';
import type { ArrayInfo, OpOptions } from '../../agent/host/types.ts';
import { AgentLoop } from '../../agent/loop.ts';
import { GiB, MiB } from '../../placement/units.ts';
import { KeyedLock } from '../../state/lock.ts';
import { MemoryVolumeStore } from '../../state/memory-store.ts';
import { IdentityService } from '../identity.ts';
import { NodeService } from '../node.ts';
import { loadCsi, serveCsi } from '../server.ts';
import { mountCap } from './requests.ts';

/** Processes whose command line holds `marker` (a sleep with a unique duration). */
function running(marker: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('sleep') && argv.includes(marker)) pids.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** A SimulatedHost whose array lookup runs a real, long command through exec (as LinuxHost's mdadm does). */
class SlowHost extends SimulatedHost {
  readonly marker: string;
  constructor(marker: string) {
    super({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:cancel-n1',
      drives: [{ id: 'SIM0', sizeBytes: 8 * GiB }],
    });
    this.marker = marker;
  }
  override async getArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo | undefined> {
    await exec('sleep', [this.marker], { signal: o?.signal, timeoutMs: 120_000 });
    return super.getArray(volumeId, o);
  }
}

async function withVolume() {
  const store = new MemoryVolumeStore();
  await store.create({
    id: 'v1',
    name: 'v1',
    sizeBytes: GiB,
    replicaCount: 1,
    spread: { domain: 'zone', mode: 'none' },
    fsType: 'xfs',
    replicas: [
      {
        id: 'r0',
        node: 'n1',
        drive: 'SIM0',
        extent: { start: MiB, end: MiB + GiB + 2 * MiB },
        state: 'Pending',
      },
    ],
    phase: 'Active',
    attachment: { node: 'n1', hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:cancel-n1' },
  });
  return store;
}

describe('cancellation', () => {
  it('a NodeStage whose deadline passes kills the host command it started', async () => {
    const marker = `97.${process.pid}1`;
    const host = new SlowHost(marker);
    const store = await withVolume();
    const socket = join(mkdtempSync(join(tmpdir(), 'meshstor-cancel-')), 'csi.sock');
    const server = await serveCsi(socket, {
      identity: new IdentityService({ controller: false, ready: () => true }),
      node: new NodeService({
        // these tests play kubelet at paths of their own: any absolute path is under '/'
        kubeletDir: '/',
        nodeName: 'n1',
        host,
        store,
        mountPoints: { ensure: async () => {}, remove: async () => {} },
      }),
    });
    const client = new (loadCsi().csi.v1.Node)(
      `unix:${socket}`,
      grpc.credentials.createInsecure(),
    ) as unknown as {
      NodeStageVolume: (r: object, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void;
      close: () => void;
    };
    const call = new Promise<grpc.ServiceError | null>((resolve) =>
      client.NodeStageVolume(
        {
          volume_id: 'v1',
          staging_target_path: '/stage/v1',
          volume_capability: mountCap,
          volume_context: {},
        },
        { deadline: Date.now() + 1500 },
        resolve,
      ),
    );
    await vi.waitFor(() => expect(running(marker).length).toBe(1), { timeout: 10_000 });
    expect((await call)?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await vi.waitFor(() => expect(running(marker)).toEqual([]), { timeout: 10_000 });
    client.close();
    server.forceShutdown();
  });

  it("stopping the agent's loop kills the host command its pass is running, and tells no one it failed", async () => {
    const marker = `98.${process.pid}1`;
    const host = new SlowHost(marker);
    const store = await withVolume();
    const warned: string[] = [];
    const events: string[] = [];
    const abandoned: unknown[] = [];
    const loop = new AgentLoop({
      context: {
        nodeName: 'n1',
        host,
        store,
        listen: { address: '127.0.0.1', port: 4420 },
        locks: new KeyedLock(),
      },
      resyncMs: 5,
      heartbeatMs: 60_000,
      log: {
        info: (o: unknown, msg: string) => msg === 'volume step abandoned' && abandoned.push(o),
        warn: (_: unknown, msg: string) => warned.push(msg),
      } as never,
      warnings: { warn: async (_, reason) => events.push(reason) },
    });
    loop.start();
    await vi.waitFor(() => expect(running(marker).length).toBe(1), { timeout: 10_000 });
    await loop.stop();
    expect(running(marker)).toEqual([]);
    // a step cut short by the stop is no failure: no warning in the log, no Warning Event on the volume
    expect(warned).toEqual([]);
    expect(events).toEqual([]);
    expect(abandoned).toEqual([expect.objectContaining({ volume: 'v1' })]);
  });
});
