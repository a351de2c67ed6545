// Scenario r: relocation by the product code on the real kernel. The nodes of scenario s (three
// LinuxHost "nodes" in the guest, each with its NodeService and its agent's pass from
// csi/test/agents.ts) and a ControllerService over the shared store, its inventory read from each
// node's Host as in csi/test/sim-cluster.ts. A volume staged on n3, which holds no member, is moved
// there by ControllerService.relocate() and the agents' passes alone (agent/relocation.ts,
// agent/reconciler.ts): a member on n3's drive is added to the running array, md resyncs it, the
// leaving member is removed and disconnected, its node wipes the partition and the controller drops
// it from the record. n3's agent is "killed" twice: right after the add, and (having been down for
// the end of the resync) right after the removal; the next passes finish. The volume id is a provisioner's (too long for the GPT name: partitions are known by GUID).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { ensurePartition } from '../../../agent/exports.ts';
import { subsystemNqn } from '../../../agent/host/names.ts';
import { waitIdle } from '../../../agent/host/test/contract.ts';
import type { ArrayInfo } from '../../../agent/host/types.ts';
import { HostInventory } from '../../../agent/host-inventory.ts';
import { partitionOf } from '../../../agent/owners.ts';
import { RelocationReconciler } from '../../../controller/relocation.ts';
import { ControllerService } from '../../../csi/controller.ts';
import { largestVolumeFor, MiB, replicaExtentBytes } from '../../../placement/index.ts';
import { updateRecord } from '../../../state/store.ts';
import type { Scenario } from './scenarios.ts';
import { mdCheck, verify, writeRandom } from './scenarios.ts';
import {
  cluster,
  controllers,
  NODES,
  type NodeName,
  NQN,
  record,
  since,
  stageReq,
  states,
  unstageReq,
} from './stage.ts';

const VOL = 'pvc-2f0c6a1e-8d7b-4c55-9e3a-71b0d4c2a9f6';
/** Clear of scenario s's partitions (at 1 MiB) when both run in one boot. */
const START = 512 * MiB;
const PATH = '/mnt/reloc-n3';
/**
 * md's resync of this array is throttled (KiB/s; the guest's init sets the system-wide floor far
 * above any speed) so that the agents' passes see it in flight.
 */
const SYNC_KIBPS = 8192;
const throttle = async (md: string, on: boolean) => {
  await writeFile(`/sys/block/${md}/md/sync_speed_min`, on ? '1000' : 'system');
  await writeFile(`/sys/block/${md}/md/sync_speed_max`, on ? String(SYNC_KIBPS) : 'system');
};
const nqnOf = (replicaId: string) => subsystemNqn({ volumeId: VOL, replicaId });

