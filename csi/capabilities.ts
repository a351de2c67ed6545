// What MeshStor serves of a CSI VolumeCapability: single-node access, mount (XFS) or block.
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
  return undefined;
}
