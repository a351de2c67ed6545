// Self-fencing in the agent (ADR 0006) on SimulatedHost: a lapsed right fences every array running
// here, a pass fences an array whose volume the record attaches elsewhere, staging needs the right,
// and a takeover waits for the old holder's right to end.
import { describe, expect, it, vi } from 'vitest';
import { GiB, MiB } from '../../placement/units.ts';
import { KeyedLock } from '../../state/lock.ts';
import { MemoryVolumeStore } from '../../state/memory-store.ts';
import { updateRecord, type VolumeRecord } from '../../state/store.ts';
import { VolumeRefusal } from '../errors.ts';
import { fenceAllArrays } from '../fence.ts';
import { SimulatedHost } from '../host/simulated.ts';
import { NodeVolumes } from '../node-volumes.ts';
import { agentPass } from '../pass.ts';
import { type Clock, MemoryLeases, RightWatch, WRITE_RIGHT, WriteRight } from '../write-right.ts';

const record = (id: string, start: number, extra: Partial<VolumeRecord> = {}): VolumeRecord => ({
  id,
  name: id,
  sizeBytes: GiB,
  replicaCount: 1,
  spread: { domain: 'zone', mode: 'none' },
  fsType: 'xfs',
  replicas: [
    { id: 'r0', node: 'n1', drive: 'SIM0', extent: { start, end: start + GiB + 2 * MiB }, state: 'Pending' },
  ],
  phase: 'Active',
  ...extra,
});

async function setUp() {
  const host = new SimulatedHost({
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:fence-n1',
    drives: [{ id: 'SIM0', sizeBytes: 20 * GiB }],
  });
  const store = new MemoryVolumeStore();
  const leases = new MemoryLeases();
  const clock: Clock & { t: number } = { t: 0, now: () => clock.t };
  const right = new WriteRight({
    node: 'n1',
    api: leases,
    clock,
    onLapse: async () => void (await fenceAllArrays({ host, store })),
  });
  const locks = new KeyedLock();
  const volumes = new NodeVolumes({
    nodeName: 'n1',
    host,
    store,
    locks,
    mountPoints: { ensure: async () => {}, remove: async () => {} },
    right,
    rightWatch: new RightWatch(leases, clock),
  });
  const stage = (volumeId: string) =>
    volumes.stage({ volumeId, stagingPath: `/stage/${volumeId}`, access: 'block' });
  const pass = () =>
    agentPass({ nodeName: 'n1', host, store, locks, listen: { address: '10.0.0.1', port: 4420 } });
  return { host, store, leases, clock, right, stage, pass };
}

