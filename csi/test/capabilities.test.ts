// A capability's mount flags on their own: the allow-list, and how a refusal reads.
import { describe, expect, it } from 'vitest';
import { MOUNT_FLAGS } from '../../agent/host/mount-flags.ts';
import { capabilityProblem, mountFlagsOf } from '../capabilities.ts';

const mountWith = (mount_flags: string[]) => ({
  mount: { fs_type: 'xfs', mount_flags, volume_mount_group: '' },
  access_mode: { mode: 'SINGLE_NODE_WRITER' as const },
});

describe('mount flags', () => {
  it('takes every flag of the allow-list, alone or together, and none at all', () => {
    expect(MOUNT_FLAGS).toEqual([
      'noatime',
      'nodiratime',
      'relatime',
      'strictatime',
      'lazytime',
      'nolazytime',
      'nodev',
      'nosuid',
      'noexec',
      'sync',
      'dirsync',
      'discard',
      'nodiscard',
      'largeio',
      'nolargeio',
      'inode64',
    ]);
    for (const flag of MOUNT_FLAGS) expect(capabilityProblem(mountWith([flag])), flag).toBeUndefined();
    expect(capabilityProblem(mountWith([]))).toBeUndefined();
    const together = ['noatime', 'nodiratime', 'lazytime', 'nodev', 'nosuid', 'noexec', 'discard', 'inode64'];
    expect(capabilityProblem(mountWith(together))).toBeUndefined();
  });

  it('passes each flag once, in the order given; a block capability has none', () => {
    expect(mountFlagsOf(mountWith(['nodev', 'noatime', 'nodev', 'noatime']))).toEqual(['nodev', 'noatime']);
    expect(mountFlagsOf({ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } })).toEqual([]);
    expect(mountFlagsOf(null)).toEqual([]);
  });

  it.each([
    ['ro', /mount flag "ro" is not accepted: read-only comes from the access mode/],
    ['rw', /mount flag "rw" is not accepted: read-only comes from the access mode/],
    ['nouuid', /mount flag "nouuid" is not accepted: MeshStor always mounts with nouuid/],
    ['bind', /mount flag "bind" is not accepted \(allowed: noatime, /],
    ['remount', /mount flag "remount" is not accepted/],
    ['rbind', /mount flag "rbind" is not accepted/],
    ['NOATIME', /mount flag "NOATIME" is not accepted/],
    ['uid=0', /mount flag "uid=0" takes a value: options with values are not accepted/],
    ['logbufs=8', /mount flag "logbufs=8" takes a value/],
    ['noatime,ro', /mount flag "noatime,ro" holds a comma: give each option as a flag of its own/],
    [' noatime', /mount flag " noatime" is not accepted/],
    ['noatime\n', /mount flag "noatime\\n" is not accepted/],
    ['', /an empty mount flag is not accepted/],
  ])('refuses %j, naming it and the allowed flags', (flag, message) => {
    const p = capabilityProblem(mountWith(['noatime', flag]));
    expect(p).toMatch(message);
    expect(p).toContain(`(allowed: ${MOUNT_FLAGS.join(', ')})`);
  });

  it.each([
    [['noatime', 'relatime'], /mount flags "noatime" and "relatime" contradict each other/],
    [['strictatime', 'noatime'], /mount flags "noatime" and "strictatime" contradict each other/],
    [['lazytime', 'nolazytime'], /"lazytime" and "nolazytime"/],
    [['nodiscard', 'discard'], /"discard" and "nodiscard"/],
    [['largeio', 'nolargeio'], /"largeio" and "nolargeio"/],
  ])('refuses %j together: one of them says what to do', (flags, message) => {
    expect(capabilityProblem(mountWith(flags))).toMatch(message);
  });

  it('never echoes a long flag whole', () => {
    const p = capabilityProblem(mountWith([`no${'a'.repeat(100_000)}`]));
    expect(p).toContain('…');
    expect(p?.length).toBeLessThan(400);
  });
});
