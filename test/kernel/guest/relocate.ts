// The relocation steps (add before remove), the rebuild steps and the catch-up steps as a driver would run them: every step observes the
// machine first and does nothing when its result already holds, so a driver killed at any point
// and started again converges from observed state alone (no journal). Used by scenario c
// in-process and by scenario g as a separate process that is killed -9 between steps.
import assert from 'node:assert/strict';
import { subsystemNqn } from '../../../agent/host/names.ts';
import { waitIdle } from '../../../agent/host/test/contract.ts';
import type { Host, Owner } from '../../../agent/host/types.ts';

export interface RelocationPlan {
  volumeId: string;
  /** The remote member to retire: B's partition, exported as `nqn`, connected on A. */
  remote: { driveId: string; owner: Owner; nqn: string };
  /** The new local member on A. */
  local: { driveId: string; owner: Owner; sizeBytes: number };
}

export interface Step {
  name: string;
  run(): Promise<void>;
}

async function partitionPath(h: Host, driveId: string, o: Owner): Promise<string | undefined> {
  const d = (await h.listDrives()).find((x) => x.id === driveId);
  return d?.partitions.find((p) => p.owner?.volumeId === o.volumeId && p.owner.replicaId === o.replicaId)
    ?.path;
}

/** raid-devices = the members that are not faulty: n+1 while both legs are in, n after removal. */
async function fitRaidDevices(a: Host, volumeId: string): Promise<void> {
  const arr = await a.getArray(volumeId);
  assert.ok(arr, `array of ${volumeId} is assembled`);
  await a.setRaidDevices(volumeId, arr.members.filter((m) => m.state !== 'faulty').length);
}

export function relocationSteps(a: Host, b: Host, plan: RelocationPlan): Step[] {
  const { volumeId, remote, local } = plan;
  const localPath = async () => {
    const p = await partitionPath(a, local.driveId, local.owner);
    assert.ok(p, 'the local partition exists');
    return p;
  };
  return [
    {
      name: 'create-local-partition',
      async run() {
        if (await partitionPath(a, local.driveId, local.owner)) return;
        const d = (await a.listDrives()).find((x) => x.id === local.driveId);
        const f = d?.free.find((x) => x.end - x.start >= local.sizeBytes);
        assert.ok(f, `room for ${local.sizeBytes} bytes on ${local.driveId}`);
        await a.createPartitions(local.driveId, [
          { ...local.owner, extent: { start: f.start, end: f.start + local.sizeBytes } },
        ]);
      },
    },
    {
      name: 'add-local-member',
      async run() {
        await a.addMember(volumeId, await localPath());
      },
    },
    { name: 'raid-devices-up', run: () => fitRaidDevices(a, volumeId) },
    {
      name: 'wait-resync',
      async run() {
        const arr = await waitIdle(a, volumeId, 300_000);
        const p = await localPath();
        assert.equal(arr.members.find((m) => m.devicePath === p)?.state, 'in_sync', 'local member in sync');
      },
    },
    {
      name: 'remove-remote-member',
      async run() {
        const dev = await a.findDeviceByNqn(remote.nqn);
        if (!dev) return;
        const arr = await a.getArray(volumeId);
        const p = await localPath();
        // add before remove: never drop the remote leg unless the new one holds the data
        assert.equal(arr?.members.find((m) => m.devicePath === p)?.state, 'in_sync', 'local member in sync');
        await a.removeMember(volumeId, dev);
      },
    },
    { name: 'raid-devices-down', run: () => fitRaidDevices(a, volumeId) },
    { name: 'disconnect', run: () => a.disconnect(remote.nqn) },
    {
      name: 'revoke',
      async run() {
        if ((await b.listExports()).some((e) => e.nqn === remote.nqn))
          await b.revokeHost(remote.nqn, a.hostNqn);
      },
    },
    { name: 'unexport', run: () => b.unexport(remote.nqn) },
    {
      name: 'wipe',
      async run() {
        if (await partitionPath(b, remote.driveId, remote.owner))
          await b.wipePartition(remote.driveId, remote.owner);
      },
    },
    { name: 'free', run: () => b.deletePartition(remote.driveId, remote.owner) },
  ];
}

export interface RebuildPlan {
  volumeId: string;
  /** The lost remote member (its target is gone): B's partition and its subsystem NQN. */
  lost: { driveId: string; owner: Owner; nqn: string };
  /** The replacement: a new replica on B, exported to A. */
  fresh: { driveId: string; owner: Owner; sizeBytes: number };
  listen: { address: string; port: number };
  ctrlLossTmoSec: number;
}

