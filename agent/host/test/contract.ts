// The Host contract: one suite, run on SimulatedHost in the unit tier (simulated.test.ts) and on
// LinuxHost inside the kernel-tier VM (test/kernel/guest/run.ts). Framework-free (node:assert)
// so the guest can run it without vitest. Each case gets a fresh environment from the factory.
import assert from 'node:assert/strict';
import { MiB } from '../../../placement/index.ts';
import { type DhchapKeys, generateDhchapSecret } from '../dhchap.ts';
import {
  CancelledError,
  ConnectRefusedError,
  DeviceInUseError,
  ForeignSuperblockError,
  InvalidArgumentError,
  LastInSyncMemberError,
  NotFoundError,
  PartitionOverlapError,
  ReAddRefusedError,
} from '../errors.ts';
import { subsystemNqn } from '../names.ts';
import type { Drive, Host, ListenAddress, Owner, PartitionSpec } from '../types.ts';

export interface ContractEnv {
  /** Node A: the consumer that assembles arrays; owns drive `driveA`. */
  a: Host;
  driveA: string;
  /** Node B: exports a replica to A from drive `driveB`; listens on `listenB`. */
  b: Host;
  driveB: string;
  listenB: ListenAddress;
  /** A third node that nobody allowed. */
  foreign: Host;
  /** A fresh empty directory to mount on. */
  mountDir: string;
  /**
   * Writes through `path` on node A: a new file (then removed) in a directory, or one 4 KiB block
   * at offset 0 of a device node, flushed. false when the write or its flush is refused (EROFS,
   * EPERM; EIO from a fenced array). The VM writes
   * for real; the simulation answers from its mount table.
   */
  canWrite(path: string): Promise<boolean>;
  /**
   * Leaves on node A's device what an mkfs.xfs killed midway leaves: an XFS superblock still marked
   * in progress (the VM sets sb_inprogress with xfs_db; the simulation marks its store).
   */
  cutMkfsShort(devicePath: string): Promise<void>;
  /**
   * Takes node A's partition out of the kernel's view and leaves it in the table, as a process
   * killed between sgdisk and partx leaves it (the VM: partx --delete; the simulation has one view
   * of a table, so nothing to do there).
   */
  forgetPartitionInKernel(partitionPath: string): Promise<void>;
}

export interface ContractCase {
  name: string;
  run(env: ContractEnv): Promise<void>;
}

const R1: Owner = { volumeId: 'vol-1', replicaId: 'r1' };
const R2: Owner = { volumeId: 'vol-1', replicaId: 'r2' };
const R3: Owner = { volumeId: 'vol-1', replicaId: 'r3' };
const OTHER: Owner = { volumeId: 'vol-2', replicaId: 'r1' };
const SIZE = 64 * MiB;
const FS_SIZE = 320 * MiB;
const TMO = 5;

async function drive(h: Host, id: string): Promise<Drive> {
  const d = (await h.listDrives()).find((x) => x.id === id);
  assert.ok(d, `drive ${id} listed`);
  return d;
}

/** A spec at the start of the drive's first free extent. */
async function specAtFree(h: Host, id: string, owner: Owner, size = SIZE, skip = 0): Promise<PartitionSpec> {
  const f = (await drive(h, id)).free[0];
  assert.ok(f && f.end - f.start >= size + skip, `drive ${id} has ${size + skip} bytes free`);
  return { ...owner, extent: { start: f.start + skip, end: f.start + skip + size } };
}

async function partPath(h: Host, id: string, owner: Owner): Promise<string> {
  const p = (await drive(h, id)).partitions.find(
    (x) => x.owner?.volumeId === owner.volumeId && x.owner.replicaId === owner.replicaId,
  );
  assert.ok(p, `partition of ${owner.volumeId}/${owner.replicaId} on ${id}`);
  return p.path;
}

async function throwsA(p: Promise<unknown>, cls: new (...a: never[]) => Error): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.ok((e as Error).message.length > 10, 'the error explains itself');
    return true;
  });
}

/** B exports R2 to A (optionally with DH-HMAC-CHAP keys); A connects. Returns A's device for it. */
async function remoteLeg(env: ContractEnv, keys: DhchapKeys = {}): Promise<{ nqn: string; dev: string }> {
  const { a, b } = env;
  await b.createPartitions(env.driveB, [await specAtFree(b, env.driveB, R2)]);
  const ex = await b.exportReplica({
    ...R2,
    devicePath: await partPath(b, env.driveB, R2),
    listen: env.listenB,
  });
  await b.grantHost(ex.nqn, { hostNqn: a.hostNqn, ...keys });
  const dev = await a.connect({ subsystemNqn: ex.nqn, target: env.listenB, ...keys, ctrlLossTmoSec: TMO });
  return { nqn: ex.nqn, dev };
}

