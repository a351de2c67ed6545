// Scenario sf (issue 12 §1, ADR 0006): no acknowledged write is lost when the attached node is cut
// off. Two "nodes" in the guest's one kernel (GuestNode, as in scenario s): n1 runs the volume's
// RAID1 (its own partition + n2's over nvme-tcp) and holds its right to write (WriteRight over
// leases in memory: the "apiserver"). A writer process on n1 writes 4 KiB blocks with O_DIRECT,
// each followed by fsync, and logs every acknowledged one. Then n1 is cut off at once from the
// apiserver (its renewals fail) and from n2 (the nvmet port stops serving r2: n1's controller is
// dropped and cannot reconnect). n2 stages the volume like kubelet would, retrying; it may only
// assemble once n1's right has ended plus the margin. Every acknowledged block is then read back
// from n2's copy; the writer must have seen errors, not silent success.
//
// What the single kernel cannot show: n1 is not a separate machine, so "n1 stopped" (its broken
// array stopped before n2 assembles the same array name) is done by the scenario once the writer
// has exited; in a cluster n1 would keep its fenced array until its pod is gone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fenceAllArrays } from '../../../agent/fence.ts';
import { exec } from '../../../agent/host/exec.ts';
import { subsystemNqn } from '../../../agent/host/names.ts';
import { waitIdle } from '../../../agent/host/test/contract.ts';
import { NodeVolumes } from '../../../agent/node-volumes.ts';
import { agentPass } from '../../../agent/pass.ts';
import { MemoryLeases, RightWatch, WRITE_RIGHT, WriteRight } from '../../../agent/write-right.ts';
import { withAgents } from '../../../csi/test/agents.ts';
import { MiB } from '../../../placement/index.ts';
import { KeyedLock } from '../../../state/lock.ts';
import { MemoryVolumeStore, StaticPeers } from '../../../state/memory-store.ts';
import type { VolumeRecord } from '../../../state/store.ts';
import type { Scenario } from './scenarios.ts';
import { poll } from './scenarios.ts';
import { controllers, GuestNode, type NodeName, NQN } from './stage.ts';

const VOL = 'vol-sf';
const SIZE = 96 * MiB;
const BLOCK = 4096;

interface Ack {
  seq: number;
  sha: string;
  at: number;
}

/** The writer process and what it printed so far. */
function startWriter(device: string, bytes: number) {
  const acks: Ack[] = [];
  const errors: { seq: number; code: string; at: number }[] = [];
  const p = spawn(process.execPath, ['test/kernel/guest/fence-writer.ts', device, String(bytes), '3'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let ready = false;
  createInterface({ input: p.stdout }).on('line', (line) => {
    const [kind, a, b, c] = line.split(' ');
    if (kind === 'READY') ready = true;
    if (kind === 'ACK') acks.push({ seq: Number(a), sha: String(b), at: Number(c) });
    if (kind === 'ERR') errors.push({ seq: Number(a), code: String(b), at: Number(c) });
  });
  const exited = new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)));
  return { acks, errors, exited, ready: () => ready, kill: () => p.kill('SIGKILL') };
}

const ip = (...args: string[]) => exec('ip', args, { timeoutMs: 30_000 });

/** Drops every packet to `address` (loopback too): the local table moves behind a blackhole rule. */
async function partition(address: string): Promise<void> {
  await ip('rule', 'add', 'pref', '100', 'lookup', 'local');
  await ip('rule', 'del', 'pref', '0');
  await ip('rule', 'add', 'pref', '10', 'to', `${address}/32`, 'blackhole');
}

async function heal(): Promise<void> {
  await exec('ip', ['rule', 'del', 'pref', '10'], { okCodes: [0, 2] });
  await exec('ip', ['rule', 'add', 'pref', '0', 'lookup', 'local'], { okCodes: [0, 2] });
  await exec('ip', ['rule', 'del', 'pref', '100'], { okCodes: [0, 2] });
}

async function freeStart(host: GuestNode, drive: string): Promise<number> {
  const d = (await host.listDrives()).find((x) => x.id === drive);
  const f = d?.free.find((x) => x.end - x.start >= SIZE);
  assert.ok(f, `${SIZE} bytes free on ${drive}`);
  return f.start;
}

