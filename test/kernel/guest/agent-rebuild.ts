// Scenario rb (issue 12 §2): node loss and automatic rebuild by the product code on the real
// kernel. The three nodes of scenarios s and r (LinuxHost "nodes" in the guest, each with its
// agent's pass) and the controller's rebuild and relocation passes over the shared store, the
// nodes' heartbeats given by the test. A block volume on n1 and n2 is staged on n1; n2 is gone for
// good (its target vanishes, its agent and heartbeat stop). n1's md fails the leg after
// ctrl-loss-tmo and the record shows Degraded; once n2's heartbeat is older than the grace period
// the controller places a new member on n3 (the only node left), n1's agent connects it over
// nvme-tcp and adds it with the array's resync capped (md's sync_speed_max), md resyncs it
// (Rebuilding n%), and the lost member is Removed. sha256 of every region written (before and
// while degraded) is read back through the array and straight from n3's new copy, and md's check
// compares the legs. Then n2 returns: its agent exports nothing of the volume and wipes its old
// partition, and the controller drops the member and its ledger claim. The bytes md wrote to n3's
// partition and the rebuild's wall time are measured.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { exec } from '../../../agent/host/exec.ts';
import { subsystemNqn } from '../../../agent/host/names.ts';
import { waitIdle } from '../../../agent/host/test/contract.ts';
import { HostInventory } from '../../../agent/host-inventory.ts';
import { partitionOf } from '../../../agent/owners.ts';
import { agentPass } from '../../../agent/pass.ts';
import { Allocator } from '../../../controller/allocator.ts';
import { LedgerReconciler } from '../../../controller/ledger-reconciler.ts';
import { RebuildReconciler } from '../../../controller/rebuild.ts';
import { RelocationReconciler } from '../../../controller/relocation.ts';
import { largestVolumeFor, MiB } from '../../../placement/index.ts';
import { readyCondition } from '../../../state/conditions.ts';
import { KeyedLock } from '../../../state/lock.ts';
import type { Scenario } from './scenarios.ts';
import { mdCheck, poll } from './scenarios.ts';
import { cluster, NODES, type NodeName, record, since, states } from './stage.ts';

const VOL = 'vol-rb';
/** Past scenario r's members (512–832 MiB) when both run in one boot; n3's new member goes where placement puts it. */
const START = 840 * MiB;
const EXTENT = 160 * MiB;
const STAGE = '/mnt/stage-rb';
/** The agent's resync cap for the rebuild (KiB/s): what --resync-max-kibps sets. */
const RESYNC_KIBPS = 16 * 1024;
const GRACE_MS = 10 * 60_000;
const own = (replicaId: string) => ({ volumeId: VOL, replicaId });

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const regions = new Map<number, { bytes: number; sha: string }>();

