// Scenario s: the CSI node service (csi/node.ts) and the agents' export passes (agent/exports.ts)
// on the real kernel. Three LinuxHost "nodes" in the guest (own host NQN, drives and listen
// address), each with its NodeService, its export pass and its own KeyedLock, share one
// MemoryVolumeStore and StaticPeers, as in csi/test/node-remote.test.ts: staged on n3 with both
// members remote over nvme-tcp; moved to n1 (assembled, not created); fenced onto n2 while n1
// still runs it with its agent down. Checksums of the data are read back through XFS each time.
import assert from 'node:assert/strict';
import { access, readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { LinuxHost, type LinuxHostOptions } from '../../../agent/host/linux.ts';
import { subsystemNqn } from '../../../agent/host/names.ts';
import { waitIdle } from '../../../agent/host/test/contract.ts';
import type {
  ArrayCreateSpec,
  ArrayInfo,
  ConnectSpec,
  ExportInfo,
  ListenAddress,
  OpOptions,
} from '../../../agent/host/types.ts';
import { clusterNode, withAgents as runAgents } from '../../../csi/test/agents.ts';
import { MiB } from '../../../placement/index.ts';
import { MemoryVolumeStore, StaticPeers } from '../../../state/memory-store.ts';
import type { VolumeRecord } from '../../../state/store.ts';
import type { Scenario } from './scenarios.ts';
import { poll, verify, writeRandom } from './scenarios.ts';

const VOL = 'vol-s';
const SIZE = 320 * MiB;
export const NODES = ['n1', 'n2', 'n3'] as const;
export type NodeName = (typeof NODES)[number];
export const NQN: Record<NodeName, string> = {
  n1: 'nqn.2014-08.org.nvmexpress:uuid:5a5a5a5a-0000-4000-8000-000000000001',
  n2: 'nqn.2014-08.org.nvmexpress:uuid:5a5a5a5a-0000-4000-8000-000000000002',
  n3: 'nqn.2014-08.org.nvmexpress:uuid:5a5a5a5a-0000-4000-8000-000000000003',
};
const nqnOf = (replicaId: string) => subsystemNqn({ volumeId: VOL, replicaId });
const stagePath = (n: NodeName) => `/mnt/stage-${n}`;

/**
 * One kernel runs every node, so every node would see every md array and every nvmet export. A
 * node sees an array only when one of its members is this node's (a partition of its drives or a
 * namespace it connected), and the exports on its own listen address.
 * `beforeAssemble` lets the scenario look at the kernel between NodeStage's fencing and assembly.
 */
export class GuestNode extends LinuxHost {
  readonly listen: ListenAddress;
  beforeAssemble: (() => Promise<void>) | undefined;
  /** Failed connect attempts by error class (NodeStage retries the refused ones). */
  readonly connectErrors: Record<string, number> = {};

  constructor(o: LinuxHostOptions & { listen: ListenAddress }) {
    super(o);
    this.listen = o.listen;
  }

  override async listExports(o?: OpOptions): Promise<ExportInfo[]> {
    const here = (l: ListenAddress) => l.address === this.listen.address && l.port === this.listen.port;
    return (await super.listExports(o)).filter((e) => e.listen.some(here));
  }

  override async getArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo | undefined> {
    const a = await super.getArray(volumeId, o);
    if (!a) return undefined;
    const parts = new Set((await this.listDrives()).flatMap((d) => d.partitions.map((p) => p.path)));
    for (const m of a.members) {
      if (parts.has(m.devicePath)) return a;
      const nqn = (
        await readFile(`/sys/block/${basename(m.devicePath)}/device/subsysnqn`, 'utf8').catch(() => '')
      ).trim();
      if (nqn && (await this.findDeviceByNqn(nqn)) === m.devicePath) return a;
    }
    return undefined;
  }

  override async connect(spec: ConnectSpec, o?: OpOptions): Promise<string> {
    try {
      return await super.connect(spec, o);
    } catch (e) {
      const k = (e as Error).constructor.name;
      this.connectErrors[k] = (this.connectErrors[k] ?? 0) + 1;
      throw e;
    }
  }

  override async assembleArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo> {
    await this.beforeAssemble?.();
    return super.assembleArray(spec, o);
  }
}

/** The kernel's controllers of a subsystem connected with a host NQN, with their state. */
export async function controllers(subsys: string, hostNqn: string): Promise<string[]> {
  const out: string[] = [];
  for (const c of await readdir('/sys/class/nvme').catch(() => [] as string[])) {
    const attr = (f: string) =>
      readFile(`/sys/class/nvme/${c}/${f}`, 'utf8').then(
        (s) => s.trim(),
        () => '',
      );
    if ((await attr('subsysnqn')) === subsys && (await attr('hostnqn')) === hostNqn)
      out.push(`${c}:${await attr('state')}`);
  }
  return out;
}

export function cluster() {
  const store = new MemoryVolumeStore();
  const peers = new StaticPeers();
  const node = (name: NodeName, i: number) => {
    const listen = { address: `127.0.0.${i + 3}`, port: 4420 };
    const driveFilter = (id: string) => id === `MS-${name.toUpperCase()}-DATA`;
    const host = new GuestNode({ hostNqn: NQN[name], driveFilter, listen });
    return clusterNode({ name, host, store, peers, listen, connectWaitMs: 180_000 });
  };
  const nodes = { n1: node('n1', 0), n2: node('n2', 1), n3: node('n3', 2) };
  /** Every live agent's export pass, over and over, until `work` settles (as in the unit test). */
  const withAgents = <T>(work: Promise<T>, down: NodeName[] = []): Promise<T> =>
    runAgents(
      NODES.filter((n) => !down.includes(n)).map((n) => nodes[n].pass),
      work,
    );
  return { store, peers, nodes, withAgents };
}

export const stageReq = (n: NodeName, volume_id = VOL, staging_target_path = stagePath(n)) => ({
  volume_id,
  staging_target_path,
  volume_capability: {
    mount: { fs_type: 'xfs', mount_flags: [], volume_mount_group: '' },
    access_mode: { mode: 'SINGLE_NODE_WRITER' as const },
  },
  volume_context: {},
});
export const unstageReq = (n: NodeName, volume_id = VOL, staging_target_path = stagePath(n)) => ({
  volume_id,
  staging_target_path,
});

/** A volume of two replicas, on n1 and n2 at the same extent, neither made yet. */
export const record = (id = VOL, start = MiB): VolumeRecord => ({
  id,
  name: id,
  sizeBytes: SIZE - 16 * MiB,
  replicaCount: 2,
  spread: { domain: 'zone', mode: 'none' },
  fsType: 'xfs',
  phase: 'Active',
  replicas: (['n1', 'n2'] as const).map((n, i) => ({
    id: `r${i + 1}`,
    node: n,
    drive: `MS-${n.toUpperCase()}-DATA`,
    extent: { start, end: start + SIZE },
    state: 'Pending' as const,
  })),
});

export const states = (a: ArrayInfo | undefined) => a?.members.map((m) => `${m.devicePath}:${m.state}`);
export const since = (t0: number) => Date.now() - t0;

export const s_csiStaging: Scenario = {
  name: 's-csi-stage-remote-members',
  async run() {
    const c = cluster();
    const { n1, n2, n3 } = c.nodes;
    const sums = new Map<string, string>();
    const out: Record<string, unknown> = {};
    await c.store.create(record());

    // 1. staged on n3, which holds no replica: both members over nvme-tcp, array created
    let t0 = Date.now();
    await c.withAgents(n3.svc.nodeStageVolume(stageReq('n3')));
    out.stageOnN3Ms = since(t0);
    out.connectErrorsOnN3 = { ...n3.host.connectErrors };
    const created = await waitIdle(n3.host, VOL, 300_000);
    assert.deepEqual(
      created.members.map((m) => m.state),
      ['in_sync', 'in_sync'],
    );
    for (const r of ['r1', 'r2'])
      assert.ok(await n3.host.findDeviceByNqn(nqnOf(r)), `n3 is connected to ${r} over nvme-tcp`);
    for (const [n, r] of [
      [n1, 'r1'],
      [n2, 'r2'],
    ] as const) {
      const ex = (await n.host.listExports()).find((e) => e.nqn === nqnOf(r));
      assert.deepEqual(ex?.allowedHosts, [NQN.n3], `${r} is exported to n3 only`);
    }
    let rec = await c.store.get(VOL);
    assert.equal(rec?.arrayUuid, created.uuid);
    assert.deepEqual(rec?.attachment, { node: 'n3', hostNqn: NQN.n3 });
    sums.set('blob1', await writeRandom(`${stagePath('n3')}/blob1`, 24));
    for (let i = 0; i < 10; i++) sums.set(`s${i}`, await writeRandom(`${stagePath('n3')}/s${i}`, 1));
    await verify(stagePath('n3'), sums);
    out.created = { uuid: created.uuid, members: states(created) };

    // 2. unstaged on n3, staged on n1: its own member + n2's over nvme-tcp; assembled, not created
    t0 = Date.now();
    await n3.svc.nodeUnstageVolume(unstageReq('n3'));
    assert.equal((await c.store.get(VOL))?.attachment, undefined);
    for (const r of ['r1', 'r2']) assert.equal(await n3.host.findDeviceByNqn(nqnOf(r)), undefined);
    await c.withAgents(n1.svc.nodeStageVolume(stageReq('n1')));
    out.moveToN1Ms = since(t0);
    out.connectErrorsOnN1 = { ...n1.host.connectErrors };
    const onN1 = await waitIdle(n1.host, VOL, 300_000);
    assert.equal(onN1.uuid, created.uuid, 'the same array, assembled');
    assert.equal(onN1.degraded, false);
    assert.deepEqual(await n1.host.listExports(), [], 'n1 exports nothing: the array runs there');
    const r2ToN1 = (await n2.host.listExports()).find((e) => e.nqn === nqnOf('r2'));
    assert.deepEqual(r2ToN1?.allowedHosts, [NQN.n1], 'r2 is exported to n1 only');
    const r2OnN1 = await n1.host.findDeviceByNqn(nqnOf('r2'));
    assert.ok(r2OnN1, 'n1 is connected to r2');
    out.filesOnN1 = await verify(stagePath('n1'), sums);
    out.assembled = { uuid: onN1.uuid, members: states(onN1) };

    // 3. n1's agent stops reporting, its array still running; n2 stages. n2 unexports r2 first,
    //    which must cut n1's connection to it: checked here, before n2 assembles.
    c.peers.setReady('n1', false);
    const fence: Record<string, unknown> = {};
    n2.host.beforeAssemble = async () => {
      n2.host.beforeAssemble = undefined;
      const tf = Date.now();
      fence.exportsOnN2 = (await n2.host.listExports()).map((e) => e.nqn);
      assert.deepEqual(fence.exportsOnN2, [], 'n2 unexported r2 before assembling');
      // nvmet deletes the controllers of an unlinked subsystem: n1's drops to reconnecting
      fence.n1ControllersAtFence = await controllers(nqnOf('r2'), NQN.n1);
      fence.n1ControllerNotLive = await poll(
        async () => {
          const now = await controllers(nqnOf('r2'), NQN.n1);
          return now.every((x) => !x.endsWith(':live')) ? now : undefined;
        },
        "n1's controller to r2 to leave the live state",
        30_000,
      );
      fence.n1NotLiveMs = since(tf);
      // n1 writes on: the write must not reach r2; md fails the leg once the controller is gone
      const tw = Date.now();
      sums.set('after-fence', await writeRandom(`${stagePath('n1')}/after-fence`, 1, true));
      fence.n1WriteMs = since(tw);
      const degraded = await poll(
        async () => {
          const a = await n1.host.getArray(VOL);
          const m = a?.members.find((x) => x.devicePath === r2OnN1);
          return a?.degraded && (!m || m.state === 'faulty') ? a : undefined;
        },
        "n1's array to drop r2",
        120_000,
      );
      fence.n1ArrayAfterFence = states(degraded);
      fence.n1DegradedMs = since(tf);
      fence.n1ControllersAfter = await controllers(nqnOf('r2'), NQN.n1);
      // n1 is "dead": in one kernel its array must stop before n2's copy of it can be assembled
      await n1.host.unmount(stagePath('n1'));
      await n1.host.stopArray(VOL);
      await n1.host.disconnect(nqnOf('r2'));
    };
    t0 = Date.now();
    await c.withAgents(n2.svc.nodeStageVolume(stageReq('n2')), ['n1']);
    out.fenceOntoN2Ms = since(t0);
    assert.ok(fence.n1ArrayAfterFence, 'the fence was checked before n2 assembled');
    const onN2 = await n2.host.getArray(VOL);
    assert.equal(onN2?.uuid, created.uuid);
    assert.equal(onN2?.degraded, true, "degraded: n1's member is missing");
    assert.deepEqual(
      onN2?.members.map((m) => m.state),
      ['in_sync'],
    );
    rec = await c.store.get(VOL);
    assert.deepEqual(rec?.attachment, { node: 'n2', hostNqn: NQN.n2 });
    assert.deepEqual(
      rec?.replicas.map((r) => r.state),
      ['Faulty', 'InSync'],
    );
    const written = sums.get('after-fence');
    sums.delete('after-fence');
    fence.filesOnN2 = await verify(stagePath('n2'), sums);
    await assert.rejects(
      access(`${stagePath('n2')}/after-fence`),
      'no write of n1 after the fence reached r2',
    );
    fence.afterFenceWrittenOnN1 = written !== undefined;
    out.fence = fence;

    await n2.svc.nodeUnstageVolume(unstageReq('n2'));
    assert.equal(await n2.host.getArray(VOL), undefined);
    return out;
  },
};