function node(
  name: NodeName,
  i: number,
  shared: { store: MemoryVolumeStore; peers: StaticPeers; leases: MemoryLeases },
  selfFence = true,
) {
  const listen = { address: `127.0.0.${i + 3}`, port: 4420 };
  const host = new GuestNode({
    hostNqn: NQN[name],
    driveFilter: (id) => id === `MS-${name.toUpperCase()}-DATA`,
    listen,
  });
  shared.peers.set({ node: name, hostNqn: host.hostNqn, address: listen, ready: true });
  const locks = new KeyedLock();
  const fence: {
    sawArray?: boolean;
    at?: number;
    /** When every local leg was cut (Host.cutLocalLegs), before md was told. */
    legsCutAt?: number;
    doneAt?: number;
    volumes?: string[];
    why?: string;
    failures?: unknown[];
  } = {};
  const right = new WriteRight({
    node: name,
    api: shared.leases,
    onLapse: async (why) => {
      fence.at = Date.now();
      fence.why = why;
      if (!selfFence) return;
      const failures: { volume: string; reason: string }[] = [];
      fence.volumes = await fenceAllArrays(
        {
          host,
          store: shared.store,
          onLegsCut: () => {
            fence.legsCutAt = Date.now();
          },
        },
        failures,
      );
      fence.doneAt = Date.now();
      fence.failures = failures;
    },
  });
  const volumes = new NodeVolumes({
    nodeName: name,
    host,
    store: shared.store,
    peers: shared.peers,
    locks,
    connectWaitMs: 180_000,
    mountPoints: { ensure: async () => {}, remove: async () => {} },
    right,
    rightWatch: new RightWatch(shared.leases),
  });
  const pass = () => agentPass({ nodeName: name, host, store: shared.store, listen, locks });
  return { name, host, listen, right, volumes, pass, fence };
}

async function readBlock(device: string, seq: number): Promise<string> {
  const fh = await open(device, 'r');
  try {
    const b = Buffer.alloc(BLOCK);
    await fh.read(b, 0, BLOCK, seq * BLOCK);
    return createHash('sha256').update(b).digest('hex');
  } finally {
    await fh.close();
  }
}

/**
 * The scenario; with `selfFence` false it is the control: the same cut without the fence (ADR
 * 0002's behaviour), which must lose acknowledged blocks, or the scenario could not see a loss.
 */