/** Rebuild after a lost member: drop it, carve + export + connect a new one, add, resync, free. */
export function rebuildSteps(a: Host, b: Host, plan: RebuildPlan): Step[] {
  const { volumeId, lost, fresh } = plan;
  const nqn = subsystemNqn(fresh.owner);
  return [
    {
      name: 'remove-faulty-members',
      async run() {
        const arr = await a.getArray(volumeId);
        assert.ok(arr, `array of ${volumeId} is assembled`);
        for (const m of arr.members) if (m.state === 'faulty') await a.removeMember(volumeId, m.devicePath);
      },
    },
    { name: 'disconnect-lost', run: () => a.disconnect(lost.nqn) },
    {
      name: 'create-fresh-partition',
      async run() {
        if (await partitionPath(b, fresh.driveId, fresh.owner)) return;
        const d = (await b.listDrives()).find((x) => x.id === fresh.driveId);
        const f = d?.free.find((x) => x.end - x.start >= fresh.sizeBytes);
        assert.ok(f, `room for ${fresh.sizeBytes} bytes on ${fresh.driveId}`);
        await b.createPartitions(fresh.driveId, [
          { ...fresh.owner, extent: { start: f.start, end: f.start + fresh.sizeBytes } },
        ]);
      },
    },
    {
      name: 'export-fresh',
      async run() {
        const p = await partitionPath(b, fresh.driveId, fresh.owner);
        assert.ok(p, 'the fresh partition exists');
        await b.exportReplica({ ...fresh.owner, devicePath: p, listen: plan.listen });
      },
    },
    { name: 'grant', run: () => b.grantHost(nqn, { hostNqn: a.hostNqn }) },
    {
      name: 'connect',
      async run() {
        await a.connect({ subsystemNqn: nqn, target: plan.listen, ctrlLossTmoSec: plan.ctrlLossTmoSec });
      },
    },
    {
      name: 'add-fresh-member',
      async run() {
        const dev = await a.findDeviceByNqn(nqn);
        assert.ok(dev, 'the fresh replica is connected');
        await a.addMember(volumeId, dev);
      },
    },
    {
      name: 'wait-rebuild',
      async run() {
        const arr = await waitIdle(a, volumeId, 300_000);
        assert.equal(
          arr.members.filter((m) => m.state === 'in_sync').length,
          arr.raidDevices,
          'all slots in sync',
        );
      },
    },
    {
      name: 'wipe-lost',
      async run() {
        if ((await b.listExports()).some((e) => e.nqn === lost.nqn)) await b.unexport(lost.nqn);
        if (await partitionPath(b, lost.driveId, lost.owner)) await b.wipePartition(lost.driveId, lost.owner);
      },
    },
    { name: 'free-lost', run: () => b.deletePartition(lost.driveId, lost.owner) },
  ];
}

export interface CatchUpPlan {
  volumeId: string;
  /** The member that was away: B's partition, exported again as `nqn` once B is back. */
  away: { driveId: string; owner: Owner; nqn: string };
  listen: { address: string; port: number };
  ctrlLossTmoSec: number;
}

/**
 * A member back from a reboot catches up from the bitmap: its stale faulty entry and dead
 * controller go, B exports it again, A connects and re-adds it (never a full rebuild), md resyncs
 * the dirty chunks.
 */
export function catchUpSteps(a: Host, b: Host, plan: CatchUpPlan): Step[] {
  const { volumeId, away } = plan;
  return [
    {
      name: 'remove-faulty-members',
      async run() {
        const arr = await a.getArray(volumeId);
        assert.ok(arr, `array of ${volumeId} is assembled`);
        for (const m of arr.members) if (m.state === 'faulty') await a.removeMember(volumeId, m.devicePath);
      },
    },
    {
      name: 'drop-dead-controller',
      async run() {
        // a controller left from before the reboot may still be reconnecting: it never comes back
        if (!(await b.listExports()).some((e) => e.nqn === away.nqn)) await a.disconnect(away.nqn);
      },
    },
    {
      name: 'export-again',
      async run() {
        const p = await partitionPath(b, away.driveId, away.owner);
        assert.ok(p, 'the partition that was away is still there');
        await b.exportReplica({ ...away.owner, devicePath: p, listen: plan.listen });
      },
    },
    { name: 'grant', run: () => b.grantHost(away.nqn, { hostNqn: a.hostNqn }) },
    {
      name: 'connect',
      async run() {
        if (await a.findDeviceByNqn(away.nqn)) return;
        await a.connect({ subsystemNqn: away.nqn, target: plan.listen, ctrlLossTmoSec: plan.ctrlLossTmoSec });
      },
    },
    {
      name: 're-add',
      async run() {
        const dev = await a.findDeviceByNqn(away.nqn);
        assert.ok(dev, 'the member is connected again');
        await a.reAddMember(volumeId, dev);
      },
    },
    {
      name: 'wait-catch-up',
      async run() {
        const arr = await waitIdle(a, volumeId, 300_000);
        assert.equal(arr.degraded, false, 'every slot in sync');
      },
    },
  ];
}
