// MD RAID1: mdadm creates, assembles, adds and grows; the state comes from md's sysfs, and which
// array a device belongs to from `mdadm --detail/--examine --export`. Members are failed and
// removed through sysfs (that also works for a member whose device node is gone).
import { readdir, readFile, readlink, realpath, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  CommandError,
  ForeignSuperblockError,
  InvalidArgumentError,
  LastInSyncMemberError,
  NotFoundError,
  ReAddRefusedError,
} from '../errors.ts';
import { arrayName, ownerFromSubsystemNqn } from '../names.ts';
import type { ArrayCreateSpec, ArrayInfo, BitmapInfo, OpOptions } from '../types.ts';
import { check, exists, readRaw, waitFor } from './context.ts';
import { Section, sameDevice } from './devices.ts';
import { Guards, memberBlock } from './guard.ts';
import { arrayInfoFrom, arrayRunning, type MdFiles, memberFrom } from './parse/md-sysfs.ts';
import {
  type MdIdentity,
  parseExamine,
  parseExamineEvents,
  parseMdDevname,
  parseMdIdentity,
} from './parse/mdadm.ts';
import { parseExamineBitmap } from './parse/mdadm-bitmap.ts';

/** The files of /sys/block/<md> that make its ArrayInfo. */
export async function readMdFiles(md: string): Promise<MdFiles> {
  const base = `/sys/block/${md}/md`;
  const members = [];
  for (const entry of await readdir(base)) {
    if (!entry.startsWith('dev-')) continue;
    const link = await readlink(join(base, entry, 'block')).catch(() => undefined);
    members.push({
      entry,
      // a member on its fence layer (guard.ts) is reported as the partition under it
      block: link === undefined ? undefined : await memberBlock(basename(link)),
      state: await readRaw(join(base, entry, 'state')),
      slot: await readRaw(join(base, entry, 'slot')),
    });
  }
  return {
    md,
    size: await readFile(`/sys/block/${md}/size`, 'utf8'),
    raidDisks: await readFile(join(base, 'raid_disks'), 'utf8'),
    degraded: await readRaw(join(base, 'degraded')),
    syncAction: await readRaw(join(base, 'sync_action')),
    syncCompleted: await readRaw(join(base, 'sync_completed')),
    mismatchCnt: await readRaw(join(base, 'mismatch_cnt')),
    members,
  };
}

interface Running {
  md: string;
  id: MdIdentity;
}

export class Arrays extends Section {
  private readonly guards = new Guards(this.c, this.devices);

  /** The fence layers (md's devices) for these members: local partitions get theirs. */
  private async wrapAll(volumeId: string, devices: readonly string[], o?: OpOptions): Promise<string[]> {
    const out: string[] = [];
    for (const d of devices) out.push(await this.guards.wrap(volumeId, d, o));
    return out;
  }

  /** Cuts the volume's local legs below md (Host.cutLocalLegs). */
  cutLocalLegs(volumeId: string, o?: OpOptions): Promise<string[]> {
    check(o);
    return this.guards.cut(volumeId, o);
  }

  /** Follows a grown partition in its fence layer (Partitions.growPartition). */
  followGrowth(volumeId: string, partitionPath: string, o?: OpOptions): Promise<void> {
    return this.guards.resize(volumeId, partitionPath, o);
  }

  /**
   * Before a partition is deleted or wiped: removes an idle fence layer left over it, refuses one
   * an array still holds (cut, it no longer holds the partition itself).
   */
  releaseLeftover(volumeId: string, partitionPath: string, what: string, o?: OpOptions): Promise<void> {
    return this.guards.releaseOver(volumeId, partitionPath, what, o);
  }
  /** The running array (/sys/block/mdN) with this name, if any. */
  private async findArray(name: string, o?: OpOptions): Promise<Running | undefined> {
    for (const b of await readdir('/sys/block')) {
      if (!/^md\d+$/.test(b)) continue;
      if (!arrayRunning(await readRaw(`/sys/block/${b}/md/array_state`))) continue;
      const r = await this.c.x('mdadm', ['--detail', '--export', `/dev/${b}`], o, { okCodes: [0, 1, 2] });
      const id = parseMdDevname(r.stdout) ?? parseMdIdentity(r.stdout);
      if (id?.name === name) return { md: b, id };
    }
    return undefined;
  }

