// Where `npm run setup:kernel` caches the kernel, its modules and the base initramfs (outside the
// repository), and how the kernel tier finds them.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const CACHE = process.env.MESHSTOR_CACHE ?? join(homedir(), '.cache', 'meshstor', 'kernel');
export const CURRENT = join(CACHE, 'current.json');

export interface KernelBuild {
  /** Debian package, e.g. linux-image-6.12.57+deb12-cloud-amd64 */
  package: string;
  release: string;
  kernel: string;
  /** Base initramfs: busybox, tools + libraries, modules, Node 24. The project is appended per run. */
  initrd: string;
  /** Hash of what went into the initramfs (setup script + tool list). */
  stamp: string;
}

export function currentBuild(): KernelBuild | undefined {
  if (!existsSync(CURRENT)) return undefined;
  const b = JSON.parse(readFileSync(CURRENT, 'utf8')) as KernelBuild;
  return existsSync(b.kernel) && existsSync(b.initrd) ? b : undefined;
}
