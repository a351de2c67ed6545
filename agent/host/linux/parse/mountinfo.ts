// /proc/self/mountinfo: what is mounted where (the kernel's mount table as this process sees it).
// Line format (proc(5)): id parent major:minor root target options [optional fields...] - fstype
// source superoptions; spaces, tabs, newlines and backslashes in paths are octal escapes (\040).

export interface MountEntry {
  /** major:minor of the mounted filesystem's device. */
  dev: string;
  /** What of that filesystem the mount shows: '/' unless it binds a subtree or a single file. */
  root: string;
  target: string;
  /** Per-mount options: `ro` here is the mount's own flag (a bind can be read-only alone). */
  options: string[];
  fstype: string;
  source: string;
}

const unescapeOctal = (s: string) =>
  s.replace(/\\(\d{3})/g, (_m, c: string) => String.fromCharCode(Number.parseInt(c, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    const [, , dev, root, target, options] = f;
    if (sep < 0 || !dev || !root || !target || !options) continue;
    out.push({
      dev,
      root: unescapeOctal(root),
      target: unescapeOctal(target),
      options: options.split(','),
      fstype: f[sep + 1] ?? '',
      source: unescapeOctal(f[sep + 2] ?? ''),
    });
  }
  return out;
}

/** The topmost mount at a path (the last one listed there). */
export const mountAt = (mounts: MountEntry[], path: string): MountEntry | undefined =>
  mounts.findLast((m) => m.target === path);

/** Filesystems a device node we bind comes from (/dev). */
export const NODE_FS = new Set(['devtmpfs', 'tmpfs']);
