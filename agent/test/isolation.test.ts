// One volume that cannot be served must not stop the others, nor the MeshStorNode heartbeat that
// peers read to decide whether this node is alive (issue 9: a live node that looks dead gets its
// volumes taken over).
import { describe, expect, it, vi } from 'vitest';
import { GiB, MiB } from '../../placement/units.ts';
import { KeyedLock } from '../../state/lock.ts';
import { MemoryVolumeStore } from '../../state/memory-store.ts';
import type { VolumeRecord } from '../../state/store.ts';
import { SimulatedHost } from '../host/simulated.ts';
import { AgentLoop } from '../loop.ts';
import { agentPass } from '../pass.ts';

const replica = (start: number) => ({
  id: 'r0',
  node: 'n1',
  drive: 'SIM0',
  extent: { start, end: start + GiB + 2 * MiB },
  state: 'InSync' as const,
});

const record = (id: string, start: number, extra: Partial<VolumeRecord> = {}): VolumeRecord => ({
  id,
  name: id,
  sizeBytes: GiB,
  replicaCount: 1,
  spread: { domain: 'zone', mode: 'none' },
  fsType: 'xfs',
  replicas: [replica(start)],
  phase: 'Active',
  ...extra,
});

/** A memory store whose reads of one volume always fail, as a broken record or API error would. */
class BrokenFor extends MemoryVolumeStore {
  readonly gets: string[] = [];
  private readonly broken: ReadonlySet<string>;
  constructor(broken: ReadonlySet<string>) {
    super();
    this.broken = broken;
  }
  override async get(id: string) {
    this.gets.push(id);
    if (this.broken.has(id)) throw new Error(`reading ${id}: the record is unreadable`);
    return super.get(id);
  }
}

async function setUp(broken: string[]) {
  const host = new SimulatedHost({
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:iso-n1',
    drives: [{ id: 'SIM0', sizeBytes: 20 * GiB }],
  });
  const store = new BrokenFor(new Set(broken));
  // Two volumes mid-relocation attached here (the relocation step reads each record again), and
  // one being deleted whose partition the same pass must still wipe.
  const moving = { toNode: 'n1', toReplica: 'r0', fromReplica: 'r9', step: 'adding' as const };
  const attachment = { node: 'n1', hostNqn: host.hostNqn };
  await store.create(record('bad', MiB, { attachment, relocation: moving }));
  await store.create(record('good', 3 * GiB, { attachment, relocation: moving }));
  await store.create(record('gone', 6 * GiB, { phase: 'Deleting' }));
  await host.createPartitions('SIM0', [
    { volumeId: 'gone', replicaId: 'r0', extent: replica(6 * GiB).extent },
  ]);
  const context = {
    nodeName: 'n1',
    host,
    store,
    listen: { address: '127.0.0.1', port: 4420 },
    locks: new KeyedLock(),
  };
  return { host, store, context };
}

describe("the agent's pass, volume by volume", () => {
  it('reports a volume whose step throws and still works on the others and on the deletions', async () => {
    const { host, store, context } = await setUp(['bad']);
    const r = await agentPass(context);
    expect(r.failures).toContainEqual({
      step: 'relocation',
      volume: 'bad',
      reason: expect.stringMatching(/unreadable/),
    });
    // the volume after the broken one was still read, and the deletion step still ran
    expect(store.gets.indexOf('good')).toBeGreaterThan(store.gets.indexOf('bad'));
    expect(r.deletions.wiped).toEqual(['n1/SIM0/gone/r0']);
    const left = (await host.listDrives()).flatMap((d) => d.partitions.map((p) => p.name));
    expect(left.filter((n) => n.includes('/gone/'))).toEqual([]);
  });
});

describe('AgentLoop', () => {
  it('publishes the heartbeat on its own timer while every volume fails and a pass hangs', async () => {
    const { host, context } = await setUp(['bad', 'good', 'gone']);
    // Every pass hangs in the host until the loop stops: the heartbeat must not wait for it.
    let hung = 0;
    vi.spyOn(host, 'listDrives').mockImplementation(
      (o) =>
        new Promise((_, reject) => {
          if (o?.signal?.aborted) return reject(new Error('aborted'));
          hung++;
          o?.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        }),
    );
    const beats: number[] = [];
    const loop = new AgentLoop({
      context,
      heartbeat: { publish: async (records) => void beats.push(records.length) },
      resyncMs: 5,
      heartbeatMs: 5,
      log: { info: () => {}, warn: () => {} } as never,
    });
    loop.start();
    await vi.waitFor(() => expect(beats.length).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
    expect(hung).toBeGreaterThan(0); // a pass was stuck in the host the whole time
    expect(beats.every((n) => n === 3)).toBe(true); // each beat saw the volumes
    await loop.stop(); // aborts the hung host call: stop returns
  });
});
