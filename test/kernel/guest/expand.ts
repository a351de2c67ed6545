// Scenario x: expansion when growth in place is blocked (issue 12 §5, ADR 0009), by the product
// code on the real kernel. The nodes of scenario s (three LinuxHost "nodes" in one guest, each
// with its NodeService and agent pass) and a ControllerService with the relocation and expansion
// passes over the shared store. A 304 MiB volume on n1 and n2, staged and mounted on n1, with
// another volume's extent right after its member on n1: ControllerExpandVolume to 400 MiB answers
// ABORTED while n1's member moves to a 400 MiB extent elsewhere on n1's drive (added, resynced by
// md, the old one removed and wiped, its extent released), the filesystem staying mounted and
// written to all along; then it succeeds, n2's member grows in place, and NodeExpandVolume grows
// md and runs xfs_growfs on the mounted filesystem. sha256 of every file is checked after each stage.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { HostInventory } from '../../../agent/host-inventory.ts';
import { partitionOf } from '../../../agent/owners.ts';
import { Claims, ownerOf } from '../../../controller/claims.ts';
import { ExpansionReconciler } from '../../../controller/expansion.ts';
import { RelocationReconciler } from '../../../controller/relocation.ts';
import { ControllerService } from '../../../csi/controller.ts';
import { codeFor } from '../../../csi/errors.ts';
import { MiB, replicaExtentBytes } from '../../../placement/index.ts';
import type { VolumeRecord } from '../../../state/store.ts';
import { diskBySerial } from './env.ts';
import type { Scenario } from './scenarios.ts';
import { mdCheck, verify, writeRandom } from './scenarios.ts';
import { cluster, NODES, since, stageReq, states } from './stage.ts';

const execFileP = promisify(execFile);

const VOL = 'pvc-5b1e0c7d-3a9f-4e2b-8c61-0d4f7a2e9b13';
const PATH = '/mnt/expand-n1';
const SIZE = 304 * MiB;
const TARGET = 400 * MiB;
const START = MiB;

function member(id: string, n: 'n1' | 'n2', start: number, bytes: number) {
  const drive = `MS-${n.toUpperCase()}-DATA`;
  return { id, node: n, drive, extent: { start, end: start + bytes }, state: 'Pending' as const };
}