async function writeAt(dev: string, offsets: number[], bytes: number): Promise<void> {
  const fh = await open(dev, 'r+');
  try {
    for (const off of offsets) {
      const b = randomBytes(bytes);
      await fh.write(b, 0, bytes, off);
      regions.set(off, { bytes, sha: sha(b) });
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Every region written, read from `dev` at `base` after dropping the caches, matches its sha256. */
async function verifyRegions(dev: string, base: number): Promise<number> {
  await writeFile('/proc/sys/vm/drop_caches', '3');
  const fh = await open(dev, 'r');
  try {
    for (const [off, r] of regions) {
      const b = Buffer.alloc(r.bytes);
      await fh.read(b, 0, r.bytes, base + off);
      assert.equal(sha(b), r.sha, `sha256 of ${r.bytes} bytes at ${off} on ${dev}`);
    }
  } finally {
    await fh.close();
  }
  return regions.size;
}

async function dataOffset(dev: string): Promise<number> {
  const r = await exec('mdadm', ['--examine', dev], { timeoutMs: 60_000 });
  const m = /Data Offset : (\d+) sectors/.exec(r.stdout);
  assert.ok(m, `data offset of ${dev}`);
  return Number(m[1]) * 512;
}

/** Sectors the kernel wrote to a block device since boot (field 7 of its stat file). */
async function sectorsWritten(dev: string): Promise<number> {
  const f = (await readFile(`/sys/class/block/${dev.slice(5)}/stat`, 'utf8')).trim().split(/\s+/);
  return Number(f[6]);
}

const blockStage = {
  volume_id: VOL,
  staging_target_path: STAGE,
  volume_capability: { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } },
  volume_context: {},
};

export const rb_agentRebuild: Scenario = {
  name: 'rb-agent-rebuild',
  async run() {
    const c = cluster();
    const { n1, n2, n3 } = c.nodes;
    const out: Record<string, unknown> = {};
    const inventory = {
      nodes: async () =>
        (
          await Promise.all(
            NODES.map((n) => new HostInventory(n, undefined, c.nodes[n].host, c.store).nodes()),
          )
        ).flat(),
    };
    const allocator = new Allocator({ store: c.store, inventory });
    const alive = new Set<NodeName>(NODES);
    const beats = new Map<string, number>(NODES.map((n) => [n, Date.now()]));
    const heartbeats = async () => {
      for (const n of alive) beats.set(n, Date.now());
      return new Map(beats);
    };
    const rebuild = new RebuildReconciler(allocator, { heartbeats, times: { graceMs: GRACE_MS } });
    const relocation = new RelocationReconciler(allocator);
    /** The live agents' passes; n1's with the resync cap the agent flag gives. */
    const agents = async () => {
      const failures: string[] = [];
      for (const n of NODES.filter((x) => alive.has(x))) {
        const node = c.nodes[n];
        const r = await agentPass({
          nodeName: n,
          host: node.host,
          store: c.store,
          listen: node.listen,
          locks: new KeyedLock(),
          peers: c.peers,
          resyncMaxKibPerSec: RESYNC_KIBPS,
        });
        failures.push(...r.failures.map((f) => `${n} ${f.step} ${f.volume}: ${f.reason}`));
      }
      return failures;
    };

    // 1. a block volume on n1 and n2, staged on n1 (its own member + n2's over nvme-tcp); claimed
    const placed = record(VOL, START);
    placed.sizeBytes = largestVolumeFor(EXTENT);
    for (const r of placed.replicas) r.extent.end = START + EXTENT;
    await c.store.create(placed);
    await new LedgerReconciler(allocator).pass(); // adopts the record's extents
    let t0 = Date.now();
    await c.withAgents(n1.svc.nodeStageVolume(blockStage));
    const created = await waitIdle(n1.host, VOL, 300_000);
    out.stageMs = since(t0);
    const md = created.devicePath;
    await writeAt(md, [0, 40 * MiB, 100 * MiB], 4 * MiB);

    // 2. n2 is gone: target vanishes, agent and heartbeat stop. A write while its leg is lost
    //    completes once md fails the leg (ctrl-loss-tmo); the record shows Degraded.
    alive.delete('n2');
    c.peers.setReady('n2', false);
    await n2.host.unexport(subsystemNqn(own('r2')));
    t0 = Date.now();
    await writeAt(md, [20 * MiB, 120 * MiB], 2 * MiB);
    await poll(async () => ((await n1.host.getArray(VOL))?.degraded ? true : undefined), 'degraded', 300_000);
    out.degradedAfterMs = since(t0);
    await agents();
    const degraded = await c.store.get(VOL);
    assert.ok(degraded);
    assert.equal(readyCondition(degraded).reason, 'Degraded');
    const grace = await rebuild.pass();
    assert.deepEqual(grace.started, [], 'nothing rebuilt within the grace period');
    assert.equal(grace.grace[0]?.node, 'n2');

    // 3. n2's last heartbeat is older than the grace period: the controller starts the rebuild
    beats.set('n2', Date.now() - GRACE_MS - 1000);
    const first = await rebuild.pass();
    assert.equal(first.started.length, 1, JSON.stringify(first));
    out.started = first.started[0]?.message;
    let rec = await c.store.get(VOL);
    const to = rec?.replicas.find((x) => x.id === rec?.relocation?.toReplica);
    assert.ok(rec && to, 'a new member in the record');
    assert.equal(to.node, 'n3');
    const reasons = ['Degraded'];
    const progress: { s: number; reason: string; pct: string }[] = [];
    let n3Part: string | undefined;
    let before = 0;
    const capSeen: string[] = [];
    t0 = Date.now();
    for (let i = 0; ; i++) {
      assert.ok(since(t0) < 900_000, `rebuild not finished after ${i} rounds`);
      const failures = await agents();
      assert.deepEqual(
        failures.filter((f) => !/not exported|waiting/.test(f)),
        [],
        'no agent step failed',
      );
      if (!n3Part) {
        n3Part = partitionOf(await n3.host.listDrives(), own(to.id))?.path;
        if (n3Part) before = await sectorsWritten(n3Part);
      }
      await relocation.pass();
      await rebuild.pass();
      rec = await c.store.get(VOL);
      assert.ok(rec);
      const cond = readyCondition(rec);
      if (reasons.at(-1) !== cond.reason) reasons.push(cond.reason ?? '?');
      progress.push({
        s: Math.round(since(t0) / 100) / 10,
        reason: cond.reason ?? '?',
        pct: cond.message ?? '',
      });
      const a = await n1.host.getArray(VOL);
      if (a?.syncAction === 'recover')
        capSeen.push((await readFile(`/sys/block/${md.slice(5)}/md/sync_speed_max`, 'utf8')).trim());
      // the rebuild is over once the lost member is Removed and the move no longer holds the volume
      if (!rec.relocation && rec.replicas.some((x) => x.id === 'r2' && x.state === 'Removed')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const rebuildMs = since(t0);
    assert.ok(n3Part, "n3's partition was made");
    const bytes = ((await sectorsWritten(n3Part)) - before) * 512;
    out.rebuild = {
      ms: rebuildMs,
      bytesToN3: bytes,
      volumeBytes: rec.sizeBytes,
      resyncCapKiBps: RESYNC_KIBPS,
    };
    out.reasons = reasons;
    out.progress = progress.filter((p, i) => i === 0 || p.pct !== progress[i - 1]?.pct).slice(0, 40);
    assert.deepEqual(
      reasons.filter((r, i) => reasons.indexOf(r) === i),
      ['Degraded', 'Rebuilding', 'InSync'],
    );
    // the agent's cap stays on the array after the resync: md shows it as "<KiB/s> (local)"
    const cap = (await readFile(`/sys/block/${md.slice(5)}/md/sync_speed_max`, 'utf8')).trim();
    assert.equal(cap, `${RESYNC_KIBPS} (local)`, "the array's sync_speed_max");
    assert.ok(
      capSeen.every((x) => x === cap),
      capSeen.join(),
    );
    out.cap = cap;
    out.capSeenWhileRecovering = capSeen.length;
    // md copied the whole volume onto n3 (a full rebuild, not a catch-up)
    assert.ok(bytes >= rec.sizeBytes, `${bytes} bytes written to n3's partition, volume ${rec.sizeBytes}`);

    // 4. the kernel's view and the data: n1's array holds its own partition and n3's, in sync
    const after = await waitIdle(n1.host, VOL, 300_000);
    assert.equal(after.uuid, created.uuid, 'the same array');
    assert.equal(after.raidDevices, 2);
    assert.equal(after.degraded, false);
    const n3Dev = await n1.host.findDeviceByNqn(subsystemNqn(own(to.id)));
    assert.ok(n3Dev, "n1 is connected to n3's new member");
    assert.deepEqual(
      after.members.map((m) => m.state),
      ['in_sync', 'in_sync'],
    );
    assert.ok(after.members.some((m) => m.devicePath === n3Dev));
    assert.equal(await n1.host.findDeviceByNqn(subsystemNqn(own('r2'))), undefined, 'the lost leg is gone');
    out.after = states(after);
    out.regionsThroughArray = await verifyRegions(md, 0);
    out.regionsOnN3 = await verifyRegions(n3Part, await dataOffset(n3Part));
    out.mismatch = await mdCheck(n1.host, VOL);
    assert.equal(out.mismatch, 0, 'mismatch_cnt');

    // 5. n2 returns: it exports nothing of the volume, wipes the old partition; the controller
    //    drops the member and its claim
    alive.add('n2');
    c.peers.setReady('n2', true);
    assert.ok(partitionOf(await n2.host.listDrives(), own('r2')), "n2's old partition is still there");
    t0 = Date.now();
    for (let i = 0; i < 10; i++) {
      await agents();
      await relocation.pass();
      const p = await rebuild.pass();
      if (p.released.includes(VOL)) break;
    }
    out.releaseMs = since(t0);
    assert.deepEqual(
      (await n2.host.listExports()).filter((e) => e.nqn.includes(VOL)),
      [],
      'n2 exports nothing of the volume',
    );
    assert.equal(
      partitionOf(await n2.host.listDrives(), own('r2')),
      undefined,
      "n2's old partition is wiped",
    );
    rec = await c.store.get(VOL);
    assert.deepEqual(
      rec?.replicas.map((x) => `${x.id}@${x.node}:${x.state}`),
      ['r1@n1:InSync', `${to.id}@n3:InSync`],
    );
    const n2Claims = (await c.store.ledger.read('n2')).claims.filter((x) => x.volume === VOL);
    assert.deepEqual(n2Claims, [], "n2's claim released");
    out.regionsAfterReturn = await verifyRegions(md, 0);
    await n1.svc.nodeUnstageVolume({ volume_id: VOL, staging_target_path: STAGE });
    return out;
  },
};