/** A one-member array of A's R1 holding XFS, and where to mount it, bind it and bind it read-only. */
async function formattedArray({ a, driveA, mountDir }: ContractEnv) {
  await a.createPartitions(driveA, [await specAtFree(a, driveA, R1, FS_SIZE)]);
  const arr = await a.createArray({ volumeId: R1.volumeId, devices: [await partPath(a, driveA, R1)] });
  await a.makeFilesystem(arr.devicePath);
  return { arr, stage: `${mountDir}/stage`, rw: `${mountDir}/rw`, ro: `${mountDir}/ro` };
}

/** A RAID1 of A's local R1 and B's R2 over the fabric. */
async function twoLegArray(env: ContractEnv) {
  const { a } = env;
  await a.createPartitions(env.driveA, [await specAtFree(a, env.driveA, R1)]);
  const local = await partPath(a, env.driveA, R1);
  const remote = await remoteLeg(env);
  const arr = await a.createArray({ volumeId: R1.volumeId, devices: [local, remote.dev] });
  return { local, remote, arr };
}

export const CONTRACT: ContractCase[] = [
  {
    name: 'lists drives with stable ids, sizes, block size and free extents',
    async run({ a, driveA }) {
      const d = await drive(a, driveA);
      assert.ok(d.sizeBytes >= 1024 * MiB && d.logicalBlockSize >= 512, 'size and block size');
      assert.ok(d.path.startsWith('/dev/'), 'a device path');
      const free = d.free.reduce((s, f) => s + f.end - f.start, 0);
      assert.ok(free > d.sizeBytes - 4 * MiB && free <= d.sizeBytes, `an empty drive is all free (${free})`);
      for (const f of d.free) assert.equal(f.start % MiB, 0, 'free extents are 1 MiB aligned');
      assert.deepEqual(await a.listDrives(), await a.listDrives(), 'listing twice gives the same');
    },
  },
  {
    name: 'creates a batch of partitions traceable to their replicas, idempotently',
    async run({ a, driveA }) {
      const s1 = await specAtFree(a, driveA, R1);
      const s3 = { ...R3, extent: { start: s1.extent.end, end: s1.extent.end + 64 * MiB } };
      const made = await a.createPartitions(driveA, [s1, s3]);
      assert.equal(made.length, 2);
      assert.deepEqual(made[0]?.owner, R1);
      assert.equal(made[0]?.start, s1.extent.start);
      assert.equal(made[0]?.end, s1.extent.end);
      assert.deepEqual(made[1]?.owner, R3);
      assert.deepEqual(await a.createPartitions(driveA, [s1, s3]), made, 'second call changes nothing');
      const d = await drive(a, driveA);
      assert.equal(d.partitions.length, 2);
      assert.ok(!d.free.some((f) => f.start < s3.extent.end && s1.extent.start < f.end), 'no longer free');
      assert.notEqual(made[0]?.partUuid, made[1]?.partUuid);
    },
  },
  {
    name: 'two partition-table changes on one drive at once both land',
    async run({ a, driveA }) {
      // the agent's pass and a NodeStage may create partitions on one drive at the same moment:
      // each reads the table and writes it whole, so unserialised the second write dropped the first
      const s1 = await specAtFree(a, driveA, R1);
      const s3 = { ...R3, extent: { start: s1.extent.end, end: s1.extent.end + 64 * MiB } };
      const [m1, m3] = await Promise.all([
        a.createPartitions(driveA, [s1]),
        a.createPartitions(driveA, [s3]),
      ]);
      assert.deepEqual(m1?.[0]?.owner, R1);
      assert.deepEqual(m3?.[0]?.owner, R3);
      const d = await drive(a, driveA);
      assert.deepEqual(d.partitions.map((p) => p.owner?.replicaId).sort(), ['r1', 'r3']);
      assert.notEqual(m1?.[0]?.number, m3?.[0]?.number);
    },
  },
  {
    name: 'refuses an overlapping partition and bad input, changing nothing',
    async run({ a, driveA }) {
      const s1 = await specAtFree(a, driveA, R1);
      await a.createPartitions(driveA, [s1]);
      const before = await a.listDrives();
      const mid = s1.extent.start + 16 * MiB;
      await throwsA(
        a.createPartitions(driveA, [{ ...OTHER, extent: { start: mid, end: mid + 64 * MiB } }]),
        PartitionOverlapError,
      );
      const s2 = { ...R2, extent: { start: s1.extent.end, end: s1.extent.end + 8 * MiB } };
      await throwsA(a.createPartitions(driveA, [s2, { ...s2, ...R3 }]), PartitionOverlapError);
      await throwsA(
        a.createPartitions(driveA, [
          { ...OTHER, extent: { start: s1.extent.end + 1, end: s1.extent.end + MiB } },
        ]),
        InvalidArgumentError,
      );
      await throwsA(
        a.createPartitions(driveA, [{ volumeId: 'Bad Id!', replicaId: 'r1', extent: s2.extent }]),
        InvalidArgumentError,
      );
      await throwsA(a.createPartitions('no-such-drive', [s2]), NotFoundError);
      assert.deepEqual(await a.listDrives(), before, 'nothing changed');
    },
  },
  {
    name: 'exports to an allow-list only: the allowed host connects, a foreign host is refused',
    async run(env) {
      const { a, foreign } = env;
      const { nqn, dev } = await remoteLeg(env);
      assert.equal(nqn, subsystemNqn(R2));
      assert.equal(await a.findDeviceByNqn(nqn), dev, 'found by NQN');
      assert.equal(
        await a.connect({ subsystemNqn: nqn, target: env.listenB, ctrlLossTmoSec: TMO }),
        dev,
        'connect is idempotent',
      );
      const ex = (await env.b.listExports()).find((e) => e.nqn === nqn);
      assert.deepEqual(ex?.allowedHosts, [a.hostNqn]);
      await throwsA(
        foreign.connect({ subsystemNqn: nqn, target: env.listenB, ctrlLossTmoSec: TMO }),
        ConnectRefusedError,
      );
      assert.equal(await foreign.findDeviceByNqn(nqn), undefined);
      await a.disconnect(nqn);
      await a.disconnect(nqn);
      assert.equal(await a.findDeviceByNqn(nqn), undefined, 'gone after disconnect');
      await env.b.revokeHost(nqn, a.hostNqn);
      await env.b.revokeHost(nqn, a.hostNqn);
      await throwsA(
        a.connect({ subsystemNqn: nqn, target: env.listenB, ctrlLossTmoSec: TMO }),
        ConnectRefusedError,
      );
      await env.b.unexport(nqn);
      await env.b.unexport(nqn);
      assert.deepEqual(await env.b.listExports(), []);
    },
  },
  {
    name: 'DH-HMAC-CHAP: the right secret connects, a wrong one is refused',
    async run(env) {
      const keys = { dhchapSecret: generateDhchapSecret(), dhchapCtrlSecret: generateDhchapSecret() };
      const { nqn, dev } = await remoteLeg(env, keys);
      assert.ok(dev.startsWith('/dev/'));
      await env.a.disconnect(nqn);
      const spec = { subsystemNqn: nqn, target: env.listenB, ctrlLossTmoSec: TMO };
      await throwsA(
        env.a.connect({ ...spec, ...keys, dhchapSecret: generateDhchapSecret() }),
        ConnectRefusedError,
      );
      // bidirectional: a controller that cannot prove the controller key is refused by the host
      await throwsA(
        env.a.connect({ ...spec, ...keys, dhchapCtrlSecret: generateDhchapSecret() }),
        ConnectRefusedError,
      );
      await throwsA(env.a.connect({ ...spec, dhchapSecret: 'secret' }), InvalidArgumentError);
      await throwsA(
        env.a.connect({ ...spec, dhchapCtrlSecret: keys.dhchapCtrlSecret }),
        InvalidArgumentError,
      );
      await throwsA(env.a.connect({ ...spec, ctrlLossTmoSec: 0 }), InvalidArgumentError);
      assert.ok(
        (await env.a.connect({ ...spec, ...keys })).startsWith('/dev/'),
        'the right keys connect again',
      );
    },
  },
  {
    name: 'DH-HMAC-CHAP rotation: the target takes the new keys, the live controller re-authenticates, the old keys are refused',
    async run(env) {
      const old = { dhchapSecret: generateDhchapSecret(), dhchapCtrlSecret: generateDhchapSecret() };
      const { nqn, dev } = await remoteLeg(env, old);
      const spec = { subsystemNqn: nqn, target: env.listenB, ctrlLossTmoSec: TMO };
      const grant = (k: DhchapKeys) => env.b.grantHost(nqn, { hostNqn: env.a.hostNqn, ...k });
      // one key per step, target first: a re-authentication never meets a half-rotated pair
      const step1 = { ...old, dhchapSecret: generateDhchapSecret() };
      await grant(step1);
      assert.equal(await env.a.connect({ ...spec, ...step1 }), dev, 'host key rotated in place');
      const step2 = { ...step1, dhchapCtrlSecret: generateDhchapSecret() };
      await grant(step2);
      assert.equal(await env.a.connect({ ...spec, ...step2 }), dev, 'controller key rotated in place');
      assert.equal(await env.a.findDeviceByNqn(nqn), dev, 'still connected');
      await env.a.disconnect(nqn);
      await throwsA(env.a.connect({ ...spec, ...old }), ConnectRefusedError);
      await throwsA(env.a.connect({ ...spec, ...step1 }), ConnectRefusedError);
      assert.ok((await env.a.connect({ ...spec, ...step2 })).startsWith('/dev/'), 'the new keys connect');
    },
  },
  {
    name: 'an export removed and made again with new keys under a live connection: connect gets the new one',
    async run(env) {
      // an owner drops an export when the volume detaches and makes it again when it is staged
      // again; a controller left from before cannot reach it (its subsystem went away, its keys
      // may be old) and must not hold the new stage up
      const old = { dhchapSecret: generateDhchapSecret(), dhchapCtrlSecret: generateDhchapSecret() };
      const { nqn } = await remoteLeg(env, old);
      await env.b.unexport(nqn);
      await env.b.exportReplica({
        ...R2,
        devicePath: await partPath(env.b, env.driveB, R2),
        listen: env.listenB,
      });
      const fresh = { dhchapSecret: generateDhchapSecret(), dhchapCtrlSecret: generateDhchapSecret() };
      await env.b.grantHost(nqn, { hostNqn: env.a.hostNqn, ...fresh });
      const spec = { subsystemNqn: nqn, target: env.listenB, ctrlLossTmoSec: TMO };
      const dev = await env.a.connect({ ...spec, ...fresh });
      assert.equal(await env.a.findDeviceByNqn(nqn), dev, 'found by NQN');
      assert.equal(await env.canWrite(dev), true, `${dev} takes a write`);
      await env.a.disconnect(nqn);
      assert.equal(await env.a.findDeviceByNqn(nqn), undefined, 'gone after disconnect');
    },
  },
  {
    name: 'creates a RAID1 of a local partition and a remote namespace, idempotently',
    async run(env) {
      const { local, remote, arr } = await twoLegArray(env);
      assert.equal(arr.raidDevices, 2);
      assert.deepEqual(arr.members.map((m) => m.devicePath).sort(), [local, remote.dev].sort());
      assert.ok(arr.sizeBytes > SIZE - 16 * MiB && arr.sizeBytes <= SIZE, `array size ${arr.sizeBytes}`);
      const again = await env.a.createArray({ volumeId: R1.volumeId, devices: [local, remote.dev] });
      assert.equal(again.uuid, arr.uuid, 'same array');
      assert.equal((await env.a.getArray(R1.volumeId))?.uuid, arr.uuid);
      assert.equal(await env.a.getArray('vol-9'), undefined);
    },
  },
  {
    name: "refuses mdadm --create over a busy device or another array's superblock, and adding such a device",
    async run(env) {
      const { a, driveA } = env;
      const { local } = await twoLegArray(env);
      await throwsA(a.createArray({ volumeId: OTHER.volumeId, devices: [local] }), DeviceInUseError);
      await a.createPartitions(driveA, [await specAtFree(a, driveA, OTHER)]);
      const p = await partPath(a, driveA, OTHER);
      await a.createArray({ volumeId: OTHER.volumeId, devices: [p] });
      await a.stopArray(OTHER.volumeId);
      await throwsA(a.addMember(R1.volumeId, p), ForeignSuperblockError);
      await throwsA(a.createArray({ volumeId: 'vol-3', devices: [p] }), ForeignSuperblockError);
      await a.stopArray(R1.volumeId);
      await throwsA(a.createArray({ volumeId: OTHER.volumeId, devices: [local] }), ForeignSuperblockError);
    },
  },
  {
    name: 'refuses removing the last in-sync member; removes others idempotently',
    async run(env) {
      const { a } = env;
      const { local, remote } = await twoLegArray(env);
      await waitIdle(a, R1.volumeId);
      const after = await a.removeMember(R1.volumeId, remote.dev);
      assert.deepEqual(
        after.members.map((m) => m.devicePath),
        [local],
      );
      assert.ok(after.degraded, 'one of two slots left');
      await a.removeMember(R1.volumeId, remote.dev);
      await throwsA(a.removeMember(R1.volumeId, local), LastInSyncMemberError);
      assert.equal((await a.getArray(R1.volumeId))?.members.length, 1, 'still there');
      const one = await a.setRaidDevices(R1.volumeId, 1);
      assert.equal(one.raidDevices, 1);
      assert.equal(one.degraded, false);
      await throwsA(a.setRaidDevices(R1.volumeId, 0), InvalidArgumentError);
    },
  },
  {
    name: 'fences an array: the local member failed, a write and its flush fail; idempotent; it still stops',
    async run(env) {
      const { a } = env;
      const { arr, local, remote } = await twoLegArray(env);
      assert.equal(await env.canWrite(arr.devicePath), true, 'writable before the fence');
      assert.equal(await a.fenceArray(R1.volumeId), true);
      const fenced = await a.getArray(R1.volumeId);
      assert.ok(fenced, 'still assembled: a fence is not a stop');
      const stateOf = (dev: string) => fenced.members.find((m) => m.devicePath === dev)?.state;
      assert.equal(stateOf(local), 'faulty', 'the local member is failed first');
      assert.ok(stateOf(remote.dev), 'md keeps the last member (and marks the array broken)');
      assert.equal(await env.canWrite(arr.devicePath), false, 'no write is acknowledged after the fence');
      await a.fenceArray(R1.volumeId); // again: no error, still fenced
      assert.equal(await a.fenceArray('vol-9'), false, 'no array');
      assert.equal(await env.canWrite(arr.devicePath), false);
      await a.stopArray(R1.volumeId);
      assert.equal(await a.getArray(R1.volumeId), undefined);
    },
  },
  {
    name: 'cuts the local legs below the array: writes fail at once, members keep their names, idempotent; the partition is free once the array stops',
    async run(env) {
      const { a, driveA } = env;
      await a.createPartitions(driveA, [await specAtFree(a, driveA, R1)]);
      const local = await partPath(a, driveA, R1);
      const arr = await a.createArray({ volumeId: R1.volumeId, devices: [local] });
      assert.deepEqual(
        arr.members.map((m) => m.devicePath),
        [local],
        'a member is named by its partition, not by the layer under md',
      );
      assert.equal(await env.canWrite(arr.devicePath), true, 'writable before the cut');
      assert.deepEqual(await a.cutLocalLegs(R1.volumeId), [local]);
      assert.equal(await env.canWrite(arr.devicePath), false, 'no write reaches the cut local leg');
      assert.deepEqual(await a.cutLocalLegs(R1.volumeId), [local], 'again: the same, no error');
      assert.deepEqual(await a.cutLocalLegs('vol-9'), [], 'no array');
      const after = await a.getArray(R1.volumeId);
      assert.ok(after, 'still assembled: a cut is not a stop');
      assert.deepEqual(
        after.members.map((m) => m.devicePath),
        [local],
      );
      await throwsA(a.deletePartition(driveA, R1), DeviceInUseError);
      await a.stopArray(R1.volumeId);
      assert.equal(await a.getArray(R1.volumeId), undefined);
      // the layer went with the array: assembling again passes IO, and the partition can go
      const again = await a.assembleArray({ volumeId: R1.volumeId, devices: [local] });
      assert.equal(await env.canWrite(again.devicePath), true, 'assembled again: writable');
      await a.stopArray(R1.volumeId);
      await a.wipePartition(driveA, R1);
      await a.deletePartition(driveA, R1);
      assert.equal((await drive(a, driveA)).partitions.length, 0);
    },
  },
  {
    name: 'refuses deleting or wiping a partition that is an array member or exported',
    async run(env) {
      const { a, b } = env;
      const { remote } = await twoLegArray(env);
      await throwsA(a.deletePartition(env.driveA, R1), DeviceInUseError);
      await throwsA(a.wipePartition(env.driveA, R1), DeviceInUseError);
      await throwsA(b.deletePartition(env.driveB, R2), DeviceInUseError);
      await throwsA(b.wipePartition(env.driveB, R2), DeviceInUseError);
      await a.stopArray(R1.volumeId);
      await a.stopArray(R1.volumeId);
      await a.wipePartition(env.driveA, R1);
      await a.deletePartition(env.driveA, R1);
      await a.deletePartition(env.driveA, R1);
      assert.equal((await drive(a, env.driveA)).partitions.length, 0);
      await a.disconnect(remote.nqn);
      await b.unexport(remote.nqn);
      await b.wipePartition(env.driveB, R2);
      await b.deletePartition(env.driveB, R2);
      assert.equal((await drive(b, env.driveB)).partitions.length, 0);
    },
  },
  {
    name: 'adds a member, grows raid-devices, stops and re-assembles from explicit devices',
    async run(env) {
      const { a, driveA } = env;
      const { local, remote, arr } = await twoLegArray(env);
      await a.createPartitions(driveA, [await specAtFree(a, driveA, R3)]);
      const p3 = await partPath(a, driveA, R3);
      const added = await a.addMember(R1.volumeId, p3);
      assert.equal(added.members.find((m) => m.devicePath === p3)?.state, 'spare');
      const three = await a.setRaidDevices(R1.volumeId, 3);
      assert.equal(three.raidDevices, 3);
      const synced = await waitIdle(a, R1.volumeId);
      assert.equal(synced.members.filter((m) => m.state === 'in_sync').length, 3);
      await a.stopArray(R1.volumeId);
      assert.equal(await a.getArray(R1.volumeId), undefined);
      const back = await a.assembleArray({ volumeId: R1.volumeId, devices: [local, remote.dev, p3] });
      assert.equal(back.uuid, arr.uuid);
      assert.equal(back.raidDevices, 3);
      assert.equal((await a.assembleArray({ volumeId: R1.volumeId, devices: [local] })).uuid, arr.uuid);
      await a.stopArray(R1.volumeId);
      await throwsA(a.assembleArray({ volumeId: 'vol-2', devices: [local] }), ForeignSuperblockError);
    },
  },
  {
    name: "re-adds a member that left (bitmap catch-up), idempotently; refuses a blank device and another array's",
    async run(env) {
      const { a, driveA } = env;
      const { local, remote, arr } = await twoLegArray(env);
      await waitIdle(a, R1.volumeId);
      const bitmap = await a.readBitmap(R1.volumeId);
      assert.ok(bitmap.chunkBytes >= 4096, `bitmap chunk ${bitmap.chunkBytes}`);
      assert.ok(bitmap.chunks * bitmap.chunkBytes >= arr.sizeBytes, 'the bitmap covers the array');
      assert.ok(bitmap.dirtyChunks <= bitmap.chunks);
      const away = await a.removeMember(R1.volumeId, remote.dev);
      assert.ok(away.degraded, 'degraded while the member is away');
      const back = await a.reAddMember(R1.volumeId, remote.dev);
      assert.equal(back.uuid, arr.uuid);
      assert.ok(
        back.members.some((m) => m.devicePath === remote.dev && m.state !== 'faulty' && m.slot !== undefined),
        'back in its slot',
      );
      const synced = await waitIdle(a, R1.volumeId);
      assert.deepEqual(
        synced.members.map((m) => [m.devicePath, m.state]).sort(),
        [
          [local, 'in_sync'],
          [remote.dev, 'in_sync'],
        ].sort(),
      );
      assert.equal(synced.degraded, false);
      assert.equal((await a.reAddMember(R1.volumeId, remote.dev)).members.length, 2, 'idempotent');
      await a.createPartitions(driveA, [await specAtFree(a, driveA, R3)]);
      await throwsA(a.reAddMember(R1.volumeId, await partPath(a, driveA, R3)), ReAddRefusedError);
      await a.createPartitions(driveA, [await specAtFree(a, driveA, OTHER)]);
      const other = await partPath(a, driveA, OTHER);
      await a.createArray({ volumeId: OTHER.volumeId, devices: [other] });
      await a.stopArray(OTHER.volumeId);
      await throwsA(a.reAddMember(R1.volumeId, other), ForeignSuperblockError);
      assert.equal((await a.getArray(R1.volumeId))?.members.length, 2, 'nothing changed by the refusals');
      await a.stopArray(R1.volumeId);
    },
  },
  {
    name: 'marks a member write-mostly and clears it; a device that is no member is not found',
    async run(env) {
      const { a } = env;
      const { local, remote } = await twoLegArray(env);
      const wm = await a.setWriteMostly(R1.volumeId, remote.dev, true);
      const flags = (x: typeof wm) => x.members.map((m) => [m.devicePath, m.writeMostly]).sort();
      assert.deepEqual(
        flags(wm),
        [
          [local, false],
          [remote.dev, true],
        ].sort(),
      );
      assert.deepEqual(flags((await a.getArray(R1.volumeId)) ?? wm), flags(wm), 'md keeps it');
      assert.deepEqual(flags(await a.setWriteMostly(R1.volumeId, remote.dev, true)), flags(wm), 'idempotent');
      const cleared = await a.setWriteMostly(R1.volumeId, remote.dev, false);
      assert.ok(cleared.members.every((m) => !m.writeMostly));
      await throwsA(a.setWriteMostly(R1.volumeId, '/dev/nonexistent', true), NotFoundError);
      await waitIdle(a, R1.volumeId);
      await a.stopArray(R1.volumeId);
    },
  },
  {
    name: 'makes, mounts, grows and measures XFS; refuses formatting over a superblock',
    async run(env) {
      const { a, driveA, mountDir } = env;
      await a.createPartitions(driveA, [await specAtFree(a, driveA, R1, FS_SIZE)]);
      const p = await partPath(a, driveA, R1);
      const arr = await a.createArray({ volumeId: R1.volumeId, devices: [p] });
      await throwsA(a.makeFilesystem(p), ForeignSuperblockError);
      await a.makeFilesystem(arr.devicePath);
      await a.makeFilesystem(arr.devicePath);
      await a.mount(arr.devicePath, mountDir);
      await a.mount(arr.devicePath, mountDir);
      const u1 = await a.filesystemUsage(mountDir);
      assert.ok(u1.sizeBytes > 0 && u1.freeBytes <= u1.sizeBytes && u1.usedBytes >= 0);
      await throwsA(a.stopArray(R1.volumeId), DeviceInUseError);
      const d = await drive(a, driveA);
      const part = d.partitions[0];
      assert.ok(part);
      await a.growPartition(driveA, R1, part.end + 64 * MiB);
      await a.growArray(R1.volumeId);
      await a.growFilesystem(mountDir);
      const u2 = await a.filesystemUsage(mountDir);
      assert.ok(u2.sizeBytes > u1.sizeBytes, `grown: ${u1.sizeBytes} -> ${u2.sizeBytes}`);
      await a.unmount(mountDir);
      await a.unmount(mountDir);
      await a.stopArray(R1.volumeId);
    },
  },
  {
    name: 'binds the array device onto a file read-write and read-only, idempotently; unmount undoes it',
    async run({ a, driveA, mountDir, canWrite }) {
      await a.createPartitions(driveA, [await specAtFree(a, driveA, R1)]);
      const p = await partPath(a, driveA, R1);
      const arr = await a.createArray({ volumeId: R1.volumeId, devices: [p] });
      const rw = `${mountDir}/block/rw`;
      const ro = `${mountDir}/block/ro`;
      await a.bindDevice(arr.devicePath, rw);
      await a.bindDevice(arr.devicePath, rw);
      assert.deepEqual(await a.getMount(rw), { kind: 'device', devicePath: arr.devicePath, readonly: false });
      await a.bindDevice(arr.devicePath, ro, { readonly: true });
      await a.bindDevice(arr.devicePath, ro, { readonly: true });
      assert.deepEqual(await a.getMount(ro), { kind: 'device', devicePath: arr.devicePath, readonly: true });
      assert.equal(await canWrite(rw), true, 'the read-write bind takes writes');
      // a fact the node service's docs rest on: the kernel applies a mount's ro to files, not to
      // device nodes (kubelet's device permission "r" is what keeps a pod from writing)
      assert.equal(await canWrite(ro), true, 'a read-only bind of a device node does not stop writes');
      await throwsA(a.bindDevice(arr.devicePath, ro), DeviceInUseError);
      await throwsA(a.bindDevice(p, rw), DeviceInUseError);
      await throwsA(a.bindDevice('/dev/no-such-device', `${mountDir}/block/x`), NotFoundError);
      await throwsA(a.filesystemUsage(rw), NotFoundError);
      await throwsA(a.stopArray(R1.volumeId), DeviceInUseError);
      const ac = new AbortController();
      ac.abort();
      await throwsA(
        a.bindDevice(arr.devicePath, `${mountDir}/block/y`, { signal: ac.signal }),
        CancelledError,
      );
      assert.equal(await a.getMount(`${mountDir}/block/y`), undefined);
      await a.unmount(rw);
      await a.unmount(rw);
      await a.unmount(ro);
      assert.equal(await a.getMount(rw), undefined);
      assert.equal(await a.getMount(ro), undefined);
      await a.stopArray(R1.volumeId);
    },
  },
  {
    name: 'binds a mounted filesystem onto a directory read-write and read-only; the read-only one refuses writes',
    async run(env) {
      const { a, canWrite } = env;
      const { arr, stage, rw, ro } = await formattedArray(env);
      await throwsA(a.bindMount(stage, rw), NotFoundError);
      await a.mount(arr.devicePath, stage);
      await a.bindMount(stage, rw);
      await a.bindMount(stage, rw);
      const fs = { kind: 'filesystem', devicePath: arr.devicePath };
      // relatime: the kernel's default atime, listed among the per-mount options
      assert.deepEqual(await a.getMount(rw), { ...fs, readonly: false, options: ['rw', 'relatime'] });
      await a.bindMount(stage, ro, { readonly: true });
      await a.bindMount(stage, ro, { readonly: true });
      assert.deepEqual(await a.getMount(ro), { ...fs, readonly: true, options: ['ro', 'relatime'] });
      assert.equal(await canWrite(rw), true, 'the read-write bind takes writes');
      assert.equal(await canWrite(ro), false, 'the read-only bind refuses writes');
      assert.equal(await canWrite(stage), true, 'the staging mount stays writable');
      await throwsA(a.bindMount(stage, ro), DeviceInUseError);
      await throwsA(a.bindDevice(arr.devicePath, rw), DeviceInUseError);
      assert.equal((await a.filesystemUsage(ro)).sizeBytes, (await a.filesystemUsage(stage)).sizeBytes);
      await a.unmount(stage);
      await throwsA(a.stopArray(R1.volumeId), DeviceInUseError);
      await a.unmount(rw);
      await a.unmount(ro);
      await a.unmount(ro);
      assert.equal(await a.getMount(ro), undefined);
      await a.stopArray(R1.volumeId);
    },
  },
  {
    name: 'mounts XFS with the flags asked; binds carry them, read-only ones too; refuses flags off the allow-list',
    async run(env) {
      const { a, canWrite } = env;
      const { arr, stage, rw, ro } = await formattedArray(env);
      await throwsA(a.mount(arr.devicePath, stage, { flags: ['ro'] }), InvalidArgumentError);
      await throwsA(a.mount(arr.devicePath, stage, { flags: ['noatime,ro'] }), InvalidArgumentError);
      await throwsA(
        a.mount(arr.devicePath, stage, { flags: ['noatime', 'strictatime'] }),
        InvalidArgumentError,
      );
      assert.equal(await a.getMount(stage), undefined, 'a refused mount changes nothing');
      await a.mount(arr.devicePath, stage, { flags: ['noatime', 'nosuid', 'discard'] });
      // mounted already: kept as it is, never remounted with other flags
      await a.mount(arr.devicePath, stage, { flags: ['strictatime'] });
      await a.mount(arr.devicePath, stage);
      const fs = { kind: 'filesystem', devicePath: arr.devicePath };
      // per mount: noatime in place of the default relatime; nouuid and discard are the
      // filesystem's own options (superblock), listed elsewhere in mountinfo
      const flagged = { ...fs, readonly: false, options: ['rw', 'nosuid', 'noatime'] };
      assert.deepEqual(await a.getMount(stage), flagged);
      await a.bindMount(stage, rw);
      await a.bindMount(stage, ro, { readonly: true });
      assert.deepEqual(await a.getMount(rw), flagged);
      assert.deepEqual(await a.getMount(ro), { ...fs, readonly: true, options: ['ro', 'nosuid', 'noatime'] });
      assert.equal(await canWrite(ro), false, 'the read-only bind refuses writes');
      assert.equal(await canWrite(stage), true, 'the staging mount stays writable');
      await a.unmount(ro);
      await a.unmount(rw);
      await a.unmount(stage);
      await a.stopArray(R1.volumeId);
    },
  },
  {
    name: 'a cancelled operation fails with CancelledError and changes nothing',
    async run({ a, driveA }) {
      const ac = new AbortController();
      ac.abort();
      const before = await a.listDrives();
      await throwsA(
        a.createPartitions(driveA, [await specAtFree(a, driveA, R1)], { signal: ac.signal }),
        CancelledError,
      );
      assert.deepEqual(await a.listDrives(), before);
    },
  },
  {
    // nodes tier, ninth session: kubelet's NodeStage deadline passed during mkfs.xfs on a starved
    // node, the cancelled call killed it, and every later stage of the volume failed to mount
    name: 'makes XFS again over an mkfs that was cut short; a finished one is kept',
    async run(env) {
      const { a, driveA, mountDir } = env;
      await a.createPartitions(driveA, [await specAtFree(a, driveA, R1, FS_SIZE)]);
      const p = await partPath(a, driveA, R1);
      const arr = await a.createArray({ volumeId: R1.volumeId, devices: [p] });
      await a.makeFilesystem(arr.devicePath);
      await env.cutMkfsShort(arr.devicePath);
      await assert.rejects(a.mount(arr.devicePath, mountDir), 'an unfinished XFS is not mounted');
      await a.makeFilesystem(arr.devicePath);
      await a.mount(arr.devicePath, mountDir);
      assert.ok(await env.canWrite(mountDir), 'the filesystem made again takes writes');
      const used = (await a.filesystemUsage(mountDir)).usedBytes;
      await a.unmount(mountDir);
      // finished: makeFilesystem leaves it as it is (its usage is what it was)
      await a.makeFilesystem(arr.devicePath);
      await a.mount(arr.devicePath, mountDir);
      assert.equal((await a.filesystemUsage(mountDir)).usedBytes, used);
      await a.unmount(mountDir);
      await a.stopArray(R1.volumeId);
    },
  },
  {
    // nodes tier, ninth session: an agent killed in a relocation's "adding" step, after sgdisk and
    // before partx; its successor failed "no block device …" on every pass
    name: 'a partition in the table the kernel was not told of is listed with a usable device',
    async run(env) {
      const { a, driveA } = env;
      const [p] = await a.createPartitions(driveA, [await specAtFree(a, driveA, R1)]);
      assert.ok(p);
      await env.forgetPartitionInKernel(p.path);
      const listed = await partPath(a, driveA, R1);
      assert.equal(listed, p.path);
      // the device is there again: md takes it
      const arr = await a.createArray({ volumeId: R1.volumeId, devices: [listed] });
      assert.equal(arr.members.length, 1);
      await a.stopArray(R1.volumeId);
    },
  },
];

/** Polls until the array is not syncing (bounded: 120 s). */
export async function waitIdle(h: Host, volumeId: string, timeoutMs = 120_000) {
  const t0 = Date.now();
  for (;;) {
    const arr = await h.getArray(volumeId);
    assert.ok(arr, `array of ${volumeId} is assembled`);
    const busy = arr.syncAction !== 'idle' || arr.members.some((m) => m.state === 'rebuilding');
    if (!busy) return arr;
    if (Date.now() - t0 > timeoutMs) throw new Error(`array ${arr.name} still syncing after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
