// Scenarios h and h2 (issue 12 §3): a member that was away (its node rebooted: the target vanished,
// md failed the leg after ctrl-loss-tmo) comes back and is re-added, so md resyncs only the chunks
// its write-intent bitmap marked while it was gone, never the whole volume. The bytes resynced are
// measured where they land (the returning partition's write counter on B) against the volume's
// size and against the bitmap's dirty chunks. sha256 of every region written, read back through the
// array and straight from B's partition (past md's data offset), and md's own check of the legs at
// the end (every block of both legs compared) prove the data. h2 does it again with the catch-up
// driver killed -9 between every two steps. The full reads are kept to one md check: under TCG a
// pass over a 1 GiB volume costs minutes.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { exec } from '../../../agent/host/exec.ts';
import { waitIdle } from '../../../agent/host/test/contract.ts';
import type { BitmapInfo, Host, Owner } from '../../../agent/host/types.ts';
import { MiB } from '../../../placement/index.ts';
import { DRIVES, LISTEN_B, nodes, reset } from './env.ts';
import { type CatchUpPlan, catchUpSteps } from './relocate.ts';
import { crashRounds, mdCheck, poll, type Scenario } from './scenarios.ts';

const VOL = 'vol-h';
const SIZE = 1024 * MiB;
const TMO = 5;
const own = (replicaId: string): Owner => ({ volumeId: VOL, replicaId });
const LOCAL = own('r1');
const AWAY = own('r2');

/** What h hands on to h2: the array, B's partition, and every region written with its sha256. */
const ctx = { md: '', partB: '', nqn: '', regions: new Map<number, { bytes: number; sha: string }>() };

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Sectors the kernel wrote to a block device since boot (field 7 of its stat file). */
async function sectorsWritten(dev: string): Promise<number> {
  const f = (await readFile(`/sys/class/block/${dev.slice(5)}/stat`, 'utf8')).trim().split(/\s+/);
  return Number(f[6]);
}

