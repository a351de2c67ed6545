// Publish targets on a real (temporary) filesystem: created as asked, deleted without recursion.
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fsMountPoints } from '../mount-points.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'meshstor-targets-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('fsMountPoints', () => {
  it('creates a directory target and a file target (with its parent), idempotently', async () => {
    await fsMountPoints.ensure(join(root, 'pod/dir'), 'dir');
    await fsMountPoints.ensure(join(root, 'pod/dir'), 'dir');
    expect((await stat(join(root, 'pod/dir'))).isDirectory()).toBe(true);
    const file = join(root, 'block/pvc/dev');
    await fsMountPoints.ensure(file, 'file');
    await writeFile(file, 'kept');
    await fsMountPoints.ensure(file, 'file');
    expect((await stat(file)).size).toBe(4);
  });

  it('removes a file or an empty directory, accepts a missing one, never deletes a full directory', async () => {
    const file = join(root, 'dev');
    await fsMountPoints.ensure(file, 'file');
    await fsMountPoints.remove(file);
    await fsMountPoints.remove(file);
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
    const dir = join(root, 'dir');
    await mkdir(dir);
    await fsMountPoints.remove(dir);
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
    await mkdir(join(root, 'full/inner'), { recursive: true });
    await expect(fsMountPoints.remove(join(root, 'full'))).rejects.toThrow(/ENOTEMPTY/);
    expect((await stat(join(root, 'full/inner'))).isDirectory()).toBe(true);
  });
});