  private async arrayInfo(a: Running): Promise<ArrayInfo> {
    return arrayInfoFrom(await readMdFiles(a.md), a.id);
  }

  private async requireArray(volumeId: string, o?: OpOptions) {
    const name = arrayName(volumeId);
    const a = await this.findArray(name, o);
    if (!a) throw new NotFoundError(`array ${name} is not assembled`);
    return { ...a, info: await this.arrayInfo(a) };
  }

  async getArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo | undefined> {
    check(o);
    const a = await this.findArray(arrayName(volumeId), o);
    if (!a) return undefined;
    try {
      return await this.arrayInfo(a);
    } catch (e) {
      // stopped between finding it and reading it (an unstage under the agent's pass): its sysfs
      // files went with it, and it is as gone as one never found
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !(await this.findArray(arrayName(volumeId), o)))
        return undefined;
      throw e;
    }
  }

  /** The MD superblock on a device, or undefined when it has none. */
  private async examine(path: string, o?: OpOptions): Promise<MdIdentity | undefined> {
    const r = await this.c.x('mdadm', ['--examine', '--export', path], o, { okCodes: [0, 1] });
    return parseExamine(r.code, r.stdout);
  }

  async createArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const name = arrayName(spec.volumeId);
    if (spec.devices.length < 1) throw new InvalidArgumentError('an array needs at least one device');
    await this.c.ensureModules(o);
    const running = await this.findArray(name, o);
    if (running) {
      const info = await this.arrayInfo(running);
      const all = await Promise.all(
        spec.devices.map(async (d) =>
          (await Promise.all(info.members.map((m) => sameDevice(m.devicePath, d)))).some(Boolean),
        ),
      );
      if (all.every(Boolean)) return info;
      throw new ForeignSuperblockError(`array ${name} is already running with other members`);
    }
    // not running: any fence layer of the volume nothing holds is a crash's leftover
    await this.guards.release(spec.volumeId, o);
    for (const d of spec.devices) {
      await this.devices.refuseBusy(d, `create array ${name} on`);
      const sb = await this.examine(d, o);
      if (sb) {
        throw new ForeignSuperblockError(
          `${d} carries an MD superblock of array ${sb.fullName ?? '?'} (${sb.uuid}); not creating over it`,
        );
      }
      await this.devices.refuseSignature(d, o);
    }
    await this.c.x(
      'mdadm',
      [
        '--create',
        `/dev/md/${name}`,
        '--run',
        '--level=1',
        `--raid-devices=${spec.devices.length}`,
        '--metadata=1.2',
        '--bitmap=internal',
        `--name=${name}`,
        '--homehost=any',
        ...(spec.devices.length === 1 ? ['--force'] : []),
        ...(await this.wrapAll(spec.volumeId, spec.devices, o)),
      ],
      o,
    );
    return (await this.requireArray(spec.volumeId, o)).info;
  }

  async assembleArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const name = arrayName(spec.volumeId);
    if (spec.devices.length < 1) throw new InvalidArgumentError('assembling needs at least one device');
    await this.c.ensureModules(o);
    const running = await this.findArray(name, o);
    if (running) return this.arrayInfo(running);
    const uuids = new Set<string>();
    for (const d of spec.devices) {
      const sb = await this.examine(d, o);
      if (!sb || sb.name !== name) {
        throw new ForeignSuperblockError(
          `${d} has no superblock of array ${name} (found ${sb?.fullName ?? 'none'})`,
        );
      }
      uuids.add(sb.uuid);
    }
    if (uuids.size !== 1) throw new ForeignSuperblockError(`devices of ${name} carry different array UUIDs`);
    await this.guards.release(spec.volumeId, o);
    const devices = await this.wrapAll(spec.volumeId, spec.devices, o);
    await this.c.x('mdadm', ['--assemble', `/dev/md/${name}`, '--run', ...devices], o);
    return (await this.requireArray(spec.volumeId, o)).info;
  }

  async addMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = await this.requireArray(volumeId, o);
    for (const m of a.info.members) if (await sameDevice(m.devicePath, devicePath)) return a.info;
    await this.guards.releaseOver(volumeId, devicePath, `add to ${a.info.name}`, o);
    await this.devices.refuseBusy(devicePath, `add to ${a.info.name}`);
    const sb = await this.examine(devicePath, o);
    if (sb && sb.uuid !== a.info.uuid) {
      throw new ForeignSuperblockError(
        `${devicePath} carries an MD superblock of array ${sb.fullName ?? '?'}`,
      );
    }
    if (!sb) await this.devices.refuseSignature(devicePath, o);
    await this.c.x('mdadm', [`/dev/${a.md}`, '--add', await this.guards.wrap(volumeId, devicePath, o)], o);
    return (await this.requireArray(volumeId, o)).info;
  }

  /** The superblock's event count of a device, or undefined when it has none. */
  private async events(path: string, o?: OpOptions): Promise<number | undefined> {
    const r = await this.c.x('mdadm', ['--examine', '--export', path], o, { okCodes: [0, 1] });
    return parseExamineEvents(r.code, r.stdout);
  }

  /** An in-sync member's device: its superblock and bitmap are the array's current ones. */
  private inSyncMember(info: ArrayInfo): string {
    const m = info.members.find((x) => x.state === 'in_sync');
    if (!m) throw new NotFoundError(`array ${info.name} has no in-sync member`);
    return m.devicePath;
  }

  async reAddMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    let a = await this.requireArray(volumeId, o);
    for (const m of a.info.members) {
      // by path too: a vanished device's faulty entry keeps its old name, which a new one may take
      if (m.devicePath !== devicePath && !(await sameDevice(m.devicePath, devicePath))) continue;
      if (m.state !== 'faulty') return a.info;
      // its faulty entry first: a failed copy holds nothing the array needs
      await this.removeMember(volumeId, m.devicePath, o);
      a = await this.requireArray(volumeId, o);
    }
    await this.guards.releaseOver(volumeId, devicePath, `re-add to ${a.info.name}`, o);
    await this.devices.refuseBusy(devicePath, `re-add to ${a.info.name}`);
    const sb = await this.examine(devicePath, o);
    if (!sb)
      throw new ReAddRefusedError(`${devicePath} carries no MD superblock: only a full rebuild can use it`);
    if (sb.uuid !== a.info.uuid)
      throw new ForeignSuperblockError(
        `${devicePath} carries an MD superblock of array ${sb.fullName ?? '?'}`,
      );
    const mine = await this.events(devicePath, o);
    const current = await this.events(this.inSyncMember(a.info), o);
    // md would take a member whose count is ahead as current and resync nothing: it was written
    // by another holder of the array after it left, so its bitmap is not this array's to trust
    if (mine !== undefined && current !== undefined && mine > current) {
      throw new ReAddRefusedError(
        `${devicePath} is ahead of ${a.info.name} (events ${mine} > ${current}): written elsewhere after it left; only a full rebuild can use it`,
      );
    }
    try {
      await this.c.x(
        'mdadm',
        [`/dev/${a.md}`, '--re-add', await this.guards.wrap(volumeId, devicePath, o)],
        o,
      );
    } catch (e) {
      if (!(e instanceof CommandError) || o?.signal?.aborted) throw e;
      throw new ReAddRefusedError(`md refused to re-add ${devicePath} to ${a.info.name}: ${e.stderr.trim()}`);
    }
    return (await this.requireArray(volumeId, o)).info;
  }

  async readBitmap(volumeId: string, o?: OpOptions): Promise<BitmapInfo> {
    check(o);
    const a = await this.requireArray(volumeId, o);
    const dev = this.inSyncMember(a.info);
    const r = await this.c.x('mdadm', ['--examine-bitmap', dev], o, { okCodes: [0, 1, 2] });
    const b = parseExamineBitmap(r.code, r.stdout);
    if (!b) throw new NotFoundError(`array ${a.info.name} has no write-intent bitmap on ${dev}`);
    return b;
  }

  async setResyncSpeedLimit(volumeId: string, kibPerSec: number | undefined, o?: OpOptions): Promise<void> {
    check(o);
    if (kibPerSec !== undefined && !(Number.isInteger(kibPerSec) && kibPerSec > 0))
      throw new InvalidArgumentError(
        `resync speed limit ${kibPerSec} KiB/s: a positive whole number, please`,
      );
    const a = await this.requireArray(volumeId, o);
    await writeFile(
      `/sys/block/${a.md}/md/sync_speed_max`,
      kibPerSec === undefined ? 'system' : String(kibPerSec),
    );
  }

  async setWriteMostly(volumeId: string, devicePath: string, on: boolean, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = await this.requireArray(volumeId, o);
    const m = a.info.members.find((x) => x.devicePath === devicePath);
    if (!m) throw new NotFoundError(`${devicePath} is not a member of ${a.info.name}`);
    if (m.writeMostly === on) return a.info;
    const mdDev = await this.guards.mdDevice(volumeId, devicePath);
    await writeFile(
      `/sys/block/${a.md}/md/dev-${basename(mdDev)}/state`,
      on ? 'writemostly' : '-writemostly',
    );
    return (await this.requireArray(volumeId, o)).info;
  }

  async removeMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = await this.requireArray(volumeId, o);
    const m = a.info.members.find((x) => x.devicePath === devicePath);
    if (!m) return a.info;
    const inSync = a.info.members.filter((x) => x.state === 'in_sync');
    if (m.state === 'in_sync' && inSync.length <= 1) {
      throw new LastInSyncMemberError(
        `${devicePath} is the last in-sync member of ${a.info.name}; not removing it`,
      );
    }
    // through sysfs: it also works for a member whose device node is gone (lost remote namespace)
    const st = `/sys/block/${a.md}/md/dev-${basename(await this.guards.mdDevice(volumeId, devicePath))}/state`;
    if (m.state !== 'faulty') await writeFile(st, 'faulty');
    await waitFor(async () => {
      try {
        await writeFile(st, 'remove');
        return true;
      } catch {
        return !(await exists(st));
      }
    }, `removal of ${devicePath} from ${a.info.name}`);
    await this.guards.releaseOver(volumeId, devicePath, 'release the fence layer of', o);
    return (await this.requireArray(volumeId, o)).info;
  }

  async setRaidDevices(volumeId: string, count: number, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    if (!Number.isInteger(count) || count < 1)
      throw new InvalidArgumentError(`raid-devices ${count} is not >= 1`);
    const a = await this.requireArray(volumeId, o);
    if (a.info.raidDevices === count) return a.info;
    const slotted = a.info.members.filter((m) => m.slot !== undefined);
    if (count < slotted.length) {
      throw new InvalidArgumentError(
        `${a.info.name} has ${slotted.length} active members: remove some before setting raid-devices to ${count}`,
      );
    }
    await this.c.x(
      'mdadm',
      ['--grow', `/dev/${a.md}`, `--raid-devices=${count}`, ...(count === 1 ? ['--force'] : [])],
      o,
    );
    return (await this.requireArray(volumeId, o)).info;
  }

  async growArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = await this.requireArray(volumeId, o);
    await this.c.x('mdadm', ['--grow', `/dev/${a.md}`, '--size=max'], o);
    return (await this.requireArray(volumeId, o)).info;
  }

  /**
   * The running md device of a volume, found without mdadm and without reading any member: the md
   * device holding one of the volume's fence layers, the /dev/md/<name> link mdadm made, or the one
   * with a member namespace whose subsystem NQN names the volume (sysfs only). (`mdadm
   * --detail` reads a member's superblock: after the cut, the local one fails and the next one is
   * the stalled remote leg, so it would wait up to ctrl-loss-tmo.)
   */
  private async mdOfVolume(volumeId: string): Promise<string | undefined> {
    const running = async (md: string) =>
      /^md\d+$/.test(md) && arrayRunning(await readRaw(`/sys/block/${md}/md/array_state`));
    for (const g of await this.guards.of(volumeId)) {
      for (const h of await readdir(`/sys/block/${g.block}/holders`).catch(() => [] as string[]))
        if (await running(h)) return h;
    }
    const link = await realpath(`/dev/md/${arrayName(volumeId)}`).catch(() => undefined);
    const md = link ? basename(link) : undefined;
    if (md && (await running(md))) return md;
    // no local member and no link: a member namespace whose subsystem NQN names the volume
    for (const b of await readdir('/sys/block')) {
      if (!(await running(b))) continue;
      for (const e of await readdir(`/sys/block/${b}/md`)) {
        if (!e.startsWith('dev-')) continue;
        const nqn = await readRaw(`/sys/block/${e.slice(4)}/device/subsysnqn`);
        if (nqn && ownerFromSubsystemNqn(nqn.trim())?.volumeId === volumeId) return b;
      }
    }
    return undefined;
  }

  async fenceArray(volumeId: string, o?: OpOptions): Promise<boolean> {
    check(o);
    // 1. below md, first: the local legs' fence layers fail every IO from now on. This neither
    // reads nor locks md, so it takes what the local disk's in-flight IO takes, whatever md waits
    // for (ADR 0006: the md step below once took 35 s behind a cut remote leg).
    await this.guards.cut(volumeId, o);
    // 2. md's view: every member failed, local ones first, through `mdadm --fail <device>`
    // (the SET_DISK_FAULTY ioctl, which md handles without its reconfiguration lock; md's sysfs
    // state file takes that lock and waits while md's thread writes a superblock to a stalled
    // leg). The local member failed, md refuses to fail the last in-sync one (EBUSY) and marks the
    // array broken (MD_BROKEN): md_submit_bio then fails every write bio, a cache flush included,
    // with EIO. That is what makes the fsync after a write stalled on the cut leg fail: the write
    // itself is reported complete when the leg is given up (its local half was written before the
    // cut), and a flush sent to the cut layer alone would succeed (dm's error target has no flush
    // to fail). Only sysfs and that ioctl are used: nothing here reads a member.
    const md = await this.mdOfVolume(volumeId);
    if (!md) return false;
    const files = await readMdFiles(md);
    const members = files.members.map((f) => ({
      f,
      m: memberFrom(f),
      // the device md knows (a fence layer for a local member): dev-<kernel name>
      mdDev: `/dev/${f.entry.slice(4)}`,
    }));
    const isLocal = (dev: string) => exists(`/sys/class/block/${basename(dev)}/partition`);
    const local = await Promise.all(members.map((x) => isLocal(x.m.devicePath)));
    const ordered = members.map((x, i) => ({ ...x, local: local[i] === true }));
    ordered.sort((x, y) => Number(y.local) - Number(x.local));
    const hadFaulty = members.some((x) => x.m.state === 'faulty');
    let failed = 0;
    let broken = false;
    for (const { m, mdDev } of ordered) {
      if (m.state === 'faulty') continue;
      // a vanished device node (a lost namespace) is named by mdadm's keyword instead
      const which = (await exists(mdDev)) ? mdDev : 'detached';
      // exit 2 and "Device or resource busy" for the last member (seen on 6.12): md broke the array
      const r = await this.c.x('mdadm', [`/dev/${md}`, '--fail', which], o, { okCodes: [0, 1, 2] });
      if (r.code === 0) failed++;
      else if (/busy/i.test(r.stderr)) broken = true;
      else throw new CommandError(`mdadm /dev/${md} --fail ${which}`, r.code, r.stderr);
    }
    if (!broken) {
      const after = arrayInfoFrom(await readMdFiles(md), undefined);
      if (after.members.some((m) => m.state !== 'faulty'))
        throw new Error(
          `array ${arrayName(volumeId)} (${md}) was not fenced: ${after.members.map((m) => `${m.devicePath}:${m.state}`).join(', ')}`,
        );
    }
    return failed > 0 || broken || !hadFaulty;
  }

  async stopArray(volumeId: string, o?: OpOptions): Promise<void> {
    check(o);
    const name = arrayName(volumeId);
    const a = await this.findArray(name, o);
    if (a) {
      await this.devices.refuseBusy(`/dev/${a.md}`, `stop array ${name} on`);
      await this.c.x('mdadm', ['--stop', `/dev/${a.md}`], o);
    }
    // also when it was stopped already: a crash between the stop and this leaves them behind
    await this.guards.release(volumeId, o);
  }
}
