// `mkdir -p` that always ends. Node's recursive mkdir loops forever (a core at 100 %, a thread-pool
// thread never returned, so the process cannot exit) where mkdir answers ENOENT for a parent that
// exists, as under /proc; this makes at most one mkdir per component and stops when the signal
// aborts.
import { mkdir, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';

export async function makeDirectories(path: string, signal?: AbortSignal): Promise<void> {
  let at = path.startsWith(sep) ? sep : '';
  for (const part of path.split(sep).filter((p) => p !== '')) {
    signal?.throwIfAborted();
    at = join(at, part);
    try {
      await mkdir(at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // an existing component must be a directory (kubelet's own dir may be a symlink to one)
      if (!(await stat(at)).isDirectory()) throw new Error(`${at} exists and is not a directory`);
    }
  }
}
