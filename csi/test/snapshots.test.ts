// Snapshots and restores (ADR 0010) on three simulated nodes: CreateSnapshot adds the snapshot's
// partition to the running array, the agent resyncs and detaches it under a freeze, the snapshot
// becomes ready; a volume restored from it is seeded with its data at first stage. And the capture
// killed after each of its host calls, then resumed by a fresh pass.
import { describe, expect, it, vi } from 'vitest';
import type { SimulatedHost } from '../../agent/host/simulated.ts';
import type { Host } from '../../agent/host/types.ts';
import { partitionOf } from '../../agent/owners.ts';
import { advanceCaptures } from '../../agent/snapshots.ts';
import { KeyedLock } from '../../state/lock.ts';
import { codeOf, mountCap } from './requests.ts';
import { cluster, GiB, NODES, stage, unstage } from './sim-cluster.ts';

type Cluster = ReturnType<typeof cluster>;

const createReq = (name: string, replicaCount: number, source?: unknown) => ({
  name,
  capacity_range: { required_bytes: String(GiB), limit_bytes: '0' },
  volume_capabilities: [mountCap],
  parameters: { replicaCount: String(replicaCount), spread: 'none' },
  secrets: {},
  volume_content_source: source ?? null,
  accessibility_requirements: null,
  mutable_parameters: {},
});

const snapReq = (name: string, source: string) => ({
  name,
  source_volume_id: source,
  secrets: {},
  parameters: {},
});

/** CreateSnapshot again and again while the agents pass, as the snapshotter sidecar does, until ready. */
async function untilReady(c: Cluster, name: string, source: string, rounds = 10) {
  for (let i = 0; i < rounds; i++) {
    const r = await c.controller.createSnapshot(snapReq(name, source));
    if (r.snapshot.ready_to_use) return r.snapshot;
    for (const n of NODES) await c.node(n).pass();
  }
  throw new Error(`snapshot ${name} not ready after ${rounds} rounds`);
}

/** A staged mount volume of `replicas` members on n1 (and n2), its array running on n1. */
async function stagedSource(c: Cluster, name: string, replicas: number) {
  const { volume } = await c.controller.createVolume(createReq(name, replicas));
  await c.withAgents(c.node('n1').svc.nodeStageVolume(stage(volume.volume_id)));
  return volume.volume_id;
}