export const r_agentRelocation: Scenario = {
  name: 'r-agent-relocation',
  async run() {
    const c = cluster();
    const { n3 } = c.nodes;
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
    const sums = new Map<string, string>();
    const out: Record<string, unknown> = {};
    // sized as the controller records a volume: the most its extent holds (placement sizes the
    // new member from sizeBytes, and md refuses a member smaller than the others)
    const rec0 = record(VOL, START);
    const ext = rec0.replicas[0]?.extent;
    assert.ok(ext);
    rec0.sizeBytes = largestVolumeFor(ext.end - ext.start);
    assert.equal(replicaExtentBytes(rec0.sizeBytes), ext.end - ext.start);
    await c.store.create(rec0);

    // 1. staged on n3 with both members remote
    let t0 = Date.now();
    await c.withAgents(n3.svc.nodeStageVolume(stageReq('n3', VOL, PATH)));
    out.stageMs = since(t0);
    const before = await waitIdle(n3.host, VOL, 300_000);
    const md = before.devicePath.slice(5);
    sums.set('blob', await writeRandom(`${PATH}/blob`, 48));
    for (let i = 0; i < 8; i++) sums.set(`s${i}`, await writeRandom(`${PATH}/s${i}`, 1));
    await verify(PATH, sums);
    out.before = { uuid: before.uuid, members: states(before) };

    // 2. the controller plans the move; the agent "dies" right after adding the new member
    const first = await relocation.pass();
    assert.deepEqual(first.started, [`${VOL} -> n3`], JSON.stringify(first));
    let rec = await c.store.get(VOL);
    const reloc = rec?.relocation;
    assert.equal(reloc?.step, 'adding');
    const adding = rec?.replicas.find((r) => r.id === reloc?.toReplica);
    const leaving = rec?.replicas.find((r) => r.id === reloc?.fromReplica);
    assert.ok(rec && reloc && adding && leaving, 'a relocation with both members');
    assert.equal(adding.node, 'n3');
    const gone = leaving.node as NodeName;
    await throttle(md, true);
    const part = await ensurePartition(n3.host, rec, adding);
    const spare = await n3.host.addMember(VOL, part.path);
    out.afterKill = { step: (await c.store.get(VOL))?.relocation?.step, members: states(spare) };
    assert.equal(spare.raidDevices, 2, 'a spare on a full array until raid-devices grows');
    assert.equal(spare.members.find((m) => m.devicePath === part.path)?.state, 'spare');

    // 3. controller + agents, round after round, until the relocation is released
    const rounds: string[] = first.started.map((x) => `started ${x}`);
    let cut: ArrayInfo | undefined;
    const syncing: { s: number; step?: string; bytesDone?: number; md?: string }[] = [];
    t0 = Date.now();
    for (let i = 0; ; i++) {
      assert.ok(since(t0) < 600_000, `relocation not finished after ${i} rounds: ${rounds.join('; ')}`);
      const r = await relocation.pass();
      rounds.push(
        ...r.started.map((x) => `started ${x}`),
        ...r.finished.map((x) => `finished ${x}`),
        ...r.blocked.map((b) => `blocked ${b.reason}`),
      );
      if (r.finished.includes(VOL)) break;
      if (!cut && syncing.filter((x) => x.step === 'syncing' && (x.bytesDone ?? 0) > 0).length >= 2) {
        // n3's agent is down for the rest of the resync (md goes on without it), and its next
        // pass dies right after it removed the leaving member, before raid-devices or the record
        const idle = await waitIdle(n3.host, VOL, 300_000);
        assert.equal(idle.members.find((m) => m.devicePath === part.path)?.state, 'in_sync');
        const dev = await n3.host.findDeviceByNqn(nqnOf(leaving.id));
        assert.ok(dev, 'the leaving member is connected');
        await updateRecord(c.store, VOL, (x) => {
          if (x.relocation) x.relocation.step = 'removing';
          return true;
        });
        cut = await n3.host.removeMember(VOL, dev);
        out.afterSecondKill = { raidDevices: cut.raidDevices, degraded: cut.degraded, members: states(cut) };
        assert.equal(cut.raidDevices, 3, 'raid-devices still 3: one empty slot');
        continue;
      }
      for (const n of NODES) await c.nodes[n].pass();
      const now = await c.store.get(VOL);
      const a = await n3.host.getArray(VOL);
      const completed = (await readFile(`/sys/block/${md}/md/sync_completed`, 'utf8')).trim();
      syncing.push({
        s: Math.round(since(t0) / 100) / 10,
        step: now?.relocation?.step,
        bytesDone: now?.relocation?.bytesDone,
        md: `${a?.syncAction} ${completed} raid-devices=${a?.raidDevices} ${states(a)?.join(' ')}`,
      });
      await new Promise((res) => setTimeout(res, 200));
    }
    out.relocateMs = since(t0);
    assert.ok(cut, 'the pass was cut after the removal');
    await throttle(md, false);
    out.rounds = rounds;
    out.progress = syncing;
    const seen = syncing.filter((x) => x.step === 'syncing');
    assert.ok(seen.length > 0, 'the agent recorded the resync in flight');
    assert.ok(
      syncing.some((x) => x.md?.startsWith('recover')),
      'md was seen recovering onto the new member',
    );

    // 4. the kernel's view: n3's array has its own partition and the staying member, 2 slots
    rec = await c.store.get(VOL);
    assert.equal(rec?.relocation, undefined);
    assert.deepEqual(rec?.replicas.map((r) => `${r.node}:${r.state}`).sort(), [
      `${(['n1', 'n2'] as const).find((n) => n !== gone)}:InSync`,
      'n3:InSync',
    ]);
    const staying = rec?.replicas.find((r) => r.node !== 'n3');
    assert.ok(staying);
    const after = await n3.host.getArray(VOL);
    assert.ok(after);
    assert.equal(after.uuid, before.uuid, 'the same array');
    assert.equal(after.raidDevices, 2);
    assert.equal(after.degraded, false);
    const local = partitionOf(await n3.host.listDrives(), { volumeId: VOL, replicaId: adding.id });
    assert.ok(local, "n3's partition exists");
    assert.deepEqual(
      after.members.map((m) => `${m.devicePath}:${m.state}`).sort(),
      [`${local.path}:in_sync`, `${await n3.host.findDeviceByNqn(nqnOf(staying.id))}:in_sync`].sort(),
    );
    assert.equal(await n3.host.findDeviceByNqn(nqnOf(leaving.id)), undefined, 'n3 disconnected');
    assert.deepEqual(await controllers(nqnOf(leaving.id), NQN.n3), []);
    const leftNode = c.nodes[gone].host;
    assert.deepEqual(
      (await leftNode.listExports()).filter((e) => e.nqn.includes(VOL)),
      [],
      `${gone} exports nothing of the volume`,
    );
    assert.equal(
      partitionOf(await leftNode.listDrives(), { volumeId: VOL, replicaId: leaving.id }),
      undefined,
      `${gone} has no partition of the volume`,
    );
    out.after = { left: gone, members: states(after), raidDevices: after.raidDevices };
    out.mismatch = await mdCheck(n3.host, VOL);
    assert.equal(out.mismatch, 0, 'mismatch_cnt');
    out.files = await verify(PATH, sums);

    // 5. unstaged and staged again on n3: assembled from the new layout, the old member gone
    t0 = Date.now();
    await n3.svc.nodeUnstageVolume(unstageReq('n3', VOL, PATH));
    assert.equal(await n3.host.getArray(VOL), undefined);
    await c.withAgents(n3.svc.nodeStageVolume(stageReq('n3', VOL, PATH)));
    const again = await waitIdle(n3.host, VOL, 300_000);
    out.restageMs = since(t0);
    assert.equal(again.uuid, before.uuid, 'assembled, not created');
    assert.equal(again.degraded, false);
    assert.deepEqual(
      again.members.map((m) => m.state),
      ['in_sync', 'in_sync'],
    );
    assert.ok(
      again.members.some((m) => m.devicePath === local.path),
      "n3's own partition is a member",
    );
    out.restaged = states(again);
    out.filesAfterRestage = await verify(PATH, sums);
    await n3.svc.nodeUnstageVolume(unstageReq('n3', VOL, PATH));
    return out;
  },
};
