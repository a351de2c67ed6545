// The fence layer (ADR 0006): every local member of an array sits on a device-mapper device of its
// own (`linear` over the whole partition) instead of on the partition itself. Fencing loads the
// `error` table into it: from then on every IO md sends to the local leg fails at once, below md,
// without md's reconfiguration path (which waits behind IO stalled on a cut remote leg). The layer
// is named after the volume and the partition (names.ts guardName) and carries MeshStor's dm UUID,
// so a restarted agent finds it; a device-mapper device without that UUID is never touched.
//
// ArrayInfo never shows the layer: a member on a layer is reported as its partition (the name
// says which), so callers keep naming members by their partitions. Commands run through the exec
// wrapper; the device list is read from /sys/block/dm-*/dm.
import { readdir, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { DeviceInUseError, ForeignSuperblockError } from '../errors.ts';
import { guardName, guardPrefix, guardUuid, partitionOfGuard } from '../names.ts';
import type { OpOptions } from '../types.ts';
import { exists, readOpt, readText, waitFor } from './context.ts';
import { Section } from './devices.ts';
import { errorTable, type GuardTable, linearTable, parseGuardTable } from './parse/dm.ts';

/** A device-mapper device as sysfs shows it. */
export interface DmDevice {
  /** Its block device's kernel name: dm-N. */
  block: string;
  name: string;
  uuid: string;
}

/** Every device-mapper device (empty without dm loaded). */
export async function readDmDevices(): Promise<DmDevice[]> {
  const out: DmDevice[] = [];
  for (const b of await readdir('/sys/block').catch(() => [] as string[])) {
    if (!b.startsWith('dm-')) continue;
    const name = await readOpt(`/sys/block/${b}/dm/name`);
    if (name) out.push({ block: b, name, uuid: (await readOpt(`/sys/block/${b}/dm/uuid`)) ?? '' });
  }
  return out;
}

const ours = (d: DmDevice) => d.uuid === guardUuid(d.name) && partitionOfGuard(d.name) !== undefined;

/** The partition a member block device stands for: its own name, or the one under a fence layer. */
export async function memberBlock(block: string): Promise<string> {
  if (!block.startsWith('dm-')) return block;
  const name = await readOpt(`/sys/block/${block}/dm/name`);
  const uuid = await readOpt(`/sys/block/${block}/dm/uuid`);
  const part = name && uuid === guardUuid(name) ? partitionOfGuard(name) : undefined;
  return part ?? block;
}

const held = async (block: string) =>
  (await readdir(`/sys/block/${block}/holders`).catch(() => [] as string[])).length > 0;

export class Guards extends Section {
  private async table(name: string, o?: OpOptions): Promise<GuardTable | undefined> {
    const r = await this.c.x('dmsetup', ['table', name], o);
    return parseGuardTable(r.stdout);
  }

  /** The volume's fence layers on this machine (only those carrying MeshStor's UUID). */
  async of(volumeId: string): Promise<DmDevice[]> {
    const prefix = guardPrefix(volumeId);
    return (await readDmDevices()).filter((d) => d.name.startsWith(prefix) && ours(d));
  }

  /**
   * The device to give md for `path`: a local partition gets its fence layer (made, or an idle
   * leftover of a crash put back to passing IO); anything else (a remote namespace) is itself.
   * Refuses a device-mapper name that is taken by something that is not this layer.
   */
  async wrap(volumeId: string, path: string, o?: OpOptions): Promise<string> {
    const real = await realpath(path).catch(() => undefined);
    if (!real) return path;
    const part = basename(real);
    if (!(await exists(`/sys/class/block/${part}/partition`))) return path;
    const dev = await readText(`/sys/class/block/${part}/dev`);
    const sectors = Number(await readText(`/sys/class/block/${part}/size`));
    const name = guardName(volumeId, part);
    const found = (await readDmDevices()).find((d) => d.name === name);
    if (found) {
      if (!ours(found))
        throw new ForeignSuperblockError(
          `device-mapper name ${name} is taken by another device; not using it`,
        );
      const t = await this.table(name, o);
      const passes = t?.kind === 'linear' && t.dev === dev && t.offset === 0 && t.sectors === sectors;
      if (!passes) {
        // a leftover (cut, or of another size): only an idle one is put back to passing IO
        if (await held(found.block))
          throw new DeviceInUseError(`fence layer ${name} is in use and does not pass ${path} through`);
        await this.load(name, linearTable(sectors, dev), o);
      }
      return `/dev/${found.block}`;
    }
    await this.c.x(
      'dmsetup',
      ['create', name, '--uuid', guardUuid(name), '--table', linearTable(sectors, dev)],
      o,
    );
    let block = '';
    await waitFor(async () => {
      block = (await readDmDevices()).find((d) => d.name === name)?.block ?? '';
      return block !== '' && (await exists(`/dev/${block}`));
    }, `device node of ${name}`);
    return `/dev/${block}`;
  }

  private async load(name: string, table: string, o?: OpOptions): Promise<void> {
    // --noudevsync: nothing waits for udev (it may be slow or absent); --nolockfs: no filesystem
    // sits on the layer (md does), so there is nothing to freeze; --noflush: IO already queued is
    // not waited for beyond what the suspend itself needs (the local disk's in-flight IO)
    await this.c.x('dmsetup', ['load', '--noudevsync', name, '--table', table], o);
    await this.c.x('dmsetup', ['resume', '--noudevsync', '--noflush', '--nolockfs', name], o);
  }

  /**
   * Cuts the volume's local legs: every fence layer of the volume gets the error table, so IO to
   * the local partitions fails at once whatever md is doing. Never reads or locks md. Returns the
   * partitions cut (those already cut included). Idempotent.
   */
  async cut(volumeId: string, o?: OpOptions): Promise<string[]> {
    const out: string[] = [];
    for (const g of await this.of(volumeId)) {
      const t = await this.table(g.name, o);
      const sectors = t?.sectors ?? Number(await readText(`/sys/block/${g.block}/size`));
      if (t?.kind !== 'error') await this.load(g.name, errorTable(sectors), o);
      out.push(`/dev/${partitionOfGuard(g.name)}`);
    }
    return out;
  }

  /** Follows a partition's new size (after it grew) in its fence layer, if it has one. */
  async resize(volumeId: string, partitionPath: string, o?: OpOptions): Promise<void> {
    const part = basename(await realpath(partitionPath));
    const g = (await this.of(volumeId)).find((d) => d.name === guardName(volumeId, part));
    if (!g) return;
    const t = await this.table(g.name, o);
    const sectors = Number(await readText(`/sys/class/block/${part}/size`));
    if (t?.kind === 'linear' && t.sectors !== sectors)
      await this.load(g.name, linearTable(sectors, t.dev), o);
  }

  /** The block device md knows for a member named by its partition (its fence layer, if any). */
  async mdDevice(volumeId: string, path: string): Promise<string> {
    const part = basename((await realpath(path).catch(() => undefined)) ?? path);
    const g = (await this.of(volumeId)).find((d) => d.name === guardName(volumeId, part));
    return g ? `/dev/${g.block}` : path;
  }

  /**
   * Removes the volume's fence layers that nothing holds (md stopped, or the member removed). A
   * layer md still holds stays.
   */
  async release(volumeId: string, o?: OpOptions): Promise<void> {
    for (const g of await this.of(volumeId)) {
      if (!(await held(g.block))) await this.c.x('dmsetup', ['remove', g.name], o);
    }
  }

  /**
   * Removes the fence layer over `partition` if nothing holds it (a crash's leftover); refuses when
   * md still holds it. Needed before the partition itself is judged busy: a cut layer (error table)
   * no longer holds the partition, so its holders alone would not show that it is still a member.
   */
  async releaseOver(volumeId: string, partition: string, what: string, o?: OpOptions): Promise<void> {
    const part = basename((await realpath(partition).catch(() => undefined)) ?? partition);
    const g = (await this.of(volumeId)).find((d) => d.name === guardName(volumeId, part));
    if (!g) return;
    const holders = await readdir(`/sys/block/${g.block}/holders`).catch(() => [] as string[]);
    if (holders.length > 0)
      throw new DeviceInUseError(
        `not going to ${what} ${partition}: its fence layer ${g.name} is held by ${holders.join(', ')}`,
      );
    await this.c.x('dmsetup', ['remove', g.name], o);
  }
}
