// Scenarios h and h2 (issue 12 §3): a member that was away (its node rebooted: the target vanished,
// md failed the leg after ctrl-loss-tmo) comes back and is re-added, so md resyncs only the chunks
// its write-intent bitmap marked while it was gone, never the whole volume. The bytes resynced are
// measured where they land (the returning partition's write counter on B) against the volume's
// size and against the bitmap's dirty chunks; sha256 of the whole array and md's own check of the
// legs prove the data. h2 does it again with the catch-up driver killed -9 between every two steps.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
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

/** What h hands on to h2: the array and the devices of its legs. */
const ctx = { md: '', partB: '', nqn: '' };

/** Sectors the kernel wrote to a block device since boot (field 7 of its stat file). */
async function sectorsWritten(dev: string): Promise<number> {
  const f = (await readFile(`/sys/class/block/${dev.slice(5)}/stat`, 'utf8')).trim().split(/\s+/);
  return Number(f[6]);
}

/** Random bytes at each offset of the device, flushed. */
async function writeAt(dev: string, offsets: number[], bytes: number): Promise<void> {
  const fh = await open(dev, 'r+');
  try {
    for (const off of offsets) await fh.write(randomBytes(bytes), 0, bytes, off);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** sha256 of the whole device, read after dropping the caches. */
async function shaOf(dev: string): Promise<string> {
  await writeFile('/proc/sys/vm/drop_caches', '3');
  const h = createHash('sha256');
  for await (const chunk of createReadStream(dev, { highWaterMark: 4 * MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * B "reboots": its target vanishes; writes while it is gone fail the leg after ctrl-loss-tmo. It
 * leaves a settled array: md clears a bitmap chunk a few daemon periods (5 s) after its last write,
 * and a chunk still dirty from before would be resynced too.
 */
async function goAway(a: Host, b: Host, offsets: number[], bytes: number): Promise<string> {
  await poll(
    async () => ((await a.readBitmap(VOL)).dirtyChunks === 0 ? true : undefined),
    'the bitmap to settle',
    120_000,
  );
  await b.unexport(ctx.nqn);
  await writeAt(ctx.md, offsets, bytes);
  await poll(
    async () => ((await a.getArray(VOL))?.degraded ? true : undefined),
    'the array to degrade',
    120_000,
  );
  return shaOf(ctx.md);
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
    await waitIdle(a, VOL, 600_000);
    await writeAt(ctx.md, [0, 100 * MiB], 4 * MiB);

    // two 3 MiB writes far apart while B is gone: two bitmap chunks
    const want = await goAway(a, b, [16 * MiB, 600 * MiB], 3 * MiB);
    const out = await measured(a, 6 * MiB, async () => {
      for (const s of catchUpSteps(a, b, plan())) await s.run();
    });
    const arr = await a.getArray(VOL);
    assert.equal(arr?.members.filter((m) => m.state === 'in_sync').length, 2);
    assert.equal(await shaOf(ctx.md), want, 'sha256 of the array after the catch-up');
    assert.equal(await mdCheck(a, VOL), 0, 'mismatch_cnt: the legs hold the same data');
    return out;
  },
};

export const h2_crashCatchUp: Scenario = {
  name: 'h2-crash-resume-catch-up',
  async run() {
    const { a, b } = nodes();
    const want = await goAway(a, b, [300 * MiB, 900 * MiB], 3 * MiB);
    const out = await measured(a, 6 * MiB, () => crashRounds(plan(), catchUpSteps(a, b, plan()).length));
    assert.equal(await shaOf(ctx.md), want, 'sha256 of the array after the catch-up');
    assert.equal(await mdCheck(a, VOL), 0, 'mismatch_cnt: the legs hold the same data');
    await a.stopArray(VOL);
    return out;
  },
};

export const CATCH_UP: Scenario[] = [h_catchUp, h2_crashCatchUp];