function splitBrain(selfFence: boolean): Scenario {
  return {
    name: selfFence ? 'sf-self-fence-split-brain' : 'sf0-no-fence-control',
    async run() {
      const shared = { store: new MemoryVolumeStore(), peers: new StaticPeers(), leases: new MemoryLeases() };
      const n1 = node('n1', 0, shared, selfFence);
      const n2 = node('n2', 1, shared);
      const out: Record<string, unknown> = { timing: WRITE_RIGHT };
      const rec: VolumeRecord = {
        id: VOL,
        name: VOL,
        sizeBytes: SIZE - 16 * MiB,
        replicaCount: 2,
        spread: { domain: 'zone', mode: 'none' },
        fsType: 'xfs',
        phase: 'Active',
        replicas: [],
      };
      for (const [i, n] of [n1, n2].entries()) {
        const start = await freeStart(n.host, `MS-${n.name.toUpperCase()}-DATA`);
        rec.replicas.push({
          id: `r${i + 1}`,
          node: n.name,
          drive: `MS-${n.name.toUpperCase()}-DATA`,
          extent: { start, end: start + SIZE },
          state: 'Pending',
        });
      }
      await shared.store.create(rec);
      for (const n of [n1, n2]) n.right.start(500);
      try {
        await poll(
          async () => (n1.right.holds() && n2.right.holds() ? true : undefined),
          'both rights',
          30_000,
        );

        // 1. n1 stages the volume as a raw block volume: its partition + r2 over nvme-tcp
        const stageReq = { volumeId: VOL, stagingPath: '/mnt/stage-sf', access: 'block' as const };
        await withAgents([n1.pass, n2.pass], n1.volumes.stage(stageReq));
        const arr = await waitIdle(n1.host, VOL, 300_000);
        assert.deepEqual(
          arr.members.map((m) => m.state),
          ['in_sync', 'in_sync'],
        );
        const r2OnN1 = await n1.host.findDeviceByNqn(subsystemNqn({ volumeId: VOL, replicaId: 'r2' }));
        assert.ok(r2OnN1, 'n1 reaches r2 over nvme-tcp');

        // 2. the application writes and logs every acknowledged block
        const w = startWriter(arr.devicePath, arr.sizeBytes);
        await poll(async () => (w.acks.length >= 200 ? true : undefined), '200 acknowledged blocks', 300_000);

        // 3. n1 is cut off from the apiserver and from n2, at once
        const cutAt = Date.now();
        shared.leases.cut.add('n1');
        shared.peers.setReady('n1', false);
        // a silent partition: every packet to n2's address is dropped (a blackhole rule ahead of
        // the local table), so n1's controller times out and reconnects in vain until
        // ctrl-loss-tmo. (Unexporting r2 instead makes the target refuse the reconnect with DNR
        // and the host gives the leg up at once: md degrades at the cut and acknowledges on the
        // local leg alone. In the system only a takeover unexports, after D + M.)
        await partition(n2.listen.address);
        const cutDoneAt = Date.now();
        const acksAtCut = w.acks.length;

        // 4. the volume moves to n2: NodeStage retried as kubelet does, until n1's right ended + M
        const refusals: string[] = [];
        let stoppedN1At = 0;
        let n1ArrayAfterFence: string[] | undefined;
        let n1Detail = '';
        const r2Nqn = subsystemNqn({ volumeId: VOL, replicaId: 'r2' });
        n2.host.beforeAssemble = async () => {
          n2.host.beforeAssemble = undefined;
          // one kernel: n1's array must be gone before n2 assembles the same array; n1 "stops" once
          // its writer gave up (3 errors), or in the control once it acknowledged on after the cut
          // leg failed
          if (!selfFence) {
            const lMs = WRITE_RIGHT.remoteCtrlLossTmoSec * 1000;
            await poll(
              async () => (w.acks.filter((a) => a.at > cutAt + lMs).length >= 20 ? true : undefined),
              'the unfenced writer to acknowledge 20 blocks on the local leg alone',
              300_000,
            ).catch(() => undefined);
            w.kill();
          }
          await Promise.race([
            w.exited,
            new Promise((_, reject) =>
              setTimeout(() => reject(new Error('the old writer never gave up')), 300_000),
            ),
          ]);
          // and once its cut leg has failed (ctrl-loss-tmo): until then md still waits on it
          await poll(
            async () => ((await controllers(r2Nqn, NQN.n1)).length === 0 ? true : undefined),
            "n1's controller to r2 to be given up",
            300_000,
          );
          const a = await n1.host.getArray(VOL);
          n1ArrayAfterFence = a?.members.map((m) => `${m.devicePath}:${m.state}`);
          n1Detail = (await exec('mdadm', ['--detail', '--export', arr.devicePath], { okCodes: [0, 1, 2] }))
            .stdout;
          await n1.host.stopArray(VOL);
          const still = await readFile(`/sys/block/${arr.devicePath.slice(5)}/md/array_state`, 'utf8').catch(
            () => undefined,
          );
          if (still !== undefined)
            throw new Error(
              `n1's array is still there (${still.trim()}) after stopArray; getArray: ${JSON.stringify(n1ArrayAfterFence)}; mdadm --detail --export:\n${n1Detail}`,
            );
          await n1.host.disconnect(r2Nqn);
          stoppedN1At = Date.now();
        };
        let movedAt = 0;
        for (;;) {
          try {
            await withAgents([n2.pass], n2.volumes.stage({ ...stageReq, stagingPath: '/mnt/stage-sf2' }));
            movedAt = Date.now();
            break;
          } catch (e) {
            const m = (e as Error).message;
            if (!/right to write ends/.test(m)) throw e;
            if (refusals.length === 0 || refusals.at(-1) !== m.replace(/\d+ s/, 'N s'))
              refusals.push(m.replace(/\d+ s/, 'N s'));
            if (Date.now() - cutAt > 600_000) throw new Error(`n2 never took over: ${m}`);
            await new Promise((r) => setTimeout(r, 2_000));
          }
        }
        const onN2 = await n2.host.getArray(VOL);
        assert.ok(onN2, 'n2 runs the array');
        assert.deepEqual(
          onN2.members.map((m) => m.state),
          ['in_sync'],
          "n2's own copy only (n1's member is out)",
        );

        // 5. every acknowledged block is on n2's copy
        let found = 0;
        const missing: number[] = [];
        for (const a of w.acks) {
          if ((await readBlock(onN2.devicePath, a.seq)) === a.sha) found++;
          else missing.push(a.seq);
        }
        const firstError = w.errors[0];
        const acksAfterCut = w.acks.filter((a) => a.at > cutAt).map((a) => a.seq);
        Object.assign(out, {
          acknowledged: w.acks.length,
          foundOnNewHolder: found,
          missingOnNewHolder: missing,
          oldWriterErrors: w.errors.length,
          oldWriterErrorCodes: [...new Set(w.errors.map((e) => e.code))],
          acksAtCut,
          acksAfterCut,
          acksAfterCutDone: w.acks.filter((a) => a.at > cutDoneAt).map((a) => a.seq),
          cutTookMs: cutDoneAt - cutAt,
          fenceAfterCutMs: n1.fence.at !== undefined ? n1.fence.at - cutAt : undefined,
          legsCutTookMs:
            n1.fence.at !== undefined && n1.fence.legsCutAt !== undefined
              ? n1.fence.legsCutAt - n1.fence.at
              : undefined,
          mdStepTookMs:
            n1.fence.legsCutAt !== undefined && n1.fence.doneAt !== undefined
              ? n1.fence.doneAt - n1.fence.legsCutAt
              : undefined,
          fenceTookMs:
            n1.fence.at !== undefined && n1.fence.doneAt !== undefined
              ? n1.fence.doneAt - n1.fence.at
              : undefined,
          n1ArrayAfterFence: n1ArrayAfterFence,
          n1Detail,
          fencedVolumes: n1.fence.volumes,
          fenceFailures: n1.fence.failures,
          firstErrorAfterCutMs: firstError ? firstError.at - cutAt : undefined,
          n1StoppedAfterCutMs: stoppedN1At - cutAt,
          movedAfterCutMs: movedAt - cutAt,
          refusals,
        });
        if (!selfFence) {
          await n2.volumes.unstage({ volumeId: VOL, stagingPath: '/mnt/stage-sf2' });
          assert.ok(missing.length > 0, 'without the fence, acknowledged blocks are missing on n2');
          return out;
        }
        // the results go with any failed check, so a failure says what happened
        try {
          assert.ok(n1.fence.at !== undefined, 'n1 fenced itself when its right lapsed');
          assert.deepEqual(n1.fence.volumes, [VOL]);
          assert.ok(
            n1.fence.at - cutAt <= WRITE_RIGHT.leaseMs,
            `n1 fenced within D of the cut (${n1.fence.at - cutAt} ms)`,
          );
          assert.ok(
            movedAt - cutAt >= WRITE_RIGHT.leaseMs + WRITE_RIGHT.takeoverMarginMs,
            'n2 assembled only after D + M',
          );
          assert.ok(w.errors.length > 0, 'the old writer saw errors');
          assert.equal(
            found,
            w.acks.length,
            `every acknowledged block is on n2's copy (missing ${missing.join(',')})`,
          );
        } catch (e) {
          throw new Error(`${(e as Error).message}\nresults: ${JSON.stringify(out)}`);
        }
        await n2.volumes.unstage({ volumeId: VOL, stagingPath: '/mnt/stage-sf2' });
        return out;
      } finally {
        await heal();
        n1.right.stop();
        n2.right.stop();
        await writeFile('/proc/sys/vm/drop_caches', '3').catch(() => undefined);
      }
    },
  };
}

export const sf_selfFence = splitBrain(true);
/** Not in the tier (it costs a boot's worth of minutes): `node test/kernel/run.ts fence-control`. */
export const sf0_noFenceControl = splitBrain(false);
