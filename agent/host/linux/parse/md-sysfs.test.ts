import { describe, expect, it } from 'vitest';
import { fixture, type ToolRun } from './fixtures/load.ts';
import { arrayInfoFrom, arrayRunning, type MdFiles, memberFrom, syncProgress } from './md-sysfs.ts';
import { parseMdIdentity } from './mdadm.ts';

interface Capture {
  arrayState: string;
  files: MdFiles;
}
const id = () => parseMdIdentity(fixture<ToolRun>('mdadm-detail').stdout);
const info = (name: string) => arrayInfoFrom(fixture<Capture>(name).files, id());
/** The remote leg: the nvme-tcp namespace (the one that is not a partition). */
const isRemote = (path: string) => !/p\d+$/.test(path);

describe('md sysfs', () => {
  it('a new RAID1 resyncing: both legs in sync, progress between 0 and 1', () => {
    const c = fixture<Capture>('md-resync');
    expect(arrayRunning(c.arrayState)).toBe(true);
    const a = info('md-resync');
    expect(a.syncAction).toBe('resync');
    expect(a.syncProgress).toBeGreaterThanOrEqual(0);
    expect(a.syncProgress).toBeLessThan(1);
    expect(a.members.map((m) => m.state)).toEqual(['in_sync', 'in_sync']);
    expect(a.degraded).toBe(false);
  });

  it('a clean array: idle, no progress, two slotted in-sync members, its size in bytes', () => {
    const a = info('md-clean');
    expect(a).toMatchObject({ name: id()?.name, uuid: id()?.uuid, raidDevices: 2, degraded: false });
    expect(a.syncAction).toBe('idle');
    expect(a.syncProgress).toBeUndefined();
    expect(a.mismatchCount).toBe(0);
    expect(a.members.map((m) => [m.slot, m.state]).sort()).toEqual([
      [0, 'in_sync'],
      [1, 'in_sync'],
    ]);
    expect(a.devicePath).toMatch(/^\/dev\/md\d+$/);
    expect(a.sizeBytes).toBe(Number(fixture<Capture>('md-clean').files.size) * 512);
    expect(a.sizeBytes % 512).toBe(0);
  });

  it('a failed leg: faulty and the array degraded', () => {
    const a = info('md-faulty');
    expect(a.degraded).toBe(true);
    expect(a.members.find((m) => isRemote(m.devicePath))?.state).toBe('faulty');
    expect(a.members.find((m) => !isRemote(m.devicePath))?.state).toBe('in_sync');
  });

  it('a leg added back: rebuilding in its slot while md recovers', () => {
    const files = fixture<Capture>('md-recovering').files;
    // md flags a recovering member `spare` although it holds a slot: the slot is what tells
    expect(files.members.find((m) => isRemote(m.entry))?.state?.trim()).toBe('spare');
    const a = info('md-recovering');
    expect(a.syncAction).toBe('recover');
    expect(a.degraded).toBe(true);
    expect(a.syncProgress).toBeGreaterThanOrEqual(0);
    const remote = a.members.find((m) => isRemote(m.devicePath));
    expect(remote?.state).toBe('rebuilding');
    expect(remote?.slot).toBe(1);
  });

  it('a third device on a two-device array is a spare without a slot', () => {
    const a = info('md-spare');
    expect(a.members).toHaveLength(3);
    expect(a.members.filter((m) => m.state === 'spare').map((m) => m.slot)).toEqual([undefined]);
  });

  it('reads a member whose block link is gone by its directory name', () => {
    expect(memberFrom({ entry: 'dev-nvme4n1', block: undefined, state: 'faulty\n', slot: 'none\n' })).toEqual(
      {
        devicePath: '/dev/nvme4n1',
        slot: undefined,
        state: 'faulty',
        writeMostly: false,
      },
    );
  });

  it('a write-mostly member keeps its state and says write-mostly', () => {
    const m = memberFrom({
      entry: 'dev-nvme7n1',
      block: undefined,
      state: 'in_sync,write_mostly\n',
      slot: '1\n',
    });
    expect([m.state, m.writeMostly]).toEqual(['in_sync', true]);
  });

  it('an array that is not running', () => {
    expect(arrayRunning(undefined)).toBe(false);
    expect(arrayRunning('inactive\n')).toBe(false);
    expect(arrayRunning('clear\n')).toBe(false);
  });

  it('no progress when idle even if sync_completed has numbers', () => {
    expect(syncProgress('100 / 400\n', 'resync')).toBe(0.25);
    expect(syncProgress('100 / 400\n', 'idle')).toBeUndefined();
    expect(syncProgress('none\n', 'recover')).toBeUndefined();
  });
});