describe('self-fencing in the agent', () => {
  it('refuses to stage without the right to write, and stages once it holds it', async () => {
    const s = await setUp();
    await s.store.create(record('v1', MiB));
    await expect(s.stage('v1')).rejects.toSatisfy(
      (e) => e instanceof VolumeRefusal && e.kind === 'unavailable' && /no right to write/.test(e.message),
    );
    expect(await s.host.getArray('v1')).toBeUndefined();
    await s.right.tick();
    await s.right.settle();
    await s.stage('v1');
    expect(await s.host.canWrite((await s.host.getArray('v1'))?.devicePath ?? '')).toBe(true);
  });

  it('fences every array running here when the right lapses: writes fail, the arrays stay assembled', async () => {
    const s = await setUp();
    await s.store.create(record('v1', MiB));
    await s.store.create(record('v2', 3 * GiB));
    await s.store.create(record('v3', 6 * GiB)); // not staged here: nothing to fence
    await s.right.tick();
    await s.right.settle();
    await s.stage('v1');
    await s.stage('v2');
    s.leases.cut.add('n1');
    for (let i = 0; i < 60 && s.right.holds(); i++) {
      s.clock.t += 1_000;
      await s.right.tick();
      await s.right.settle();
    }
    expect(s.clock.t).toBe(WRITE_RIGHT.leaseMs - WRITE_RIGHT.fenceGuardMs);
    for (const id of ['v1', 'v2']) {
      const a = await s.host.getArray(id);
      expect(a?.members).toHaveLength(1); // still assembled: md keeps the last member, broken
      expect(await s.host.canWrite(a?.devicePath ?? '')).toBe(false);
    }
    expect(await s.host.getArray('v3')).toBeUndefined();
  });

  it("cuts every array's local legs before md is told of any: a slow md step delays no other array's cut", async () => {
    const s = await setUp();
    await s.store.create(record('v1', MiB));
    await s.store.create(record('v2', 3 * GiB));
    await s.store.create(record('v3', 6 * GiB)); // not staged here: nothing to cut or fence
    await s.right.tick();
    await s.right.settle();
    await s.stage('v1');
    await s.stage('v2');
    const calls: string[] = [];
    let releaseMd: () => void = () => {};
    const mdStuck = new Promise<void>((resolve) => {
      releaseMd = resolve;
    });
    // md's step of v1 waits (as mdadm --fail does behind a stalled remote leg) until released
    const host = new Proxy(s.host, {
      get(target, key) {
        if (key === 'cutLocalLegs')
          return async (id: string) => {
            const cut = await target.cutLocalLegs(id);
            calls.push(`cut ${id}: ${cut.length}`);
            return cut;
          };
        if (key === 'fenceArray')
          return async (id: string) => {
            calls.push(`md ${id}`);
            if (id === 'v1') await mdStuck;
            return target.fenceArray(id);
          };
        const v: unknown = Reflect.get(target, key, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    let legsCut = false;
    const fencing = fenceAllArrays({
      host,
      store: s.store,
      onLegsCut: () => {
        legsCut = true;
      },
    });
    await vi.waitFor(() => expect(calls).toContain('md v1'));
    expect(calls).toEqual(['cut v1: 1', 'cut v2: 1', 'cut v3: 0', 'md v1']);
    expect(legsCut).toBe(true);
    // v2's writes fail already, although md has been told nothing about v2 yet
    expect(await s.host.canWrite((await s.host.getArray('v2'))?.devicePath ?? '')).toBe(false);
    releaseMd();
    expect(await fencing).toEqual(['v1', 'v2']);
    expect(calls.slice(4)).toEqual(['md v2', 'md v3']); // v3: no array here, nothing fenced
  });

  it('a cut that fails is reported and the other volumes are still fenced', async () => {
    const s = await setUp();
    await s.store.create(record('v1', MiB));
    await s.store.create(record('v2', 3 * GiB));
    await s.right.tick();
    await s.right.settle();
    await s.stage('v1');
    await s.stage('v2');
    const host = new Proxy(s.host, {
      get(target, key) {
        if (key === 'cutLocalLegs')
          return async (id: string) => {
            if (id === 'v1') throw new Error('dmsetup: no such device');
            return target.cutLocalLegs(id);
          };
        const v: unknown = Reflect.get(target, key, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const failures: { volume: string; reason: string }[] = [];
    // v1's md step still runs (and fails its members): the cut is the fast way, not the only one
    expect(await fenceAllArrays({ host, store: s.store }, failures)).toEqual(['v1', 'v2']);
    expect(failures).toEqual([{ volume: 'v1', reason: 'dmsetup: no such device' }]);
    for (const id of ['v1', 'v2'])
      expect(await s.host.canWrite((await s.host.getArray(id))?.devicePath ?? '')).toBe(false);
  });

  it('a pass fences an array whose volume the record now attaches to another node, and only that one', async () => {
    const s = await setUp();
    await s.store.create(record('v1', MiB));
    await s.store.create(record('v2', 3 * GiB));
    await s.right.tick();
    await s.right.settle();
    await s.stage('v1');
    await s.stage('v2');
    const first = await s.pass();
    expect(first.fenced).toEqual([]);
    await updateRecord(s.store, 'v1', (v) => {
      v.attachment = { node: 'n2', hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:fence-n2' };
      return true;
    });
    const r = await s.pass();
    expect(r.fenced).toEqual(['v1']);
    expect(await s.host.canWrite((await s.host.getArray('v1'))?.devicePath ?? '')).toBe(false);
    expect(await s.host.canWrite((await s.host.getArray('v2'))?.devicePath ?? '')).toBe(true);
    // the member states of the fenced array are not reported (it is no longer attached here)
    expect((await s.store.get('v1'))?.replicas.map((x) => x.state)).toEqual(['InSync']);
    expect((await s.pass()).fenced).toEqual([]);
  });

  it('takes a volume over only after the holder’s lease stayed unchanged for D + M', async () => {
    const s = await setUp();
    const holder = { node: 'n0', hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:fence-n0' };
    await s.store.create(record('v1', MiB, { attachment: holder }));
    await s.right.tick();
    await s.right.settle();
    await s.leases.renew('n0');
    const refused = (msg: RegExp) => (e: unknown) =>
      e instanceof VolumeRefusal && e.kind === 'unavailable' && msg.test(e.message);
    await expect(s.stage('v1')).rejects.toSatisfy(
      refused(/node n0; its right to write ends in at most 50 s/),
    );
    s.clock.t += 30_000;
    await s.leases.renew('n0'); // n0 is still renewing: the wait starts again
    await s.right.tick();
    await s.right.settle();
    await expect(s.stage('v1')).rejects.toSatisfy(refused(/at most 50 s/));
    for (
      let waited = 0;
      waited < WRITE_RIGHT.leaseMs + WRITE_RIGHT.takeoverMarginMs - 5_000;
      waited += 5_000
    ) {
      s.clock.t += 5_000;
      await s.right.tick();
      await s.right.settle();
      await expect(s.stage('v1')).rejects.toSatisfy(refused(/right to write ends/));
    }
    s.clock.t += 5_000;
    await s.right.tick();
    await s.right.settle();
    await s.stage('v1');
    expect((await s.store.get('v1'))?.attachment?.node).toBe('n1');
  });
});
