// Filesystems and publishing: mkfs.xfs, mount, bind mounts of a filesystem or a device node, with
// /proc/self/mountinfo as the state (a bound device node is recognised by the node's own device
// number, since mountinfo names the devtmpfs it lives on), xfs_growfs, statfs.
import { open, realpath, stat, statfs, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { DeviceInUseError, ForeignSuperblockError, InvalidArgumentError, NotFoundError } from '../errors.ts';
import { MIN_FILESYSTEM_BYTES } from '../filesystem-minimums.ts';
import { makeDirectories } from '../make-directories.ts';
import { checkMountFlags, PER_MOUNT_FLAGS } from '../mount-flags.ts';
import type { BindOptions, FsUsage, MountInfo, MountOptions, OpOptions } from '../types.ts';
import { check, readText } from './context.ts';
import { devNumber, nodeDev, readMounts, Section } from './devices.ts';
import { type MountEntry, mountAt } from './parse/mountinfo.ts';
import { usageFrom } from './parse/statfs.ts';
import { parseXfsSuperblock, XFS_SUPERBLOCK_READ_BYTES } from './parse/xfs-superblock.ts';

/**
 * The per-mount flags of a mount that a read-only bind of it is given again: util-linux (2.38 and
 * before) makes `mount --bind -o ro` a bind and then a `remount,bind,ro` with only the flags on
 * its command line, and the kernel's bind remount sets nosuid, nodev and noexec to what it is
 * given, so a read-only publish of a volume staged `nosuid` would lose it. No atime flag listed
 * is strictatime, named so the remount does not fall back to the kernel's default, relatime.
 * (A read-write bind is a bind alone: the kernel copies the source's flags.)
 */
const KEPT_ON_RO_BIND: ReadonlySet<string> = new Set([...PER_MOUNT_FLAGS, 'relatime']);
function perMountFlags(m: MountEntry): string[] {
  const kept = m.options.filter((f) => KEPT_ON_RO_BIND.has(f));
  return kept.includes('noatime') || kept.includes('relatime') ? kept : [...kept, 'strictatime'];
}

export class Filesystems extends Section {
  async makeFilesystem(devicePath: string, o?: OpOptions): Promise<void> {
    check(o);
    if (!(await devNumber(devicePath))) throw new NotFoundError(`no block device ${devicePath}`);
    const { type } = await this.devices.probe(devicePath, o);
    if (type === 'xfs') {
      if (!(await this.mkfsCutShort(devicePath))) return;
      // An mkfs.xfs that did not finish (killed with the NodeStage that ran it when kubelet's
      // deadline passed, or by a crash) leaves a superblock blkid calls XFS and the kernel will
      // not mount, and without this every later stage failed ("Structure needs cleaning"). No
      // write ever went through such a filesystem: making it again loses nothing. -f because
      // mkfs.xfs refuses to overwrite the XFS signature it left.
      await this.devices.refuseBusy(devicePath, 'format');
      await this.c.x('mkfs.xfs', ['-f', '-q', devicePath], o, { timeoutMs: 300_000 });
      return;
    }
    if (type) throw new ForeignSuperblockError(`${devicePath} carries ${type}; not formatting it`);
    const size =
      Number(await readText(`/sys/class/block/${basename(await realpath(devicePath))}/size`)) * 512;
    if (size < MIN_FILESYSTEM_BYTES.xfs)
      throw new InvalidArgumentError(
        `${devicePath} is too small for XFS (< ${MIN_FILESYSTEM_BYTES.xfs} bytes)`,
      );
    await this.devices.refuseBusy(devicePath, 'format');
    // no -f: mkfs.xfs itself refuses a device with a signature blkid did not report
    await this.c.x('mkfs.xfs', ['-q', devicePath], o, { timeoutMs: 300_000 });
  }

  /** Whether the XFS superblock on the device is still marked in progress by mkfs.xfs. */
  private async mkfsCutShort(devicePath: string): Promise<boolean> {
    const fh = await open(devicePath, 'r');
    try {
      const head = new Uint8Array(XFS_SUPERBLOCK_READ_BYTES);
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      return parseXfsSuperblock(head.subarray(0, bytesRead))?.inProgress === true;
    } finally {
      await fh.close();
    }
  }

  /** The topmost mount at a path. */
  private async mountAt(target: string): Promise<MountEntry | undefined> {
    const path = await realpath(target).catch(() => resolve(target));
    return mountAt(await readMounts(), path);
  }

  /** The mount at target when it is a filesystem (not a bound device node). */
  private async filesystemAt(target: string): Promise<MountEntry> {
    const m = await this.mountAt(target);
    if (!m || (await nodeDev(m.target))) throw new NotFoundError(`no filesystem is mounted on ${target}`);
    return m;
  }

  async mount(devicePath: string, target: string, o?: MountOptions): Promise<void> {
    check(o);
    const flags = checkMountFlags(o?.flags);
    const dev = await devNumber(devicePath);
    if (!dev) throw new NotFoundError(`no block device ${devicePath}`);
    const have = await this.mountAt(target);
    if (have?.dev === dev) return;
    if (have) throw new DeviceInUseError(`${target} already has ${have.source} mounted`);
    await makeDirectories(target, o?.signal);
    // nouuid: a volume restored from a snapshot (ADR 0010) is a block copy of its source, XFS UUID
    // included, and XFS refuses a second mount of one UUID; the source and its restores are
    // different volumes and may well be staged on one node. The flags are the allow-list's only
    // (checked above), so none can add an option of its own.
    await this.c.x('mount', ['-t', 'xfs', '-o', ['nouuid', ...flags].join(','), devicePath, target], o);
  }

  async bindMount(mountPoint: string, target: string, o: BindOptions = {}): Promise<void> {
    check(o);
    const src = await this.filesystemAt(mountPoint);
    const have = await this.mountAt(target);
    if (have?.target === src.target) throw new InvalidArgumentError(`not binding ${mountPoint} onto itself`);
    if (have) {
      if (have.dev !== src.dev || have.root !== src.root)
        throw new DeviceInUseError(`${target} already has ${have.source} mounted`);
      return this.keepBind(have, o.readonly === true, o);
    }
    const st = await stat(target).catch(() => undefined);
    if (st && !st.isDirectory()) throw new InvalidArgumentError(`${target} exists and is not a directory`);
    await makeDirectories(target, o?.signal);
    const ro = o.readonly ? ['-o', ['ro', ...perMountFlags(src)].join(',')] : [];
    await this.c.x('mount', ['--bind', ...ro, src.target, target], o);
  }

  async bindDevice(devicePath: string, target: string, o: BindOptions = {}): Promise<void> {
    check(o);
    const dev = await nodeDev(devicePath);
    if (!dev) throw new NotFoundError(`no block device ${devicePath}`);
    const have = await this.mountAt(target);
    if (have) {
      const bound = await nodeDev(have.target);
      if (bound !== dev) {
        throw new DeviceInUseError(
          `${target} already has ${bound ? `device ${bound} bound` : `${have.source} mounted`}`,
        );
      }
      return this.keepBind(have, o.readonly === true, o);
    }
    const st = await stat(target).catch(() => undefined);
    if (st && !st.isFile()) throw new InvalidArgumentError(`${target} exists and is not a file`);
    if (!st) {
      await makeDirectories(dirname(target), o.signal);
      await writeFile(target, '', { flag: 'a' });
    }
    await this.c.x('mount', ['--bind', ...(o.readonly ? ['-o', 'ro'] : []), devicePath, target], o);
  }

  /**
   * The same source is bound already: make its read-only flag what was asked. util-linux does a
   * `ro` bind as bind + remount, so a bind left read-write by a crash is finished here; a
   * read-only one is never made writable under whoever uses it.
   */
  private async keepBind(have: MountEntry, readonly: boolean, o: OpOptions): Promise<void> {
    const ro = have.options.includes('ro');
    if (ro === readonly) return;
    if (ro) throw new DeviceInUseError(`${have.target} is bound read-only; not making it writable`);
    await this.c.x(
      'mount',
      ['-o', ['remount', 'bind', 'ro', ...perMountFlags(have)].join(','), have.target],
      o,
    );
  }

  async getMount(target: string, o?: OpOptions): Promise<MountInfo | undefined> {
    check(o);
    const m = await this.mountAt(target);
    if (!m) return undefined;
    const node = await nodeDev(m.target);
    const sys = await realpath(`/sys/dev/block/${node ?? m.dev}`).catch(() => undefined);
    return {
      kind: node ? 'device' : 'filesystem',
      devicePath: sys ? `/dev/${basename(sys)}` : m.source,
      readonly: m.options.includes('ro'),
      ...(node ? {} : { options: m.options }),
    };
  }

  async unmount(target: string, o?: OpOptions): Promise<void> {
    check(o);
    const m = await this.mountAt(target);
    if (m) await this.c.x('umount', [m.target], o);
  }

  async growFilesystem(target: string, o?: OpOptions): Promise<void> {
    check(o);
    await this.c.x('xfs_growfs', [(await this.filesystemAt(target)).target], o);
  }

  async filesystemUsage(target: string, o?: OpOptions): Promise<FsUsage> {
    check(o);
    return usageFrom(await statfs((await this.filesystemAt(target)).target));
  }
}