/** Random bytes at each offset of the array, flushed; their sums are kept in ctx.regions. */
async function writeAt(offsets: number[], bytes: number): Promise<void> {
  const fh = await open(ctx.md, 'r+');
  try {
    for (const off of offsets) {
      const b = randomBytes(bytes);
      await fh.write(b, 0, bytes, off);
      ctx.regions.set(off, { bytes, sha: sha(b) });
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The bytes where md keeps data on a member (`mdadm --examine`: Data Offset, in sectors). */
async function dataOffset(dev: string): Promise<number> {
  const r = await exec('mdadm', ['--examine', dev], { timeoutMs: 60_000 });
  const m = /Data Offset : (\d+) sectors/.exec(r.stdout);
  assert.ok(m, `data offset of ${dev}`);
  return Number(m[1]) * 512;
}

/** Every region written so far, read after dropping the caches from `dev` (at `base`), matches its sum. */
async function verifyRegions(dev: string, base: number): Promise<number> {
  await writeFile('/proc/sys/vm/drop_caches', '3');
  const fh = await open(dev, 'r');
  try {
    for (const [off, r] of ctx.regions) {
      const b = Buffer.alloc(r.bytes);
      await fh.read(b, 0, r.bytes, base + off);
      assert.equal(sha(b), r.sha, `sha256 of ${r.bytes} bytes at ${off} on ${dev}`);
    }
  } finally {
    await fh.close();
  }
  return ctx.regions.size;
}

/** The array and B's own copy both hold every region written. */
async function verifyBoth(): Promise<{ regions: number }> {
  await verifyRegions(ctx.md, 0);
  return { regions: await verifyRegions(ctx.partB, await dataOffset(ctx.partB)) };
}

/**
 * B "reboots": its target vanishes; writes while it is gone fail the leg after ctrl-loss-tmo. It
 * leaves a settled array: md clears a bitmap chunk a few daemon periods (5 s) after its last write,
 * and a chunk still dirty from before would be resynced too.
 */
async function goAway(a: Host, b: Host, offsets: number[], bytes: number): Promise<void> {
  await poll(
    async () => ((await a.readBitmap(VOL)).dirtyChunks === 0 ? true : undefined),
    'the bitmap to settle',
    120_000,
  );
  await b.unexport(ctx.nqn);
  await writeAt(offsets, bytes);
  await poll(
    async () => ((await a.getArray(VOL))?.degraded ? true : undefined),
    'the array to degrade',
    120_000,
  );
}

function plan(): CatchUpPlan {
  return {
    volumeId: VOL,
    away: { driveId: DRIVES.b, owner: AWAY, nqn: ctx.nqn },
    listen: LISTEN_B,
    ctrlLossTmoSec: TMO,
  };
}

/** Measures one catch-up run by `catchUp` and checks it against the bitmap and the volume size. */
async function measured(a: Host, written: number, catchUp: () => Promise<unknown>) {
  const bitmap: BitmapInfo = await a.readBitmap(VOL);
  const toSync = Math.min(bitmap.dirtyChunks * bitmap.chunkBytes, SIZE);
  const before = await sectorsWritten(ctx.partB);
  const t0 = Date.now();
  const run = await catchUp();
  const ms = Date.now() - t0;
  const resynced = ((await sectorsWritten(ctx.partB)) - before) * 512;
  // the data written while away, at least; the dirty chunks (and md's superblock and bitmap
  // updates) at most; far below the volume: a full rebuild would write all of it
  assert.ok(resynced >= written, `resynced ${resynced} bytes, written while away ${written}`);
  assert.ok(resynced <= toSync + MiB, `resynced ${resynced} bytes, bitmap dirty ${toSync}`);
  assert.ok(resynced < SIZE / 4, `resynced ${resynced} of ${SIZE}: not a rebuild`);
  return {
    volumeBytes: SIZE,
    writtenWhileAway: written,
    bitmapChunkBytes: bitmap.chunkBytes,
    dirtyChunks: bitmap.dirtyChunks,
    bitmapDirtyBytes: toSync,
    resyncedBytes: resynced,
    catchUpMs: ms,
    run,
  };
}

export const h_catchUp: Scenario = {
  name: 'h-catch-up',
  async run() {
    await reset();
    const { a, b } = nodes();
    const [pa] = await a.createPartitions(DRIVES.a, [{ ...LOCAL, extent: { start: MiB, end: MiB + SIZE } }]);
    const [pb] = await b.createPartitions(DRIVES.b, [{ ...AWAY, extent: { start: MiB, end: MiB + SIZE } }]);
    assert.ok(pa && pb);
    ctx.partB = pb.path;
    const ex = await b.exportReplica({ ...AWAY, devicePath: pb.path, listen: LISTEN_B });
    ctx.nqn = ex.nqn;
    await b.grantHost(ex.nqn, { hostNqn: a.hostNqn });
    const remote = await a.connect({ subsystemNqn: ex.nqn, target: LISTEN_B, ctrlLossTmoSec: TMO });
    const created = await a.createArray({ volumeId: VOL, devices: [pa.path, remote] });
    ctx.md = created.devicePath;
    const t0 = Date.now();
    await waitIdle(a, VOL, 900_000);
    const firstSyncMs = Date.now() - t0;
    await writeAt([0, 100 * MiB], 4 * MiB);

    // two 3 MiB writes far apart while B is gone: two bitmap chunks
    await goAway(a, b, [16 * MiB, 600 * MiB], 3 * MiB);
    const out = await measured(a, 6 * MiB, async () => {
      for (const s of catchUpSteps(a, b, plan())) await s.run();
    });
    const arr = await a.getArray(VOL);
    assert.equal(arr?.members.filter((m) => m.state === 'in_sync').length, 2);
    return { ...out, ...(await verifyBoth()), firstSyncMs };
  },
};

export const h2_crashCatchUp: Scenario = {
  name: 'h2-crash-resume-catch-up',
  async run() {
    const { a, b } = nodes();
    await goAway(a, b, [300 * MiB, 900 * MiB], 3 * MiB);
    const out = await measured(a, 6 * MiB, () => crashRounds(plan(), catchUpSteps(a, b, plan()).length));
    const regions = await verifyBoth();
    assert.equal(await mdCheck(a, VOL), 0, 'mismatch_cnt: the legs hold the same data');
    await a.stopArray(VOL);
    return { ...out, ...regions };
  },
};

export const CATCH_UP: Scenario[] = [h_catchUp, h2_crashCatchUp];
