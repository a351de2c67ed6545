// The Host's snapshot steps on Linux (docs/adr/0010-snapshots.md): freezing and thawing the
// filesystem an array holds (fsfreeze, so the member detached under it needs no log recovery), and
// copying a detached member's data area onto a restored volume's array (dd with O_DIRECT, reading
// the snapshot only: it stays usable for more restores).

import { realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { CommandError, InvalidArgumentError, NotFoundError } from '../errors.ts';
import type { OpOptions } from '../types.ts';
import { check, readText } from './context.ts';
import { devNumber, readMounts, Section } from './devices.ts';
import { memberData } from './parse/mdadm-data-offset.ts';

/** A copy's time bound: at least a minute, and 8 MiB/s for the bytes (TCG guests are slow). */
const copyTimeoutMs = (bytes: number) => 60_000 + Math.ceil(bytes / (8 * 1024 * 1024)) * 1000;

export class SnapshotSteps extends Section {
  /** A mount point of the filesystem on the device, or undefined when none is mounted. */
  private async mountPointOf(devicePath: string): Promise<string | undefined> {
    const dev = await devNumber(devicePath);
    if (!dev) throw new NotFoundError(`no block device ${devicePath}`);
    return (await readMounts()).find((m) => m.dev === dev && m.root === '/')?.target;
  }

  async freezeFilesystem(devicePath: string, o?: OpOptions): Promise<boolean> {
    check(o);
    const at = await this.mountPointOf(devicePath);
    if (!at) return false;
    try {
      await this.c.x('fsfreeze', ['--freeze', at], o);
    } catch (e) {
      // frozen already (a step resumed after a kill): EBUSY, which is the state we want
      if (!(e instanceof CommandError && /busy/i.test(e.stderr))) throw e;
    }
    return true;
  }

  async thawFilesystem(devicePath: string, o?: OpOptions): Promise<void> {
    check(o);
    const at = await this.mountPointOf(devicePath);
    if (!at) return;
    try {
      await this.c.x('fsfreeze', ['--unfreeze', at], o);
    } catch (e) {
      // not frozen: EINVAL, nothing to undo
      if (!(e instanceof CommandError && /invalid argument/i.test(e.stderr))) throw e;
    }
  }

  async copyMemberData(source: string, target: string, o?: OpOptions): Promise<void> {
    check(o);
    const examined = await this.c.x('mdadm', ['--examine', source], o);
    const data = memberData(examined.stdout);
    if (!data)
      throw new InvalidArgumentError(`${source} carries no MD 1.x superblock: not a detached member`);
    const room = Number(await readText(`/sys/class/block/${basename(await realpath(target))}/size`)) * 512;
    // the filesystem spans the whole array it was made on: a smaller target would cut it
    if (room < data.arrayBytes)
      throw new InvalidArgumentError(
        `${target} (${room} bytes) is smaller than the ${data.arrayBytes} bytes to copy`,
      );
    const bytes = data.arrayBytes;
    const offset = data.offsetBytes;
    await this.c.x(
      'dd',
      [
        `if=${source}`,
        `of=${target}`,
        'bs=1M',
        `skip=${offset}`,
        `count=${bytes}`,
        'iflag=direct,skip_bytes,count_bytes',
        'oflag=direct',
        'conv=fsync',
        'status=none',
      ],
      o,
      { timeoutMs: copyTimeoutMs(bytes) },
    );
  }
}
