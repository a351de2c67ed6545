// Devices in use: device numbers, where a device is mounted or bound, which nvmet subsystems export
// it, and the refusals every section makes before touching a device (held, mounted, exported,
// carrying a signature).
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DeviceInUseError, ForeignSuperblockError, NotFoundError } from '../errors.ts';
import type { OpOptions } from '../types.ts';
import { exists, type LinuxContext, readOpt, readRaw } from './context.ts';
import { parseBlkidProbe, type Signature } from './parse/blkid.ts';
import { devOfRdev } from './parse/block-sysfs.ts';
import { type MountEntry, NODE_FS, parseMountinfo } from './parse/mountinfo.ts';
import { isNamespaceBlock, type NamespaceFiles } from './parse/nvme-sysfs.ts';

/** The NVMe namespace block devices in /sys/block, sorted by name. */
export async function readNamespaces(): Promise<NamespaceFiles[]> {
  const out: NamespaceFiles[] = [];
  for (const block of (await readdir('/sys/block')).sort()) {
    if (!isNamespaceBlock(block)) continue;
    const dev = `/sys/block/${block}/device`;
    out.push({
      block,
      transport: await readRaw(`${dev}/transport`),
      serial: await readRaw(`${dev}/serial`),
      wwid: await readRaw(`/sys/block/${block}/wwid`),
      subsysnqn: await readRaw(`${dev}/subsysnqn`),
    });
  }
  return out;
}

export const readMounts = async (): Promise<MountEntry[]> =>
  parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));

/** "major:minor" of the block device node at path (following symlinks), or undefined. */
export async function nodeDev(path: string): Promise<string | undefined> {
  const st = await stat(path, { bigint: true }).catch(() => undefined);
  return st?.isBlockDevice() ? devOfRdev(st.rdev) : undefined;
}

/** "major:minor" of a block device path, or undefined when there is none. */
export async function devNumber(path: string): Promise<string | undefined> {
  const real = await realpath(path).catch(() => undefined);
  return real ? readOpt(`/sys/class/block/${basename(real)}/dev`) : undefined;
}

export async function sameDevice(a: string, b: string): Promise<boolean> {
  const [x, y] = [await devNumber(a), await devNumber(b)];
  return x !== undefined && x === y;
}

export class Devices {
  private readonly c: LinuxContext;

  constructor(c: LinuxContext) {
    this.c = c;
  }

  /** The signature blkid finds on the device itself. */
  async probe(path: string, o?: OpOptions): Promise<Signature> {
    const r = await this.c.x('blkid', ['--probe', '--output', 'export', path], o, { okCodes: [0, 2] });
    return parseBlkidProbe(r.code, r.stdout);
  }

  /** Any signature (a filesystem, RAID or a partition table on the bare disk): not ours to take. */
  async refuseSignature(path: string, o?: OpOptions): Promise<void> {
    const sig = await this.probe(path, o);
    const type = sig.type ?? sig.ptType;
    if (type) throw new ForeignSuperblockError(`${path} carries a ${type} signature; not touching it`);
  }

  /** Where the device is mounted, or bound (a device node bound onto a file). */
  private async mountsOf(dev: string): Promise<string[]> {
    const out: string[] = [];
    for (const m of await readMounts()) {
      if (m.dev === dev) out.push(m.target);
      // a bound device node shows the number of the filesystem holding the node (devtmpfs), and
      // holds nothing open: without this, mdadm --stop would succeed under a block publish
      else if (m.root !== '/' && NODE_FS.has(m.fstype) && (await nodeDev(m.target)) === dev)
        out.push(m.target);
    }
    return out;
  }

  /** Subsystems (any, ours or not) whose namespace is this device. */
  async subsystemsOf(path: string): Promise<string[]> {
    const dev = await devNumber(path);
    const out: string[] = [];
    const subsystems = join(this.c.cfs, 'subsystems');
    if (!dev || !(await exists(subsystems))) return out;
    for (const s of await readdir(subsystems)) {
      const nsDir = join(subsystems, s, 'namespaces');
      for (const ns of await readdir(nsDir).catch(() => [] as string[])) {
        const p = await readOpt(join(nsDir, ns, 'device_path'));
        if (p && (await devNumber(p)) === dev) out.push(s);
      }
    }
    return out;
  }

  /** Refuses a device that is held (MD member, device mapper) or mounted. */
  async refuseBusy(path: string, what: string): Promise<void> {
    const real = await realpath(path).catch(() => undefined);
    if (!real) throw new NotFoundError(`no block device ${path}`);
    const name = basename(real);
    const holders = await readdir(`/sys/class/block/${name}/holders`).catch(() => [] as string[]);
    if (holders.length > 0)
      throw new DeviceInUseError(`not going to ${what} ${path}: held by ${holders.join(', ')}`);
    const dev = await devNumber(real);
    const mounts = dev ? await this.mountsOf(dev) : [];
    if (mounts.length > 0)
      throw new DeviceInUseError(`not going to ${what} ${path}: mounted on ${mounts.join(', ')}`);
  }

  /** refuseBusy, and refuses a device that is exported. */
  async refuseInUse(path: string, what: string): Promise<void> {
    await this.refuseBusy(path, what);
    const subs = await this.subsystemsOf(path);
    if (subs.length > 0)
      throw new DeviceInUseError(`not going to ${what} ${path}: exported as ${subs.join(', ')}`);
  }
}

/** A section of LinuxHost (partitions, target, initiator, arrays, filesystems): what they share. */
export abstract class Section {
  protected readonly c: LinuxContext;
  protected readonly devices: Devices;

  constructor(c: LinuxContext, devices: Devices) {
    this.c = c;
    this.devices = devices;
  }
}
