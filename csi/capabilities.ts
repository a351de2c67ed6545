// What MeshStor serves of a CSI VolumeCapability: single-node access, mount (XFS) or block, and a
// mount's flags from the allow-list (agent/host/mount-flags.ts).
import { MOUNT_FLAGS, mountFlagsProblem } from '../agent/host/mount-flags.ts';
import type { VolumeCapability } from './types.ts';
import { shown } from './validate.ts';

const SUPPORTED_MODES = new Set([
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
]);

/** Why a capability cannot be served, or undefined. */
export function capabilityProblem(c: VolumeCapability): string | undefined {
  if (!c.access_mode || c.access_mode.mode === 'UNKNOWN') return 'access_mode is required';
  if (!c.block && !c.mount) return 'access_type (block or mount) is required';
  // access_type is a oneof, but a hand-made message can carry both on the wire (the decoder keeps
  // each): staging would then make XFS and publishing bind the raw device. One or the other.
  if (c.block && c.mount) return 'access_type must be block or mount, not both';
  if (!SUPPORTED_MODES.has(c.access_mode.mode)) {
    return `access mode ${shown(String(c.access_mode.mode))} is not supported: a MeshStor volume is used by one node at a time`;
  }
  if (c.mount && c.mount.fs_type !== '' && c.mount.fs_type !== 'xfs')
    return `fs_type ${shown(c.mount.fs_type)} is not supported (xfs)`;
  if (c.mount) return mountFlagsProblemText(c.mount.mount_flags);
  return undefined;
}

/** A checked mount capability's flags, each once, in the order given (none for block). */
export function mountFlagsOf(c: VolumeCapability | null): string[] {
  return [...new Set(c?.mount?.mount_flags ?? [])];
}

/** What a refused flag is told: the common mistakes with their reason (the allowed list follows). */
function refusal(flag: string): string {
  if (flag === '') return 'an empty mount flag is not accepted';
  const f = `mount flag ${shown(flag)}`;
  if (flag.includes(',')) return `${f} holds a comma: give each option as a flag of its own`;
  if (flag.includes('=')) return `${f} takes a value: options with values are not accepted`;
  if (flag === 'ro' || flag === 'rw')
    return `${f} is not accepted: read-only comes from the access mode and NodePublish's readonly`;
  if (flag === 'nouuid') return `${f} is not accepted: MeshStor always mounts with nouuid`;
  return `${f} is not accepted`;
}

/** Why these mount flags cannot be served, naming the flag (cut) and the allowed ones, or undefined. */
function mountFlagsProblemText(flags: readonly string[]): string | undefined {
  const p = mountFlagsProblem(flags);
  if (!p) return undefined;
  if (p.kind === 'contradictory')
    return `mount flags ${shown(p.flags[0])} and ${shown(p.flags[1])} contradict each other: give one`;
  return `${refusal(p.flag)} (allowed: ${MOUNT_FLAGS.join(', ')})`;
}
