// Publish targets on a real (temporary) filesystem: created as asked, and deleted only when this
// driver made them (a root process must never delete a file or directory it did not create).
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeDirectories } from '../host/make-directories.ts';
import { DIR_MARKER, fsMountPoints } from '../mount-points.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'meshstor-targets-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('fsMountPoints', () => {
  it('creates a directory target and a file target (with its parent), idempotently', async () => {
    await fsMountPoints.ensure(join(root, 'pod/dir'), 'dir');
    await fsMountPoints.ensure(join(root, 'pod/dir'), 'dir');
    expect((await stat(join(root, 'pod/dir'))).isDirectory()).toBe(true);
    const file = join(root, 'block/pvc/dev');
    await fsMountPoints.ensure(file, 'file');
    expect((await stat(file)).isFile()).toBe(true);
    await fsMountPoints.ensure(file, 'file');
  });

  it('removes the directory and the file it made, accepts a missing one', async () => {
    const dir = join(root, 'pod/mount');
    await fsMountPoints.ensure(dir, 'dir');
    await fsMountPoints.remove(dir);
    expect(await exists(dir)).toBe(false);
    await fsMountPoints.remove(dir);
    const file = join(root, 'block/dev');
    await fsMountPoints.ensure(file, 'file');
    await fsMountPoints.remove(file);
    expect(await exists(file)).toBe(false);
    await fsMountPoints.remove(file);
  });

  it('never deletes an unrelated regular file, even an empty one, or one it did not create', async () => {
    const precious = join(root, 'precious');
    await writeFile(precious, 'data');
    await fsMountPoints.remove(precious);
    expect(await readFile(precious, 'utf8')).toBe('data');
    const empty = join(root, 'empty');
    await writeFile(empty, '');
    await fsMountPoints.remove(empty);
    expect(await exists(empty)).toBe(true);
    // there before the publish (kubelet's or anyone's): left to whoever made it
    await fsMountPoints.ensure(empty, 'file');
    await fsMountPoints.remove(empty);
    expect(await exists(empty)).toBe(true);
  });

  it('never deletes a directory it did not make, nor one that holds more than its marker', async () => {
    const foreign = join(root, 'foreign');
    await mkdir(foreign);
    await fsMountPoints.remove(foreign);
    expect(await exists(foreign)).toBe(true);
    const ours = join(root, 'ours');
    await fsMountPoints.ensure(ours, 'dir');
    await writeFile(join(ours, 'written-while-unmounted'), 'x');
    await fsMountPoints.remove(ours);
    expect(await exists(join(ours, 'written-while-unmounted'))).toBe(true);
    expect(await exists(join(ours, DIR_MARKER))).toBe(true);
  });

  it('gives up under /proc instead of looping (Node’s recursive mkdir never returns there)', async () => {
    await expect(fsMountPoints.ensure('/proc/meshstor-test/pods/x/mount', 'dir')).rejects.toThrow(/ENOENT/);
    await expect(fsMountPoints.ensure('/proc/meshstor-test/block/dev', 'file')).rejects.toThrow(/ENOENT/);
  });

  it('makeDirectories stops when its signal aborts and refuses a file in the way', async () => {
    await expect(makeDirectories(join(root, 'a/b/c'), AbortSignal.abort())).rejects.toThrow();
    expect(await exists(join(root, 'a'))).toBe(false);
    await writeFile(join(root, 'f'), '');
    await expect(makeDirectories(join(root, 'f/x'))).rejects.toThrow(/not a directory/);
    await makeDirectories(join(root, 'a/b/c'));
    expect(await exists(join(root, 'a/b/c'))).toBe(true);
  });
});
