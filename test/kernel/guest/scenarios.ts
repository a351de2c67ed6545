// Data-path scenarios of issue 4, run in the VM through LinuxHost, with sha256 checksums of the
// data written. They run in order in one boot and share `ctx` (the volume built in b is relocated
// in c, loses a leg in d, grows in f, is stopped in e1); e2 and g run in the next boot, after a
// "reboot" with the drives attached in another order.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { type DhchapKeys, generateDhchapSecret } from '../../../agent/host/dhchap.ts';
import { ConnectRefusedError, DeviceInUseError } from '../../../agent/host/errors.ts';
import { subsystemNqn } from '../../../agent/host/names.ts';
import { waitIdle } from '../../../agent/host/test/contract.ts';
import type { ArrayInfo, Host, Owner } from '../../../agent/host/types.ts';
import { MiB } from '../../../placement/index.ts';
import { DRIVES, diskBySerial, LISTEN_B, nodes } from './env.ts';
import {
  type CatchUpPlan,
  type RebuildPlan,
  type RelocationPlan,
  rebuildSteps,
  relocationSteps,
} from './relocate.ts';
import { kernelLogSince, SecretWatch, uptimeSec } from './secret-watch.ts';

export interface Scenario {
  name: string;
  run(): Promise<unknown>;
}

const SIZE = 320 * MiB;
const GROW = 64 * MiB;
const TMO = 5;
const VOL = 'vol-b';
const MNT = '/mnt/vol-b';
const own = (replicaId: string, volumeId = VOL): Owner => ({ volumeId, replicaId });

/** What the scenarios learn and hand on: checksums of every file written to the volume. */
const ctx = { sums: new Map<string, string>(), keys: {} as DhchapKeys };
/** Watches command lines from b's first key to the end of b2's rotation (secret-watch.ts). */
const watch = new SecretWatch();
const newKeys = (): DhchapKeys => ({
  dhchapSecret: generateDhchapSecret(),
  dhchapCtrlSecret: generateDhchapSecret(),
});

// --- helpers -------------------------------------------------------------------------------

export async function writeRandom(path: string, mib: number, sync = false): Promise<string> {
  const f = await open(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (sync ? constants.O_SYNC : 0),
  );
  const h = createHash('sha256');
  try {
    for (let i = 0; i < mib; i++) {
      const b = randomBytes(MiB);
      h.update(b);
      await f.write(b);
    }
    await f.sync();
  } finally {
    await f.close();
  }
  return h.digest('hex');
}

