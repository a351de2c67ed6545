// Publish targets on the real filesystem: the CO expects the driver to create the target path (a
// directory, or a file for a raw block volume) and to delete it on unpublish. The driver runs as
// root, so it deletes only what it made itself, recognised after a restart too: a directory it
// made holds a marker file (hidden under the bind while published), a file it made holds the
// marker text (hidden under the bound device node). Anything else at a target is left alone.
import { lstat, mkdir, open, readdir, rmdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { makeDirectories } from './host/make-directories.ts';
import type { MountPoints } from './node-volumes.ts';

/** The file in a target directory this driver made. */
export const DIR_MARKER = '.meshstor-publish-target';
/** The content of a target file this driver made. */
export const FILE_MARKER = 'meshstor publish target\n';

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** The first bytes of a regular file, or undefined if there is nothing there. */
async function head(path: string, bytes: number): Promise<string | undefined> {
  const f = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await f.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await f.close();
  }
}

/** Gone already (removed by a concurrent call) is what removing wanted; anything else is not. */
function goneIsFine(e: unknown): void {
  if (code(e) !== 'ENOENT') throw e;
}

export const fsMountPoints: MountPoints = {
  async ensure(path, kind, signal) {
    const existing = await lstat(path).catch((e: unknown) => {
      if (code(e) === 'ENOENT') return undefined;
      throw e;
    });
    // already there: ours from an earlier publish, or made by kubelet (then kubelet removes it)
    if (existing) return;
    await makeDirectories(dirname(path), signal);
    signal?.throwIfAborted();
    if (kind === 'dir') {
      await mkdir(path);
      await writeFile(join(path, DIR_MARKER), '', { flag: 'wx' });
    } else {
      await writeFile(path, FILE_MARKER, { flag: 'wx' });
    }
  },

  async remove(path, signal) {
    signal?.throwIfAborted();
    const st = await lstat(path).catch((e: unknown) => {
      if (code(e) === 'ENOENT') return undefined;
      throw e;
    });
    if (!st) return;
    if (st.isDirectory()) {
      const entries = await readdir(path);
      // only a directory holding nothing but our marker is ours to delete
      if (entries.length !== 1 || entries[0] !== DIR_MARKER) return;
      // two unpublishes of one target at once: the other one's removal is as good as ours
      await unlink(join(path, DIR_MARKER)).catch(goneIsFine);
      await rmdir(path).catch(goneIsFine);
      return;
    }
    if (st.isFile() && st.size === FILE_MARKER.length && (await head(path, st.size)) === FILE_MARKER)
      await unlink(path).catch(goneIsFine);
  },
};
