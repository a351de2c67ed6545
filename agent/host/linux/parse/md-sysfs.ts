// The md driver's sysfs (/sys/block/mdN/md/...): members, their slots and states, sync progress.
// md.ts reads the files as they are (untrimmed, undefined when absent); these turn them into the
// Host's ArrayInfo.
import type { ArrayInfo, ArrayMember } from '../../types.ts';
import type { MdIdentity } from './mdadm.ts';

/** One md member: the dev-<name> directory under md/. */
export interface MdMemberFiles {
  /** The directory's name: dev-<block device name>. */
  entry: string;
  /** Target of its `block` link (…/<block device name>), undefined when unreadable. */
  block: string | undefined;
  /** Comma-separated flags: in_sync, faulty, write_mostly, blocked, spare, ... */
  state: string | undefined;
  /** The slot number, or `none`. */
  slot: string | undefined;
}

/** The files of /sys/block/mdN that ArrayInfo is made of. */
export interface MdFiles {
  md: string;
  /** /sys/block/mdN/size: 512-byte sectors. */
  size: string;
  raidDisks: string;
  degraded: string | undefined;
  syncAction: string | undefined;
  /** `done / total` in sectors while syncing, `none` when idle. */
  syncCompleted: string | undefined;
  mismatchCnt: string | undefined;
  members: MdMemberFiles[];
}

/** A running array: /sys/block/mdN/md/array_state is neither absent, `clear` nor `inactive`. */
export function arrayRunning(arrayState: string | undefined): boolean {
  const s = arrayState?.trim();
  return !!s && s !== 'clear' && s !== 'inactive';
}

const lastSegment = (p: string) => p.slice(p.lastIndexOf('/') + 1);

export function memberFrom(f: MdMemberFiles): ArrayMember {
  const flags = (f.state ?? '').trim().split(',');
  const slotText = f.slot?.trim();
  const slot = slotText && slotText !== 'none' ? Number(slotText) : undefined;
  const state: ArrayMember['state'] = flags.includes('faulty')
    ? 'faulty'
    : flags.includes('in_sync')
      ? 'in_sync'
      : slot !== undefined
        ? 'rebuilding'
        : 'spare';
  return {
    devicePath: `/dev/${lastSegment(f.block ?? f.entry.slice(4))}`,
    slot,
    state,
    writeMostly: flags.includes('write_mostly'),
  };
}

/** 0..1 while a sync runs, undefined when idle or unknown. */
export function syncProgress(syncCompleted: string | undefined, action: string): number | undefined {
  const m = /^(\d+)\s*\/\s*(\d+)$/.exec((syncCompleted ?? 'none').trim());
  return m && action !== 'idle' ? Number(m[1]) / Math.max(1, Number(m[2])) : undefined;
}

export function arrayInfoFrom(f: MdFiles, id: MdIdentity | undefined): ArrayInfo {
  const action = f.syncAction?.trim() ?? 'idle';
  return {
    name: id?.name ?? '',
    uuid: id?.uuid ?? '',
    devicePath: `/dev/${f.md}`,
    raidDevices: Number(f.raidDisks.trim()),
    members: [...f.members].sort((a, b) => (a.entry < b.entry ? -1 : 1)).map(memberFrom),
    degraded: Number(f.degraded?.trim() ?? '0') > 0,
    syncAction: action,
    syncProgress: syncProgress(f.syncCompleted, action),
    mismatchCount: Number(f.mismatchCnt?.trim() ?? '0'),
    sizeBytes: Number(f.size.trim()) * 512,
  };
}