describe('snapshots by member detach', () => {
  it('adds the snapshot member, detaches it complete, and gives the source its members back', async () => {
    const c = cluster();
    const src = await stagedSource(c, 'src', 2);
    const host = c.node('n1').host;
    const before = await host.getArray(src);
    const first = await c.controller.createSnapshot(snapReq('s1', src));
    expect(first.snapshot.ready_to_use).toBe(false);
    expect(first.snapshot.source_volume_id).toBe(src);

    const snap = await untilReady(c, 's1', src);
    expect(snap.size_bytes).toBe(String(GiB));
    const rec = await c.store.get(snap.snapshot_id);
    const member = rec?.replicas[0];
    if (!rec || !member) throw new Error('no snapshot record');
    // the source: same array, both own members in sync, raid-devices back to 2, nothing frozen
    const after = await host.getArray(src);
    expect(after?.uuid).toBe(before?.uuid);
    expect(after?.raidDevices).toBe(2);
    expect(after?.members.filter((m) => m.state === 'in_sync')).toHaveLength(2);
    expect(host.isFrozen(after?.devicePath ?? '')).toBe(false);
    expect((await c.store.get(src))?.capture).toBeUndefined();
    // the snapshot: its own partition, out of the array, its record not attached anywhere
    const owner = c.node(member.node as 'n1').host;
    const part = partitionOf(await owner.listDrives(), { volumeId: rec.id, replicaId: member.id });
    expect(part).toBeDefined();
    expect(after?.members.map((m) => m.devicePath)).not.toContain(part?.path);
    expect(rec.attachment).toBeUndefined();
    // listed, and found by source and by id
    const listed = await c.controller.listSnapshots({
      max_entries: 0,
      starting_token: '',
      source_volume_id: src,
      snapshot_id: '',
      secrets: {},
    });
    expect(listed.entries.map((e) => e.snapshot.snapshot_id)).toEqual([snap.snapshot_id]);
  });

  it('keeps a replicaCount 1 volume at one own member or more throughout', async () => {
    const c = cluster();
    const src = await stagedSource(c, 'single', 1);
    const host = c.node('n1').host;
    const counts: number[] = [];
    const remove = host.removeMember.bind(host);
    vi.spyOn(host, 'removeMember').mockImplementation(async (v, d, o) => {
      const r = await remove(v, d, o);
      counts.push(r.members.filter((m) => m.state === 'in_sync').length);
      return r;
    });
    await untilReady(c, 'single-snap', src);
    expect(counts).toEqual([1]); // the one detach left the volume's own copy in sync
    expect((await host.getArray(src))?.raidDevices).toBe(1);
  });

  it('restores: the new volume is seeded from the snapshot at its first stage, once', async () => {
    const c = cluster();
    const src = await stagedSource(c, 'src', 2);
    const snap = await untilReady(c, 'for-restore', src);
    const { volume } = await c.controller.createVolume(
      createReq('restored', 2, { type: 'snapshot', snapshot: { snapshot_id: snap.snapshot_id } }),
    );
    expect(volume.content_source).toEqual({ snapshot: { snapshot_id: snap.snapshot_id } });
    // while a restore reads it, the snapshot is not deleted
    expect(await codeOf(c.controller.deleteSnapshot({ snapshot_id: snap.snapshot_id, secrets: {} }))).toBe(
      9, // FAILED_PRECONDITION
    );
    const host = c.node('n2').host;
    const copy = vi.spyOn(host, 'copyMemberData');
    const mkfs = vi.spyOn(host, 'makeFilesystem');
    await c.withAgents(c.node('n2').svc.nodeStageVolume(stage(volume.volume_id)));
    expect(copy).toHaveBeenCalledTimes(1);
    // the copy came before the filesystem check, which then found the snapshot's XFS
    expect(copy.mock.invocationCallOrder[0]).toBeLessThan(mkfs.mock.invocationCallOrder[0] ?? 0);
    expect((await c.store.get(volume.volume_id))?.seed?.done).toBe(true);
    // staged again later: no second copy
    await c.node('n2').svc.nodeUnstageVolume(unstage(volume.volume_id));
    await c.withAgents(c.node('n2').svc.nodeStageVolume(stage(volume.volume_id)));
    expect(copy).toHaveBeenCalledTimes(1);
    // seeded: the snapshot may go, and outlives nothing it should not
    expect(await codeOf(c.controller.deleteSnapshot({ snapshot_id: snap.snapshot_id, secrets: {} }))).toBe(
      'OK',
    );
  });

  it('a restore larger than its snapshot grows the copied filesystem to its array', async () => {
    const c = cluster();
    const src = await stagedSource(c, 'src', 1);
    const snap = await untilReady(c, 'small', src);
    const req = createReq('bigger', 1, { type: 'snapshot', snapshot: { snapshot_id: snap.snapshot_id } });
    req.capacity_range = { required_bytes: String(2 * GiB), limit_bytes: '0' };
    const { volume } = await c.controller.createVolume(req);
    expect(volume.capacity_bytes).toBe(String(2 * GiB));
    const host = c.node('n2').host;
    const grow = vi.spyOn(host, 'growFilesystem');
    await c.withAgents(c.node('n2').svc.nodeStageVolume(stage(volume.volume_id)));
    expect(grow).toHaveBeenCalledWith(`/stage/${volume.volume_id}`);
  });

  it('clones a staged volume through an internal snapshot, deleted once the clone is seeded', async () => {
    const c = cluster();
    const src = await stagedSource(c, 'src', 2);
    const { volume } = await c.controller.createVolume(
      createReq('clone', 1, { type: 'volume', volume: { volume_id: src } }),
    );
    expect(volume.content_source).toEqual({ volume: { volume_id: src } });
    const seed = (await c.store.get(volume.volume_id))?.seed;
    expect(seed).toMatchObject({ fromVolume: src, done: false });
    // not listed: the CO never asked for it
    const listed = await c.controller.listSnapshots({
      max_entries: 0,
      starting_token: '',
      source_volume_id: '',
      snapshot_id: '',
      secrets: {},
    });
    expect(listed.entries).toEqual([]);
    // staging the clone waits for the internal snapshot, which the agents' passes capture
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage(volume.volume_id)));
    expect((await c.store.get(volume.volume_id))?.seed?.done).toBe(true);
    expect((await c.store.get(seed?.snapshot ?? ''))?.phase).toBe('Deleting');
    for (const n of NODES) await c.node(n).pass();
    await c.deletion.pass();
    expect(await c.store.get(seed?.snapshot ?? '')).toBeUndefined();
  });

  it('outlives its source volume', async () => {
    const c = cluster();
    const src = await stagedSource(c, 'src', 2);
    const snap = await untilReady(c, 'keeper', src);
    await c.node('n1').svc.nodeUnstageVolume(unstage(src));
    await c.controller.deleteVolume({ volume_id: src, secrets: {} });
    for (let i = 0; i < 3; i++) {
      for (const n of NODES) await c.node(n).pass();
      await c.deletion.pass();
    }
    expect(await c.store.get(src)).toBeUndefined();
    const rec = await c.store.get(snap.snapshot_id);
    expect(rec?.phase).toBe('Active');
    const member = rec?.replicas[0];
    const owner = c.node((member?.node ?? 'n1') as 'n1');
    expect(
      partitionOf(await owner.host.listDrives(), { volumeId: snap.snapshot_id, replicaId: member?.id ?? '' }),
    ).toBeDefined();
    const { volume } = await c.controller.createVolume(
      createReq('from-orphan', 1, { type: 'snapshot', snapshot: { snapshot_id: snap.snapshot_id } }),
    );
    await c.withAgents(c.node('n3').svc.nodeStageVolume(stage(volume.volume_id)));
    expect((await c.store.get(volume.volume_id))?.seed?.done).toBe(true);
  });

  it('a snapshot deleted while its capture runs is taken back out of the array', async () => {
    const c = cluster();
    const src = await stagedSource(c, 'src', 2);
    const first = await c.controller.createSnapshot(snapReq('doomed', src));
    // one capture pass on n1 only: the member is added and synced (the simulation syncs at once)
    await c.node('n1').pass();
    await c.controller.deleteSnapshot({ snapshot_id: first.snapshot.snapshot_id, secrets: {} });
    for (let i = 0; i < 3; i++) for (const n of NODES) await c.node(n).pass();
    await c.deletion.pass();
    expect((await c.store.get(src))?.capture).toBeUndefined();
    expect(await c.store.get(first.snapshot.snapshot_id)).toBeUndefined();
    const array = await c.node('n1').host.getArray(src);
    expect(array?.raidDevices).toBe(2);
    expect(array?.members).toHaveLength(2);
  });
});

