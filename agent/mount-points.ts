// Publish targets on the real filesystem: the CO expects the driver to create the target path
// (a directory, or a file for a raw block volume) and to delete it on unpublish.
import { lstat, mkdir, rmdir, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { MountPoints } from './node-volumes.ts';

export const fsMountPoints: MountPoints = {
  async ensure(path, kind) {
    if (kind === 'dir') {
      await mkdir(path, { recursive: true });
      return;
    }
    await mkdir(dirname(path), { recursive: true });
    // append mode: creates a missing file, leaves an existing one (or a bound device) untouched
    await writeFile(path, '', { flag: 'a' });
  },
  // rmdir or unlink of a regular file only, never rm -r: anything else there is not ours to delete
  async remove(path) {
    const st = await lstat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (!st) return;
    if (st.isDirectory()) await rmdir(path);
    else if (st.isFile()) await unlink(path);
    else throw new Error(`${path} is neither a directory nor a regular file; not deleting it`);
  },
};