export async function sha(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

async function dropCaches(): Promise<void> {
  await writeFile('/proc/sys/vm/drop_caches', '3');
}

/** Re-reads every file from the devices (caches dropped) and compares its sha256. */
export async function verify(dir: string, sums: Map<string, string>): Promise<number> {
  await dropCaches();
  for (const [name, want] of sums) assert.equal(await sha(`${dir}/${name}`), want, `checksum of ${name}`);
  return sums.size;
}

async function write(dir: string, name: string, mib: number, sync = false): Promise<void> {
  ctx.sums.set(name, await writeRandom(`${dir}/${name}`, mib, sync));
}

/** md's own comparison of the legs: `check`, wait, mismatch_cnt. */
export async function mdCheck(h: Host, volumeId: string): Promise<number> {
  const arr = await h.getArray(volumeId);
  assert.ok(arr);
  await writeFile(`/sys/block/${arr.devicePath.slice(5)}/md/sync_action`, 'check');
  const done = await waitIdle(h, volumeId, 300_000);
  return done.mismatchCount;
}

async function partPath(h: Host, driveId: string, o: Owner): Promise<string> {
  const d = (await h.listDrives()).find((x) => x.id === driveId);
  const p = d?.partitions.find((x) => x.owner?.volumeId === o.volumeId && x.owner.replicaId === o.replicaId);
  assert.ok(p, `partition ${o.volumeId}/${o.replicaId} on ${driveId}`);
  return p.path;
}

async function freeStart(h: Host, driveId: string, size: number): Promise<number> {
  const d = (await h.listDrives()).find((x) => x.id === driveId);
  const f = d?.free.find((x) => x.end - x.start >= size);
  assert.ok(f, `${size} bytes free on ${driveId}`);
  return f.start;
}

/** B carves, exports and grants a replica to A; A connects. Returns A's device for it. */
async function remoteReplica(a: Host, b: Host, driveId: string, o: Owner, keys: DhchapKeys = {}) {
  const start = await freeStart(b, driveId, SIZE);
  await b.createPartitions(driveId, [{ ...o, extent: { start, end: start + SIZE } }]);
  const ex = await b.exportReplica({ ...o, devicePath: await partPath(b, driveId, o), listen: LISTEN_B });
  await b.grantHost(ex.nqn, { hostNqn: a.hostNqn, ...keys });
  const dev = await a.connect({ subsystemNqn: ex.nqn, target: LISTEN_B, ...keys, ctrlLossTmoSec: TMO });
  return { nqn: ex.nqn, dev };
}

function inSync(arr: ArrayInfo): number {
  return arr.members.filter((m) => m.state === 'in_sync').length;
}

export async function poll<T>(f: () => Promise<T | undefined>, what: string, ms: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// --- scenarios -----------------------------------------------------------------------------

const a_osDriveTail: Scenario = {
  name: 'a-os-drive-tail',
  async run() {
    const { a } = nodes();
    const disk = await diskBySerial(DRIVES.aOs);
    // the "root filesystem" partition is held open exclusively, as a mounted root is: the disk
    // is busy, so the kernel refuses a whole-table re-read and partitions must be added one by one
    const root = await open(`${disk}p2`, constants.O_RDONLY | constants.O_EXCL);
    try {
      const before = (await a.listDrives()).find((d) => d.id === DRIVES.aOs);
      assert.ok(before);
      assert.equal(before.partitions.length, 2, 'EFI + root');
      assert.ok(
        before.partitions.every((p) => p.owner === undefined),
        'foreign partitions have no owner',
      );
      const tail = before.free.at(-1);
      assert.ok(tail && tail.start >= 1024 * MiB, 'free tail after root');
      const o = own('r1', 'vol-a');
      const [p] = await a.createPartitions(DRIVES.aOs, [
        { ...o, extent: { start: tail.start, end: tail.start + SIZE } },
      ]);
      assert.ok(p);
      const sysSize = Number(await readFile(`/sys/class/block/${p.path.slice(5)}/size`, 'utf8')) * 512;
      assert.equal(sysSize, SIZE, 'the kernel sees the new partition on the busy disk');
      const arr = await a.createArray({ volumeId: 'vol-a', devices: [p.path] });
      assert.equal(arr.raidDevices, 1);
      await a.makeFilesystem(arr.devicePath);
      await a.mount(arr.devicePath, '/mnt/vol-a');
      const sums = new Map<string, string>();
      sums.set('blob', await writeRandom('/mnt/vol-a/blob', 32));
      for (let i = 0; i < 20; i++) sums.set(`f${i}`, await writeRandom(`/mnt/vol-a/f${i}`, 1));
      await assert.rejects(a.deletePartition(DRIVES.aOs, o), DeviceInUseError);
      await a.unmount('/mnt/vol-a');
      await a.stopArray('vol-a');
      const again = await a.assembleArray({ volumeId: 'vol-a', devices: [p.path] });
      assert.equal(again.uuid, arr.uuid);
      await a.mount(again.devicePath, '/mnt/vol-a');
      const files = await verify('/mnt/vol-a', sums);
      await a.unmount('/mnt/vol-a');
      await a.stopArray('vol-a');
      await a.wipePartition(DRIVES.aOs, o);
      await a.deletePartition(DRIVES.aOs, o);
      const after = (await a.listDrives()).find((d) => d.id === DRIVES.aOs);
      assert.deepEqual(after?.partitions, before.partitions, 'the OS partitions are untouched');
      return { tailStartMiB: tail.start / MiB, partition: p.path, files };
    } finally {
      await root.close();
    }
  },
};

const b_twoNodes: Scenario = {
  name: 'b-two-node-raid1',
  async run() {
    const { a, b, x } = nodes();
    watch.start();
    ctx.keys = newKeys();
    const start = await freeStart(b, DRIVES.b, SIZE);
    await b.createPartitions(DRIVES.b, [{ ...own('r2'), extent: { start, end: start + SIZE } }]);
    const ex = await b.exportReplica({
      ...own('r2'),
      devicePath: await partPath(b, DRIVES.b, own('r2')),
      listen: LISTEN_B,
    });
    await b.grantHost(ex.nqn, { hostNqn: a.hostNqn, ...ctx.keys });
    const conn = { subsystemNqn: ex.nqn, target: LISTEN_B, ctrlLossTmoSec: TMO };
    await assert.rejects(x.connect({ ...conn, ...ctx.keys }), ConnectRefusedError, 'foreign NQN refused');
    await assert.rejects(
      a.connect({ ...conn, ...ctx.keys, dhchapSecret: generateDhchapSecret() }),
      ConnectRefusedError,
      'wrong secret',
    );
    await assert.rejects(a.connect(conn), ConnectRefusedError, 'the right NQN without a secret');
    const remote = await a.connect({ ...conn, ...ctx.keys });
    const ls = await a.listDrives();
    assert.ok(!ls.some((d) => d.path === remote), 'a remote namespace is not a local drive');
    const s1 = await freeStart(a, DRIVES.a, SIZE);
    await a.createPartitions(DRIVES.a, [{ ...own('r1'), extent: { start: s1, end: s1 + SIZE } }]);
    const local = await partPath(a, DRIVES.a, own('r1'));
    const t0 = Date.now();
    const arr = await a.createArray({ volumeId: VOL, devices: [local, remote] });
    const synced = await waitIdle(a, VOL, 300_000);
    const syncMs = Date.now() - t0;
    assert.equal(inSync(synced), 2);
    const bitmap = (
      await readFile(`/sys/block/${arr.devicePath.slice(5)}/md/bitmap/location`, 'utf8')
    ).trim();
    assert.match(bitmap, /^[+-]\d+$/, 'internal bitmap');
    await a.makeFilesystem(arr.devicePath);
    await a.mount(arr.devicePath, MNT);
    await write(MNT, 'blob1', 48);
    for (let i = 0; i < 20; i++) await write(MNT, `small${i}`, 1);
    return { local, remote, md: arr.devicePath, bitmap, syncMs, files: await verify(MNT, ctx.sums) };
  },
};

/** A's controller of a subsystem (nvmeN) and its state file. */
async function controllerOf(nqn: string): Promise<string> {
  for (const c of await readdir('/sys/class/nvme')) {
    const sub = await readFile(`/sys/class/nvme/${c}/subsysnqn`, 'utf8').catch(() => '');
    if (sub.trim() === nqn) return c;
  }
  throw new Error(`no controller for ${nqn}`);
}
const ctrlState = async (c: string) => (await readFile(`/sys/class/nvme/${c}/state`, 'utf8')).trim();

/** Writes 1 MiB files (O_SYNC) into the mounted volume until stopped; every write must succeed. */
function ioLoop(dir: string): { stop: () => Promise<number> } {
  let on = true;
  let n = 0;
  const run = (async () => {
    while (on) {
      await write(dir, `io${n}`, 1, true);
      n++;
    }
  })();
  return {
    stop: async () => {
      on = false;
      await run;
      return n;
    },
  };
}

const b2_dhchapRotation: Scenario = {
  name: 'b2-dhchap-rotation',
  async run() {
    const { a, b } = nodes();
    const nqn = subsystemNqn(own('r2'));
    const spec = { subsystemNqn: nqn, target: LISTEN_B, ctrlLossTmoSec: TMO };
    const grant = (k: DhchapKeys) => b.grantHost(nqn, { hostNqn: a.hostNqn, ...k });
    const ctrl = await controllerOf(nqn);
    const dev = await a.findDeviceByNqn(nqn);
    assert.ok(dev);
    const since = await uptimeSec();
    const t0 = Date.now();
    const io = ioLoop(MNT);
    const settle = () => new Promise((r) => setTimeout(r, 3000)); // the re-authentication runs in a kernel work
    // one key per step, the target first: a re-authentication never meets a half-rotated pair
    const old = ctx.keys;
    const step1 = { ...old, dhchapSecret: generateDhchapSecret() };
    await grant(step1);
    assert.equal(await a.connect({ ...spec, ...step1 }), dev, 'host key rotated on the live controller');
    await settle();
    const step2 = { ...step1, dhchapCtrlSecret: generateDhchapSecret() };
    await grant(step2);
    assert.equal(
      await a.connect({ ...spec, ...step2 }),
      dev,
      'controller key rotated on the live controller',
    );
    await settle();
    assert.equal(await ctrlState(ctrl), 'live');
    // a reconnect authenticates from scratch with what the controller now holds: the new keys
    await writeFile(`/sys/class/nvme/${ctrl}/reset_controller`, '1');
    await poll(
      async () => ((await ctrlState(ctrl)) === 'live' ? true : undefined),
      'the reset controller',
      120_000,
    );
    const rotationMs = Date.now() - t0;
    const files = await io.stop();
    assert.ok(files > 0, 'I/O went on during the rotation');
    const arr = await a.getArray(VOL);
    assert.ok(arr && !arr.degraded && inSync(arr) === 2, 'both legs in sync: no member failed');
    const kernel = await kernelLogSince(since);
    const authLines = kernel.filter((l) => /auth|dhchap|reconnect|reset/i.test(l));
    assert.deepEqual(
      kernel.filter((l) =>
        /authentication failed|failed to setup|error \d+ setting up authentication/i.test(l),
      ),
      [],
      'no failed (re-)authentication',
    );
    // the old keys are retired: a fresh connect (another subsystem of B, same host keys) with them is refused
    const o9 = own('r9', 'vol-z');
    const s9 = await freeStart(b, DRIVES.b2, 16 * MiB);
    await b.createPartitions(DRIVES.b2, [{ ...o9, extent: { start: s9, end: s9 + 16 * MiB } }]);
    const ex9 = await b.exportReplica({
      ...o9,
      devicePath: await partPath(b, DRIVES.b2, o9),
      listen: LISTEN_B,
    });
    await b.grantHost(ex9.nqn, { hostNqn: a.hostNqn, ...step2 });
    const conn9 = { ...spec, subsystemNqn: ex9.nqn };
    await assert.rejects(a.connect({ ...conn9, ...old }), ConnectRefusedError, 'the old keys');
    await assert.rejects(a.connect({ ...conn9, ...step1 }), ConnectRefusedError, 'the old controller key');
    await assert.rejects(a.connect(conn9), ConnectRefusedError, 'the right NQN without a secret');
    assert.ok((await a.connect({ ...conn9, ...step2 })).startsWith('/dev/'), 'the new keys connect');
    await a.disconnect(ex9.nqn);
    await b.unexport(ex9.nqn);
    await b.deletePartition(DRIVES.b2, o9);
    ctx.keys = step2;
    const seen = await watch.stop();
    assert.deepEqual(seen.offences, [], 'no secret on a command line or in the kernel log');
    assert.ok(seen.scans > 10, `command lines scanned (${seen.scans} times)`);
    assert.ok(seen.commands > 20, `host commands checked (${seen.commands})`);
    const verified = await verify(MNT, ctx.sums);
    return {
      rotationMs,
      ioFiles: files,
      authLines: authLines.slice(0, 30),
      watch: { ...seen, offences: undefined },
      verified,
    };
  },
};

const c_relocation: Scenario = {
  name: 'c-relocation',
  async run() {
    const { a, b } = nodes();
    const plan: RelocationPlan = {
      volumeId: VOL,
      remote: { driveId: DRIVES.b, owner: own('r2'), nqn: subsystemNqn(own('r2')) },
      local: { driveId: DRIVES.aOs, owner: own('r3'), sizeBytes: SIZE },
    };
    const done: string[] = [];
    let writer: Promise<void> | undefined;
    for (const s of relocationSteps(a, b, plan)) {
      await s.run();
      done.push(s.name);
      // keep writing while the new member resyncs
      if (s.name === 'raid-devices-up') writer = write(MNT, 'blob2', 16);
    }
    await writer;
    const arr = await a.getArray(VOL);
    assert.ok(arr);
    assert.equal(arr.raidDevices, 2);
    assert.equal(inSync(arr), 2);
    assert.equal(await a.findDeviceByNqn(plan.remote.nqn), undefined, 'disconnected');
    assert.deepEqual(await b.listExports(), [], 'nothing exported');
    const bDrive = (await b.listDrives()).find((d) => d.id === DRIVES.b);
    assert.equal(bDrive?.partitions.length, 0, "B's partition freed");
    const files = await verify(MNT, ctx.sums);
    const mismatch = await mdCheck(a, VOL);
    assert.equal(mismatch, 0, 'mismatch_cnt');
    return { steps: done, members: arr.members.map((m) => m.devicePath), files, mismatch };
  },
};

const d_remoteLost: Scenario = {
  name: 'd-remote-lost-rebuild',
  async run() {
    const { a, b } = nodes();
    const r4 = await remoteReplica(a, b, DRIVES.b2, own('r4'));
    await a.addMember(VOL, r4.dev);
    await a.setRaidDevices(VOL, 3);
    assert.equal(inSync(await waitIdle(a, VOL, 300_000)), 3);
    // the target goes away under A (no disconnect): I/O to it fails after ctrl-loss-tmo
    const t0 = Date.now();
    await b.unexport(r4.nqn);
    await write(MNT, 'blob3', 8, true);
    const degraded = await poll(
      async () => {
        const arr = await a.getArray(VOL);
        const m = arr?.members.find((x) => x.devicePath === r4.dev);
        return arr && (!m || m.state === 'faulty') && arr.degraded ? arr : undefined;
      },
      'the array to mark the lost member faulty',
      120_000,
    );
    const degradedMs = Date.now() - t0;
    assert.ok(degradedMs < (TMO + 50) * 1000, `degraded within bounds (${degradedMs} ms)`);
    assert.equal(inSync(degraded), 2, 'two legs still in sync');
    await verify(MNT, ctx.sums);
    await a.removeMember(VOL, r4.dev);
    await a.disconnect(r4.nqn);
    assert.equal(await a.findDeviceByNqn(r4.nqn), undefined);
    await b.wipePartition(DRIVES.b2, own('r4'));
    await b.deletePartition(DRIVES.b2, own('r4'));
    // rebuild onto a new member (raid-devices stays 3: the new member fills the empty slot)
    const r5 = await remoteReplica(a, b, DRIVES.b, own('r5'), ctx.keys);
    const t1 = Date.now();
    await a.addMember(VOL, r5.dev);
    const rebuilt = await waitIdle(a, VOL, 300_000);
    const rebuildMs = Date.now() - t1;
    assert.equal(inSync(rebuilt), 3);
    assert.equal(rebuilt.degraded, false);
    const files = await verify(MNT, ctx.sums);
    assert.equal(await mdCheck(a, VOL), 0, 'mismatch_cnt');
    return { degradedMs, rebuildMs, files, members: rebuilt.members.map((m) => m.devicePath) };
  },
};

const f_grow: Scenario = {
  name: 'f-online-grow',
  async run() {
    const { a, b } = nodes();
    const before = await a.filesystemUsage(MNT);
    const arr0 = await a.getArray(VOL);
    assert.ok(arr0);
    for (const [h, drive, r] of [
      [a, DRIVES.a, 'r1'],
      [a, DRIVES.aOs, 'r3'],
      [b, DRIVES.b, 'r5'],
    ] as const) {
      const d = (await h.listDrives()).find((x) => x.id === drive);
      const p = d?.partitions.find((x) => x.owner?.replicaId === r);
      assert.ok(p, `${r} on ${drive}`);
      await h.growPartition(drive, own(r), p.end + GROW);
    }
    // A learns the remote namespace's new size from the target (namespace-changed event)
    const remote = await a.findDeviceByNqn(subsystemNqn(own('r5')));
    assert.ok(remote);
    await poll(
      async () =>
        Number(await readFile(`/sys/block/${remote.slice(5)}/size`, 'utf8')) * 512 >= SIZE + GROW
          ? true
          : undefined,
      'the remote namespace to grow',
      30_000,
    );
    const arr = await a.growArray(VOL);
    assert.ok(arr.sizeBytes > arr0.sizeBytes, `md grew ${arr0.sizeBytes} -> ${arr.sizeBytes}`);
    await waitIdle(a, VOL, 300_000);
    await a.growFilesystem(MNT);
    const after = await a.filesystemUsage(MNT);
    assert.ok(after.sizeBytes > before.sizeBytes, `xfs grew ${before.sizeBytes} -> ${after.sizeBytes}`);
    await write(MNT, 'blob4', 8);
    const files = await verify(MNT, ctx.sums);
    assert.equal(await mdCheck(a, VOL), 0, 'mismatch_cnt');
    return { mdBytes: [arr0.sizeBytes, arr.sizeBytes], fsBytes: [before.sizeBytes, after.sizeBytes], files };
  },
};

/** State for the next boot: where the members are (by drive id and owner, never by path). */
interface RebootState {
  sums: [string, string][];
  local: { driveId: string; owner: Owner; path: string }[];
  remote: { driveId: string; owner: Owner; path: string; devOnA: string };
  uuid: string;
}

const e1_prepare: Scenario = {
  name: 'e1-prepare-reboot',
  async run(): Promise<RebootState> {
    const { a, b } = nodes();
    const arr = await a.getArray(VOL);
    assert.ok(arr);
    const remoteDev = await a.findDeviceByNqn(subsystemNqn(own('r5')));
    assert.ok(remoteDev);
    const state: RebootState = {
      sums: [...ctx.sums],
      local: [
        { driveId: DRIVES.a, owner: own('r1'), path: await partPath(a, DRIVES.a, own('r1')) },
        { driveId: DRIVES.aOs, owner: own('r3'), path: await partPath(a, DRIVES.aOs, own('r3')) },
      ],
      remote: {
        driveId: DRIVES.b,
        owner: own('r5'),
        path: await partPath(b, DRIVES.b, own('r5')),
        devOnA: remoteDev,
      },
      uuid: arr.uuid,
    };
    await a.unmount(MNT);
    await a.stopArray(VOL);
    assert.equal(await a.getArray(VOL), undefined);
    await a.disconnect(subsystemNqn(own('r5')));
    return state;
  },
};

const e2_reassemble: Scenario = {
  name: 'e2-reassemble-after-reboot',
  async run() {
    const { a, b } = nodes();
    const state = JSON.parse(await readFile('/project/state.json', 'utf8')) as RebootState;
    ctx.sums = new Map(state.sums);
    // exports are not persistent: B exports its replica again, found by owner
    const rPath = await partPath(b, state.remote.driveId, state.remote.owner);
    const ex = await b.exportReplica({ ...state.remote.owner, devicePath: rPath, listen: LISTEN_B });
    await b.grantHost(ex.nqn, { hostNqn: a.hostNqn });
    const remote = await a.connect({ subsystemNqn: ex.nqn, target: LISTEN_B, ctrlLossTmoSec: TMO });
    const locals: string[] = [];
    for (const l of state.local) locals.push(await partPath(a, l.driveId, l.owner));
    const renamed = [
      ...state.local.map((l, i) => [l.path, locals[i]]),
      [state.remote.path, rPath],
      [state.remote.devOnA, remote],
    ].filter(([x, y]) => x !== y);
    const arr = await a.assembleArray({ volumeId: VOL, devices: [...locals, remote] });
    assert.equal(arr.uuid, state.uuid);
    assert.equal(inSync(await waitIdle(a, VOL, 300_000)), 3);
    await a.mount(arr.devicePath, MNT);
    const files = await verify(MNT, ctx.sums);
    assert.equal(await mdCheck(a, VOL), 0, 'mismatch_cnt');
    return { renamed, files };
  },
};

/** Runs the driver process; when killAfter is set, kill -9 it right after that step is reported. */
function driver(
  plan: RelocationPlan | RebuildPlan | CatchUpPlan,
  killAfter?: number,
): Promise<{ steps: string[]; killed: boolean; crashed?: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, MESHSTOR_PAUSE: '1' };
    const p = spawn(process.execPath, ['test/kernel/guest/driver.ts', JSON.stringify(plan)], {
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const steps: string[] = [];
    let killed = false;
    createInterface({ input: p.stdout }).on('line', (line) => {
      const m = /^@@STEP (\d+) (\S+)/.exec(line);
      if (!m) return;
      steps.push(m[2] as string);
      if (killAfter !== undefined && Number(m[1]) >= killAfter && !killed) {
        killed = true;
        p.kill('SIGKILL');
      } else p.stdin.write('go\n');
    });
    p.on('error', reject);
    p.on('close', (code, sig) => {
      if (killed && sig === 'SIGKILL') resolve({ steps, killed });
      else if (code === 0) resolve({ steps, killed });
      // died by a signal we did not send (Node has crashed at startup in the TCG guest): an unplanned
      // crash at an unknown point, which the next driver must resume from like any other
      else if (sig) resolve({ steps, killed, crashed: `${sig} after [${steps.join(', ')}]` });
      else reject(new Error(`driver exited ${code} after ${steps.join(', ')}`));
    });
  });
}

/** kill -9 after step 1, then (a fresh driver resuming from observed state) after step 2, ... */
export async function crashRounds(
  plan: RelocationPlan | RebuildPlan | CatchUpPlan,
  n: number,
): Promise<string[]> {
  const rounds: string[] = [];
  for (let k = 1; k < n; k++) {
    const r = await driver(plan, k);
    if (r.crashed) {
      rounds.push(`unplanned crash: ${r.crashed}`);
      k--; // the same boundary again, with a fresh driver
      // V8 aborts at startup now and then under TCG (a fatal check in its code space, never seen
      // on real CPUs); four in one g2 run were seen once, so the bound only stops a loop
      assert.ok(rounds.filter((x) => x.startsWith('unplanned')).length <= 8, 'at most 8 unplanned crashes');
      continue;
    }
    assert.ok(r.killed, `driver round ${k} was killed`);
    rounds.push(`killed after ${r.steps.at(-1)}`);
  }
  let last = await driver(plan);
  if (last.crashed) {
    rounds.push(`unplanned crash: ${last.crashed}`);
    last = await driver(plan);
  }
  assert.equal(last.steps.length, n, 'the final run completes every step');
  rounds.push('completed');
  return rounds;
}

const g_crashResume: Scenario = {
  name: 'g-crash-resume',
  async run() {
    const { a, b } = nodes();
    const plan: RelocationPlan = {
      volumeId: VOL,
      remote: { driveId: DRIVES.b, owner: own('r5'), nqn: subsystemNqn(own('r5')) },
      local: { driveId: DRIVES.a, owner: own('r6'), sizeBytes: SIZE + GROW },
    };
    const rounds = await crashRounds(plan, relocationSteps(a, b, plan).length);
    const arr = await a.getArray(VOL);
    assert.ok(arr);
    assert.equal(arr.raidDevices, 3);
    assert.equal(inSync(arr), 3);
    assert.deepEqual(await b.listExports(), [], 'no export leaked');
    assert.equal(await a.findDeviceByNqn(plan.remote.nqn), undefined, 'no connection leaked');
    const bParts = (await b.listDrives()).flatMap((d) => d.partitions);
    assert.deepEqual(bParts, [], 'no partition leaked on B');
    const aParts = (await a.listDrives())
      .flatMap((d) => d.partitions)
      .filter((p) => p.owner?.volumeId === VOL);
    assert.equal(aParts.length, 3, 'r1, r3 and r6, all members');
    const holders = await readdir(`/sys/block/${arr.devicePath.slice(5)}/slaves`);
    assert.equal(holders.length, 3);
    const files = await verify(MNT, ctx.sums);
    assert.equal(await mdCheck(a, VOL), 0, 'mismatch_cnt');
    return { rounds, files };
  },
};

export const SCENARIOS: Scenario[] = [
  a_osDriveTail,
  b_twoNodes,
  b2_dhchapRotation,
  c_relocation,
  d_remoteLost,
  f_grow,
  e1_prepare,
];
const g2_crashRebuild: Scenario = {
  name: 'g2-crash-resume-rebuild',
  async run() {
    const { a, b } = nodes();
    const size = SIZE + GROW;
    // a remote fourth leg, then its target vanishes
    const s7 = await freeStart(b, DRIVES.b, size);
    await b.createPartitions(DRIVES.b, [{ ...own('r7'), extent: { start: s7, end: s7 + size } }]);
    const ex = await b.exportReplica({
      ...own('r7'),
      devicePath: await partPath(b, DRIVES.b, own('r7')),
      listen: LISTEN_B,
    });
    await b.grantHost(ex.nqn, { hostNqn: a.hostNqn });
    const dev7 = await a.connect({ subsystemNqn: ex.nqn, target: LISTEN_B, ctrlLossTmoSec: TMO });
    await a.addMember(VOL, dev7);
    await a.setRaidDevices(VOL, 4);
    assert.equal(inSync(await waitIdle(a, VOL, 300_000)), 4);
    await b.unexport(ex.nqn);
    await write(MNT, 'blob5', 4, true);
    await poll(
      async () => ((await a.getArray(VOL))?.degraded ? true : undefined),
      'the array to degrade',
      120_000,
    );
    const plan: RebuildPlan = {
      volumeId: VOL,
      lost: { driveId: DRIVES.b, owner: own('r7'), nqn: ex.nqn },
      fresh: { driveId: DRIVES.b2, owner: own('r8'), sizeBytes: size },
      listen: LISTEN_B,
      ctrlLossTmoSec: TMO,
    };
    const rounds = await crashRounds(plan, rebuildSteps(a, b, plan).length);
    const arr = await a.getArray(VOL);
    assert.ok(arr);
    assert.equal(arr.raidDevices, 4);
    assert.equal(inSync(arr), 4);
    assert.equal(arr.degraded, false);
    assert.deepEqual(
      (await b.listExports()).map((e) => e.nqn),
      [subsystemNqn(own('r8'))],
      'only the fresh replica is exported',
    );
    const bParts = (await b.listDrives()).flatMap((d) => d.partitions.map((p) => p.owner?.replicaId));
    assert.deepEqual(bParts, ['r8'], 'the lost replica was freed, nothing leaked');
    const files = await verify(MNT, ctx.sums);
    assert.equal(await mdCheck(a, VOL), 0, 'mismatch_cnt');
    return { rounds, files };
  },
};

/** The NVMe-oF authentication cases alone (`node test/kernel/run.ts dhchap`, after the contract's DH cases). */
export const DHCHAP: Scenario[] = [b_twoNodes, b2_dhchapRotation];

/** Run in the second boot, in this order. */
export const AFTER_REBOOT: Scenario[] = [e2_reassemble, g_crashResume, g2_crashRebuild];