/** A Host whose k-th changing call is carried out and then the process "dies" (the call throws). */
function killedAfter(host: SimulatedHost, k: number): { host: Host; killed: () => boolean } {
  const reads = new Set([
    'listDrives',
    'getArray',
    'findDeviceByNqn',
    'getMount',
    'listExports',
    'readBitmap',
  ]);
  let calls = 0;
  let dead = false;
  const proxy = new Proxy(host, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || reads.has(String(prop)))
        return typeof v === 'function' ? v.bind(target) : v;
      return async (...args: unknown[]) => {
        if (dead) throw new Error('killed');
        const r = await v.apply(target, args);
        if (++calls === k) {
          dead = true;
          throw new Error(`killed after ${String(prop)}`);
        }
        return r;
      };
    },
  });
  return { host: proxy, killed: () => dead };
}

describe('a capture killed anywhere resumes', () => {
  it('after each changing host call: ready, detached, thawed, the source whole', async () => {
    let k = 1;
    for (; k < 40; k++) {
      const c = cluster();
      const src = await stagedSource(c, 'src', 2);
      const real = c.node('n1').host;
      await c.controller.createSnapshot(snapReq('s', src));
      const dying = killedAfter(real, k);
      const ctx = {
        nodeName: 'n1',
        host: dying.host,
        store: c.store,
        listen: c.node('n1').listen,
        locks: new KeyedLock(),
        peers: c.peers,
      };
      await advanceCaptures(ctx, await c.store.list(), []);
      if (!dying.killed()) break; // the pass finished before its k-th call: every point covered
      const snap = await untilReady(c, 's', src);
      const array = await real.getArray(src);
      expect(array?.raidDevices, `killed after call ${k}`).toBe(2);
      expect(
        array?.members.filter((m) => m.state === 'in_sync'),
        `killed after call ${k}`,
      ).toHaveLength(2);
      expect(real.isFrozen(array?.devicePath ?? ''), `killed after call ${k}`).toBe(false);
      const rec = await c.store.get(snap.snapshot_id);
      const member = rec?.replicas[0];
      const owner = c.node((member?.node ?? 'n1') as 'n1').host;
      const part = partitionOf(await owner.listDrives(), {
        volumeId: snap.snapshot_id,
        replicaId: member?.id ?? '',
      });
      expect(
        array?.members.map((m) => m.devicePath),
        `killed after call ${k}`,
      ).not.toContain(part?.path);
    }
    console.log(`capture killed after each of its ${k - 1} changing host calls, resumed each time`);
    // the capture makes several changing calls; each was a kill point
    expect(k).toBeGreaterThan(4);
  });
});
