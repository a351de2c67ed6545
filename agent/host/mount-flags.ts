// The mount flags a staged filesystem may carry (CSI VolumeCapability.mount.mount_flags, which
// Kubernetes fills from a StorageClass's mountOptions): value-less VFS and XFS options that change
// how the filesystem is used, never what is mounted or whether it is writable. The CSI edge
// (csi/capabilities.ts) refuses anything else with INVALID_ARGUMENT; both Hosts refuse it too,
// before anything changes, since LinuxHost joins the flags into mount's `-o` and a comma or `=`
// there would add options of the caller's choosing. Left out on purpose: ro/rw (read-only is the
// access mode's and NodePublish's `readonly`), bind, remount and the like (they change what mount
// does), nouuid (MeshStor always sets it) and every option that takes a value.
import { InvalidArgumentError } from './errors.ts';

export const MOUNT_FLAGS = [
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
] as const;

const ALLOWED: ReadonlySet<string> = new Set(MOUNT_FLAGS);

/**
 * The allowed flags that are the mount's own, not the filesystem's (mountinfo lists them among the
 * per-mount options, in this order; a bind carries them): both Hosts report and keep these.
 */
export const PER_MOUNT_FLAGS = ['nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime'] as const;

/**
 * Flags of which one mount takes at most one: mount(8) would apply the last given, or the kernel
 * its own precedence (strictatime over noatime), so a list holding two says nothing clear.
 */
const EXCLUSIVE = [
  ['noatime', 'relatime', 'strictatime'],
  ['lazytime', 'nolazytime'],
  ['discard', 'nodiscard'],
  ['largeio', 'nolargeio'],
] as const;

export type MountFlagsProblem =
  | { kind: 'not-allowed'; flag: string }
  | { kind: 'contradictory'; flags: [string, string] };

/** What is wrong with a list of mount flags, or undefined; a flag given twice is fine. */
export function mountFlagsProblem(flags: readonly string[]): MountFlagsProblem | undefined {
  const asked = new Set(flags);
  for (const flag of asked) if (!ALLOWED.has(flag)) return { kind: 'not-allowed', flag };
  for (const group of EXCLUSIVE) {
    const [a, b] = group.filter((f) => asked.has(f));
    if (a && b) return { kind: 'contradictory', flags: [a, b] };
  }
  return undefined;
}

/** The Hosts' guard: the flags, each once, or InvalidArgumentError (nothing was changed). */
export function checkMountFlags(flags: readonly string[] = []): string[] {
  const p = mountFlagsProblem(flags);
  if (p?.kind === 'not-allowed')
    throw new InvalidArgumentError(
      `mount flag ${JSON.stringify(p.flag.slice(0, 64))} is not one MeshStor allows`,
    );
  if (p) throw new InvalidArgumentError(`mount flags ${p.flags.join(' and ')} contradict each other`);
  return [...new Set(flags)];
}
