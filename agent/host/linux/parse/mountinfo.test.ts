import { describe, expect, it } from 'vitest';
import { fixture } from './fixtures/load.ts';
import { mountAt, NODE_FS, parseMountinfo } from './mountinfo.ts';

describe('/proc/self/mountinfo', () => {
  const mounts = parseMountinfo(fixture<string>('mountinfo'));
  const at = (p: string) => mountAt(mounts, p);

  it('the XFS mount: its device number, source and root', () => {
    expect(at('/mnt/cap/fs')).toMatchObject({
      fstype: 'xfs',
      root: '/',
      source: expect.stringMatching(/^\/dev\/md\d+$/),
      dev: expect.stringMatching(/^9:\d+$/),
    });
    expect(at('/mnt/cap/fs')?.options).toContain('rw');
  });

  it('a read-only bind of it at a path with a space: same device and root, its own ro', () => {
    const b = at('/mnt/cap/pub lished');
    expect(b?.dev).toBe(at('/mnt/cap/fs')?.dev);
    expect(b?.root).toBe('/');
    expect(b?.options).toContain('ro');
    expect(fixture<string>('mountinfo')).toContain('/mnt/cap/pub\\040lished');
  });

  it('a bound device node shows the devtmpfs holding it, rooted at the node', () => {
    const d = at('/mnt/cap/dev/block');
    expect(NODE_FS.has(d?.fstype ?? '')).toBe(true);
    expect(d?.root).toMatch(/^\/md\d+$/);
    expect(d?.dev).not.toBe(at('/mnt/cap/fs')?.dev);
  });

  it('the topmost of stacked mounts wins; nothing is at an unmounted path', () => {
    const stacked = parseMountinfo(
      '30 1 0:5 / /a rw - tmpfs tmpfs rw\n31 30 9:127 / /a rw,relatime - xfs /dev/md127 rw\n',
    );
    expect(mountAt(stacked, '/a')?.fstype).toBe('xfs');
    expect(at('/mnt/nothing-here')).toBeUndefined();
  });
});