export const x_expandRelocation: Scenario = {
  name: 'x-expand-by-relocation',
  async run() {
    const c = cluster();
    const { n1 } = c.nodes;
    const controller = new ControllerService({
      store: c.store,
      inventory: {
        nodes: async () =>
          (
            await Promise.all(
              NODES.map((n) => new HostInventory(n, undefined, c.nodes[n].host, c.store).nodes()),
            )
          ).flat(),
      },
    });
    const relocation = new RelocationReconciler(controller.allocator);
    const expansion = new ExpansionReconciler(controller.allocator);
    const out: Record<string, unknown> = {};
    const sums = new Map<string, string>();
    const extent = replicaExtentBytes(SIZE);
    const base = { spread: { domain: 'zone', mode: 'none' }, fsType: 'xfs', phase: 'Active' } as const;
    await c.store.create({
      ...base,
      id: VOL,
      name: VOL,
      sizeBytes: SIZE,
      replicaCount: 2,
      replicas: [member('r0', 'n1', START, extent), member('r1', 'n2', START, extent)],
    });
    // another volume right after the member on n1 (never staged: its bytes are only taken)
    await c.store.create({
      ...base,
      id: 'neighbour',
      name: 'neighbour',
      sizeBytes: 62 * MiB,
      replicaCount: 1,
      replicas: [member('r0', 'n1', START + extent, 64 * MiB)],
    });
    const claims = new Claims(c.store.ledger);
    for (const r of await c.store.list())
      assert.equal(await claims.claim(ownerOf(r), r.replicas), undefined, `claims of ${r.id}`);

    // 1. staged and mounted on n1 (its own member, n2's over nvme-tcp); data written
    let t0 = Date.now();
    await c.withAgents(n1.svc.nodeStageVolume(stageReq('n1', VOL, PATH))).catch(async (e) => {
      // what the kernel and the table showed when staging failed, for the failure message
      const disk = await diskBySerial('MS-N1-DATA');
      const table = await execFileP('sfdisk', ['--json', disk]).then(
        (r) => r.stdout,
        (x) => String(x),
      );
      const parts = await readFile('/proc/partitions', 'utf8');
      throw new Error(`${(e as Error).message}\n${disk} table: ${table}\n/proc/partitions:\n${parts}`);
    });
    out.stageMs = since(t0);
    const before = await n1.host.getArray(VOL);
    assert.ok(before);
    out.before = { sizeBytes: before.sizeBytes, members: states(before) };
    out.fsBefore = (await n1.host.filesystemUsage(PATH)).sizeBytes;
    sums.set('blob', await writeRandom(`${PATH}/blob`, 64));
    for (let i = 0; i < 4; i++) sums.set(`s${i}`, await writeRandom(`${PATH}/s${i}`, 1));
    await verify(PATH, sums);
    const expandReq = {
      volume_id: VOL,
      capacity_range: { required_bytes: String(TARGET), limit_bytes: '0' },
      secrets: {},
      volume_capability: null,
    };

    // 2. the resizer's calls (ABORTED while the member moves), the agents' and the controller's
    // passes, round after round; a file is written through the mount every round
    const answers: string[] = [];
    const seen: string[] = [];
    t0 = Date.now();
    for (let i = 0; ; i++) {
      assert.ok(
        since(t0) < 900_000,
        `expansion not done after ${i} rounds: ${answers.slice(-3).join(' | ')}`,
      );
      const answer = await controller.controllerExpandVolume(expandReq).then(
        () => 'OK',
        (e) => `${codeFor(e)}: ${(e as Error).message}`,
      );
      if (answers.at(-1) !== answer) answers.push(answer);
      if (answer === 'OK') break;
      assert.match(answer, /^10: /, 'only ABORTED while the member moves');
      if (i % 3 === 0) sums.set(`during-${i}`, await writeRandom(`${PATH}/during-${i}`, 1, true));
      for (const n of NODES) await c.nodes[n].pass();
      await relocation.pass();
      await expansion.pass();
      const now = (await c.store.get(VOL)) as VolumeRecord;
      if (now.relocation) seen.push(`${now.relocation.step} ${now.relocation.bytesDone ?? 0}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    out.controllerMs = since(t0);
    out.answers = answers;
    out.moveSteps = [...new Set(seen)].slice(0, 20);
    assert.ok(
      answers.some((a) => /moving r0 to a larger extent on n1 as r2/.test(a)),
      answers.join(' | '),
    );
    const rec = (await c.store.get(VOL)) as VolumeRecord;
    assert.equal(rec.sizeBytes, TARGET);
    assert.equal(rec.expansion, undefined);
    const moved = rec.replicas.find((r) => r.node === 'n1');
    assert.equal(moved?.id, 'r2', 'n1 holds the new member');
    assert.ok(moved.extent.end - moved.extent.start >= replicaExtentBytes(TARGET));
    assert.ok(moved.extent.start >= START + extent + 64 * MiB, 'the new extent is past the neighbour');
    assert.deepEqual(rec.replicas.find((r) => r.node === 'n2')?.extent, {
      start: START,
      end: START + replicaExtentBytes(TARGET),
    });
    assert.equal(
      partitionOf(await n1.host.listDrives(), { volumeId: VOL, replicaId: 'r0' }),
      undefined,
      "n1's old partition is wiped",
    );
    await verify(PATH, sums);

    // 3. kubelet's NodeExpandVolume on the mounted volume: md grows, then xfs_growfs
    t0 = Date.now();
    const grown = await c.withAgents(
      n1.svc.nodeExpandVolume({
        volume_id: VOL,
        volume_path: PATH,
        capacity_range: { required_bytes: String(TARGET), limit_bytes: '0' },
      }),
    );
    out.nodeExpandMs = since(t0);
    assert.ok(Number(grown.capacity_bytes) >= TARGET, `md is ${grown.capacity_bytes} bytes`);
    const fsAfter = (await n1.host.filesystemUsage(PATH)).sizeBytes;
    out.fsAfter = fsAfter;
    assert.ok(fsAfter - (out.fsBefore as number) >= 80 * MiB, `XFS grew from ${out.fsBefore} to ${fsAfter}`);
    // the new space is usable: more than the old filesystem had free
    sums.set('after', await writeRandom(`${PATH}/after`, 64));
    const after = await n1.host.getArray(VOL);
    assert.ok(after);
    assert.equal(after.uuid, before.uuid, 'the same array all along');
    assert.equal(after.raidDevices, 2);
    assert.equal(after.degraded, false);
    out.after = { sizeBytes: after.sizeBytes, members: states(after) };
    out.mismatch = await mdCheck(n1.host, VOL);
    assert.equal(out.mismatch, 0, 'mismatch_cnt');
    out.files = await verify(PATH, sums);
    await n1.svc.nodeUnstageVolume({ volume_id: VOL, staging_target_path: PATH });
    return out;
  },
};
