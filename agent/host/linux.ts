// LinuxHost: the Host contract on a real machine. Commands go through the one exec wrapper
// (exec.ts); state is read from sysfs, configfs, /proc and the tools' machine-readable output
// (`sfdisk --json`, `mdadm --examine/--detail --export`, `blkid -o export`). Every operation
// observes first and does nothing when its result already holds, so it can be re-run after a
// crash at any point. Facts this code relies on are noted where they bite.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import {
  access,
  mkdir,
  readdir,
  readFile,
  readlink,
  realpath,
  rmdir,
  stat,
  statfs,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Extent } from '../../placement/index.ts';
import {
  CancelledError,
  CommandError,
  ConnectRefusedError,
  DeviceInUseError,
  ForeignSuperblockError,
  HostError,
  InvalidArgumentError,
  LastInSyncMemberError,
  NotFoundError,
} from './errors.ts';
import { exec as defaultExec, type Exec } from './exec.ts';
import { checkNewExtent, freeExtents, usableArea } from './geometry.ts';
import {
  arrayName,
  checkCtrlLoss,
  checkNqn,
  checkOwner,
  checkSecret,
  NQN_PREFIX,
  ownerFromName,
  PARTITION_TYPE,
  partitionName,
  partitionUuid,
  subsystemNqn,
} from './names.ts';
import type {
  ArrayCreateSpec,
  ArrayInfo,
  ArrayMember,
  BindOptions,
  ConnectSpec,
  Drive,
  ExportInfo,
  ExportSpec,
  FsUsage,
  Host,
  HostAccess,
  MountInfo,
  OpOptions,
  Owner,
  Partition,
  PartitionSpec,
} from './types.ts';

export interface LinuxHostOptions {
  hostNqn: string;
  /** Which local NVMe drives this host manages, by stable id (default: every PCIe NVMe drive). */
  driveFilter?: (id: string) => boolean;
  exec?: Exec;
  /** nvmet configfs root (default /sys/kernel/config/nvmet). */
  configfs?: string;
}

interface SfdiskTable {
  partitiontable: {
    label: string;
    firstlba?: number;
    lastlba?: number;
    sectorsize?: number;
    partitions?: { node: string; start: number; size: number; type: string; uuid?: string; name?: string }[];
  };
}

interface RawDrive extends Drive {
  sysName: string;
  hasTable: boolean;
  area: Extent;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exists = (p: string) =>
  access(p, constants.F_OK).then(
    () => true,
    () => false,
  );
const readText = async (p: string) => (await readFile(p, 'utf8')).trim();
const readOpt = (p: string) => readText(p).catch(() => undefined);

interface MountEntry {
  /** major:minor of the mounted filesystem's device. */
  dev: string;
  /** What of that filesystem the mount shows: '/' unless it binds a subtree or a single file. */
  root: string;
  target: string;
  /** Per-mount options: `ro` here is the mount's own flag (a bind can be read-only alone). */
  options: string[];
  fstype: string;
  source: string;
}

/** Filesystems a device node we bind comes from (/dev). */
const NODE_FS = new Set(['devtmpfs', 'tmpfs']);

const unescapeMount = (s: string) =>
  s.replace(/\\(\d{3})/g, (_m, c: string) => String.fromCharCode(Number.parseInt(c, 8)));

async function readMounts(): Promise<MountEntry[]> {
  const out: MountEntry[] = [];
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    // id parent major:minor root target options [optional fields...] - fstype source superopts
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    const [, , dev, root, target, options] = f;
    if (sep < 0 || !dev || !root || !target || !options) continue;
    out.push({
      dev,
      root: unescapeMount(root),
      target: unescapeMount(target),
      options: options.split(','),
      fstype: f[sep + 1] ?? '',
      source: unescapeMount(f[sep + 2] ?? ''),
    });
  }
  return out;
}

/** "major:minor" of the block device node at path (following symlinks), or undefined. */
async function nodeDev(path: string): Promise<string | undefined> {
  const st = await stat(path, { bigint: true }).catch(() => undefined);
  if (!st?.isBlockDevice()) return undefined;
  // glibc's dev_t encoding (gnu_dev_major/minor)
  const r = st.rdev;
  const major = ((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn);
  const minor = (r & 0xffn) | ((r >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function parseExport(out: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) r[line.slice(0, i)] = line.slice(i + 1);
  }
  return r;
}

/** A host id (UUID) derived from the host NQN: the kernel refuses one host id with two NQNs. */
function hostIdFor(nqn: string): string {
  const m = /uuid:([0-9a-f-]{36})$/.exec(nqn);
  if (m?.[1]) return m[1];
  const x = createHash('sha256').update(nqn).digest('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-4${x.slice(13, 16)}-8${x.slice(17, 20)}-${x.slice(20, 32)}`;
}

function check(o: OpOptions | undefined): void {
  if (o?.signal?.aborted) throw new CancelledError('operation cancelled before it started');
}

export class LinuxHost implements Host {
  readonly hostNqn: string;
  private readonly hostId: string;
  private readonly filter: (id: string) => boolean;
  private readonly run: Exec;
  private readonly cfs: string;
  private modules: Promise<void> | undefined;

  constructor(opts: LinuxHostOptions) {
    checkNqn(opts.hostNqn);
    this.hostNqn = opts.hostNqn;
    this.hostId = hostIdFor(opts.hostNqn);
    this.filter = opts.driveFilter ?? (() => true);
    this.run = opts.exec ?? defaultExec;
    this.cfs = opts.configfs ?? '/sys/kernel/config/nvmet';
  }

  private x(
    cmd: string,
    args: string[],
    o?: OpOptions,
    extra: { okCodes?: number[]; timeoutMs?: number } = {},
  ) {
    return this.run(cmd, args, { signal: o?.signal, ...extra });
  }

  // --- drives and partitions -------------------------------------------------------------------

  async listDrives(o?: OpOptions): Promise<Drive[]> {
    check(o);
    return (await this.rawDrives(o)).map(({ sysName: _s, hasTable: _h, area: _a, ...d }) => d);
  }

  private async rawDrives(o?: OpOptions): Promise<RawDrive[]> {
    const out: RawDrive[] = [];
    for (const name of (await readdir('/sys/block')).sort()) {
      // nvme<ctrl>c<ctrl>n<ns> are the hidden per-path devices of a multipath namespace
      if (!/^nvme\d+n\d+$/.test(name)) continue;
      const dev = `/sys/block/${name}/device`;
      // only PCIe drives are this node's own; fabrics namespaces (tcp, loop) are remote replicas
      if ((await readOpt(`${dev}/transport`)) !== 'pcie') continue;
      const id = (await readOpt(`${dev}/serial`)) || (await readOpt(`/sys/block/${name}/wwid`));
      if (!id || !this.filter(id)) continue;
      out.push(await this.readDrive(name, id, o));
    }
    return out;
  }

  private async readDrive(sysName: string, id: string, o?: OpOptions): Promise<RawDrive> {
    const path = `/dev/${sysName}`;
    const sizeBytes = Number(await readText(`/sys/block/${sysName}/size`)) * 512;
    const lbs = Number(await readText(`/sys/block/${sysName}/queue/logical_block_size`));
    const r = await this.x('sfdisk', ['--json', path], o, { okCodes: [0, 1] });
    let table: SfdiskTable['partitiontable'] | undefined;
    if (r.code === 0 && r.stdout.trim()) table = (JSON.parse(r.stdout) as SfdiskTable).partitiontable;
    const gpt = table?.label === 'gpt';
    const ss = table?.sectorsize ?? lbs;
    const area =
      gpt && table?.firstlba !== undefined && table.lastlba !== undefined
        ? { start: table.firstlba * ss, end: (table.lastlba + 1) * ss }
        : usableArea(sizeBytes, lbs);
    const partitions: Partition[] = (table?.partitions ?? []).map((p) => {
      const number = Number(/(\d+)$/.exec(p.node)?.[1]);
      const name = p.name ?? '';
      return {
        number,
        start: p.start * ss,
        end: (p.start + p.size) * ss,
        name,
        partUuid: (p.uuid ?? '').toLowerCase(),
        path: p.node,
        owner: ownerFromName(name),
      };
    });
    partitions.sort((a, b) => a.start - b.start);
    return {
      id,
      path,
      sysName,
      sizeBytes,
      logicalBlockSize: lbs,
      gptSlots: gpt ? 128 : 0,
      partitions,
      // a non-GPT table (MBR) is not ours to add to: nothing is free there
      free: table && !gpt ? [] : freeExtents(area, partitions),
      hasTable: table !== undefined,
      area,
    };
  }

  private async drive(id: string, o?: OpOptions): Promise<RawDrive> {
    const d = (await this.rawDrives(o)).find((x) => x.id === id);
    if (!d) throw new NotFoundError(`no drive with id ${JSON.stringify(id)}`);
    return d;
  }

  private async partition(driveId: string, owner: Owner, o?: OpOptions) {
    const d = await this.drive(driveId, o);
    const uuid = partitionUuid(owner);
    return { d, p: d.partitions.find((p) => p.partUuid === uuid) };
  }

  async createPartitions(driveId: string, specs: PartitionSpec[], o?: OpOptions): Promise<Partition[]> {
    check(o);
    for (const s of specs) checkOwner(s);
    const d = await this.drive(driveId, o);
    if (d.hasTable && d.gptSlots === 0)
      throw new InvalidArgumentError(`drive ${driveId} has a non-GPT partition table`);
    if (!d.hasTable) await this.refuseSignature(d.path, o);
    const taken: (Extent & { name: string })[] = [...d.partitions];
    const used = new Set(d.partitions.map((p) => p.number));
    const args: string[] = [];
    const wanted: { uuid: string; number: number }[] = [];
    for (const s of specs) {
      const uuid = partitionUuid(s);
      const have = d.partitions.find((p) => p.partUuid === uuid);
      if (have) {
        if (have.start !== s.extent.start || have.end !== s.extent.end) {
          throw new InvalidArgumentError(
            `drive ${driveId}: ${have.name} already exists at [${have.start}, ${have.end}), not at [${s.extent.start}, ${s.extent.end})`,
          );
        }
        wanted.push({ uuid, number: have.number });
        continue;
      }
      checkNewExtent(driveId, d.logicalBlockSize, d.area, taken, s.extent);
      let n = 1;
      while (used.has(n)) n++;
      if (n > 128) throw new InvalidArgumentError(`drive ${driveId}: all 128 GPT entries are used`);
      used.add(n);
      taken.push({ ...s.extent, name: partitionName(s) });
      const ss = d.logicalBlockSize;
      args.push(
        `--new=${n}:${s.extent.start / ss}:${s.extent.end / ss - 1}`,
        `--typecode=${n}:${PARTITION_TYPE}`,
        `--change-name=${n}:${partitionName(s)}`,
        `--partition-guid=${n}:${uuid}`,
      );
      wanted.push({ uuid, number: n });
    }
    if (args.length > 0) {
      // one sgdisk write per batch (each costs ~1 s); -a 1: the extents are already aligned
      await this.x('sgdisk', [...(d.hasTable ? [] : ['--clear']), '--set-alignment=1', ...args, d.path], o);
    }
    await this.syncKernel(d.path, o);
    const after = await this.drive(driveId, o);
    return wanted.map((w) => {
      const p = after.partitions.find((x) => x.partUuid === w.uuid);
      if (!p) throw new HostError(`sgdisk did not create partition ${w.number} on ${d.path}`);
      return p;
    });
  }

  /**
   * Makes the kernel's view of a disk's partitions match its table. sgdisk asks for a re-read
   * (BLKRRPART), which fails while any partition is open, and exits 0 anyway: partx adds,
   * resizes and deletes single partitions on a busy disk.
   */
  private async syncKernel(diskPath: string, o?: OpOptions): Promise<void> {
    const disk = basename(diskPath);
    const r = await this.x('sfdisk', ['--json', diskPath], o, { okCodes: [0, 1] });
    const parts = r.code === 0 ? ((JSON.parse(r.stdout) as SfdiskTable).partitiontable.partitions ?? []) : [];
    const want = new Map(parts.map((p) => [Number(/(\d+)$/.exec(p.node)?.[1]), p]));
    const have = new Map<number, { start: number; size: number }>();
    for (const e of await readdir(`/sys/block/${disk}`)) {
      const n = await readOpt(`/sys/block/${disk}/${e}/partition`);
      if (!n) continue;
      const start = Number(await readText(`/sys/block/${disk}/${e}/start`));
      const size = Number(await readText(`/sys/block/${disk}/${e}/size`));
      have.set(Number(n), { start, size });
    }
    const ss = Number(await readText(`/sys/block/${disk}/queue/logical_block_size`)) / 512;
    for (const [n] of have)
      if (!want.has(n)) await this.x('partx', ['--delete', '--nr', `${n}`, diskPath], o);
    for (const [n, p] of want) {
      const h = have.get(n);
      if (!h) await this.x('partx', ['--add', '--nr', `${n}`, diskPath], o);
      else if (h.start !== p.start * ss || h.size !== p.size * ss) {
        await this.x('partx', ['--update', '--nr', `${n}`, diskPath], o);
      }
    }
    for (const p of parts) await waitFor(() => exists(p.node), `device node ${p.node}`);
  }

  async deletePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void> {
    check(o);
    checkOwner(owner);
    const { d, p } = await this.partition(driveId, owner, o);
    if (!p) return;
    await this.refuseInUse(p.path, 'delete', o);
    await this.x('sgdisk', [`--delete=${p.number}`, d.path], o);
    await this.syncKernel(d.path, o);
  }

  async wipePartition(driveId: string, owner: Owner, o?: OpOptions): Promise<void> {
    check(o);
    checkOwner(owner);
    const { p } = await this.partition(driveId, owner, o);
    if (!p) throw new NotFoundError(`drive ${driveId} has no partition for ${partitionName(owner)}`);
    await this.refuseInUse(p.path, 'wipe', o);
    await this.x('wipefs', ['--all', '--quiet', p.path], o);
    // discard drops the old replica's data, so a reused extent never shows it; not every drive can
    await this.x('blkdiscard', ['--force', p.path], o).catch((e: unknown) => {
      if (!(e instanceof CommandError)) throw e;
    });
  }

  async growPartition(driveId: string, owner: Owner, newEnd: number, o?: OpOptions): Promise<Partition> {
    check(o);
    checkOwner(owner);
    const { d, p } = await this.partition(driveId, owner, o);
    if (!p) throw new NotFoundError(`drive ${driveId} has no partition for ${partitionName(owner)}`);
    if (newEnd < p.end)
      throw new InvalidArgumentError(`partition ${p.name} cannot shrink (${p.end} -> ${newEnd})`);
    if (newEnd > p.end) {
      const others = d.partitions.filter((x) => x.number !== p.number);
      checkNewExtent(driveId, d.logicalBlockSize, d.area, others, { start: p.end, end: newEnd });
      const ss = d.logicalBlockSize;
      const n = p.number;
      // same number, start, type, name and GUID: only the end moves (one table write)
      await this.x(
        'sgdisk',
        [
          '--set-alignment=1',
          `--delete=${n}`,
          `--new=${n}:${p.start / ss}:${newEnd / ss - 1}`,
          `--typecode=${n}:${PARTITION_TYPE}`,
          `--change-name=${n}:${p.name}`,
          `--partition-guid=${n}:${p.partUuid}`,
          d.path,
        ],
        o,
      );
    }
    await this.syncKernel(d.path, o);
    // an exported namespace keeps its old size until the target re-reads it (then tells the host)
    for (const nqn of await this.subsystemsOf(p.path)) {
      await writeFile(join(this.cfs, 'subsystems', nqn, 'namespaces', '1', 'revalidate_size'), '1');
    }
    const after = (await this.partition(driveId, owner, o)).p;
    if (!after || after.end !== newEnd) throw new HostError(`partition ${p.name} did not grow to ${newEnd}`);
    return after;
  }

  /** Whole-disk signatures (a filesystem or RAID on the bare disk): not ours to partition. */
  private async refuseSignature(path: string, o?: OpOptions): Promise<void> {
    const r = await this.x('blkid', ['--probe', '--output', 'export', path], o, { okCodes: [0, 2] });
    const sig = parseExport(r.stdout);
    const type = sig.TYPE ?? sig.PTTYPE;
    if (r.code === 0 && type)
      throw new ForeignSuperblockError(`${path} carries a ${type} signature; not touching it`);
  }

  // --- devices in use ------------------------------------------------------------------------

  /** "major:minor" of a block device path, or undefined when there is none. */
  private async devNumber(path: string): Promise<string | undefined> {
    const real = await realpath(path).catch(() => undefined);
    return real ? readOpt(`/sys/class/block/${basename(real)}/dev`) : undefined;
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
  private async subsystemsOf(path: string): Promise<string[]> {
    const dev = await this.devNumber(path);
    const out: string[] = [];
    if (!dev || !(await exists(join(this.cfs, 'subsystems')))) return out;
    for (const s of await readdir(join(this.cfs, 'subsystems'))) {
      const nsDir = join(this.cfs, 'subsystems', s, 'namespaces');
      for (const ns of await readdir(nsDir).catch(() => [] as string[])) {
        const p = await readOpt(join(nsDir, ns, 'device_path'));
        if (p && (await this.devNumber(p)) === dev) out.push(s);
      }
    }
    return out;
  }

  /** Refuses a device that is held (MD member, device mapper), mounted or exported. */
  private async refuseBusy(path: string, what: string): Promise<void> {
    const real = await realpath(path).catch(() => undefined);
    if (!real) throw new NotFoundError(`no block device ${path}`);
    const name = basename(real);
    const holders = await readdir(`/sys/class/block/${name}/holders`).catch(() => [] as string[]);
    if (holders.length > 0)
      throw new DeviceInUseError(`not going to ${what} ${path}: held by ${holders.join(', ')}`);
    const dev = await this.devNumber(real);
    const mounts = dev ? await this.mountsOf(dev) : [];
    if (mounts.length > 0)
      throw new DeviceInUseError(`not going to ${what} ${path}: mounted on ${mounts.join(', ')}`);
  }

  private async refuseInUse(path: string, what: string, _o?: OpOptions): Promise<void> {
    await this.refuseBusy(path, what);
    const subs = await this.subsystemsOf(path);
    if (subs.length > 0)
      throw new DeviceInUseError(`not going to ${what} ${path}: exported as ${subs.join(', ')}`);
  }

  // --- NVMe-oF target ------------------------------------------------------------------------

  private ensureModules(o?: OpOptions): Promise<void> {
    this.modules ??= (async () => {
      for (const m of ['nvmet', 'nvmet_tcp', 'nvme_tcp', 'nvme_fabrics', 'md_mod', 'raid1']) {
        await this.x('modprobe', [m], o);
      }
    })();
    return this.modules;
  }

  async exportReplica(spec: ExportSpec, o?: OpOptions): Promise<ExportInfo> {
    check(o);
    const nqn = subsystemNqn(spec);
    const { address, port } = spec.listen;
    if (!/^[0-9a-f.:]+$/i.test(address) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidArgumentError(`listen address ${address}:${port} is not an IP address and port`);
    }
    await this.ensureModules(o);
    if (!(await this.devNumber(spec.devicePath)))
      throw new NotFoundError(`no block device ${spec.devicePath}`);
    const sub = join(this.cfs, 'subsystems', nqn);
    const ns = join(sub, 'namespaces', '1');
    const cur = await readOpt(join(ns, 'device_path'));
    if (cur && (await this.devNumber(cur)) !== (await this.devNumber(spec.devicePath))) {
      throw new InvalidArgumentError(`${nqn} already exports ${cur}, not ${spec.devicePath}`);
    }
    if (!cur) await this.refuseBusy(spec.devicePath, 'export');
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, 'attr_allow_any_host'), '0');
    await mkdir(ns, { recursive: true });
    if (!cur) await writeFile(join(ns, 'device_path'), spec.devicePath);
    if ((await readText(join(ns, 'enable'))) !== '1') await writeFile(join(ns, 'enable'), '1');
    // one tcp port per listen address; its address attributes are read-only while enabled
    const portsDir = join(this.cfs, 'ports');
    let portDir: string | undefined;
    let maxId = 0;
    for (const id of await readdir(portsDir)) {
      maxId = Math.max(maxId, Number(id));
      const d = join(portsDir, id);
      if (
        (await readOpt(join(d, 'addr_trtype'))) === 'tcp' &&
        (await readOpt(join(d, 'addr_traddr'))) === address &&
        (await readOpt(join(d, 'addr_trsvcid'))) === String(port)
      ) {
        portDir = d;
      }
    }
    if (!portDir) {
      portDir = join(portsDir, String(maxId + 1));
      await mkdir(portDir);
      await writeFile(join(portDir, 'addr_adrfam'), address.includes(':') ? 'ipv6' : 'ipv4');
      await writeFile(join(portDir, 'addr_trtype'), 'tcp');
      await writeFile(join(portDir, 'addr_traddr'), address);
      await writeFile(join(portDir, 'addr_trsvcid'), String(port));
    }
    const link = join(portDir, 'subsystems', nqn);
    if (!(await exists(link))) await symlink(sub, link);
    const info = await this.readExport(nqn);
    if (!info) throw new NotFoundError(`${nqn} was unexported while being exported`);
    return info;
  }

  /**
   * The export as configfs shows it, or undefined when it is removed while being read. Another
   * caller may unexport at any time (NodeStage fencing while the agent's export pass lists): a
   * port or subsystem that vanishes mid-read is skipped, never an ENOENT.
   */
  private async readExport(nqn: string): Promise<ExportInfo | undefined> {
    const sub = join(this.cfs, 'subsystems', nqn);
    const listen = [];
    for (const id of await readdir(join(this.cfs, 'ports'))) {
      const d = join(this.cfs, 'ports', id);
      if (!(await exists(join(d, 'subsystems', nqn)))) continue;
      const address = await readOpt(join(d, 'addr_traddr'));
      const port = await readOpt(join(d, 'addr_trsvcid'));
      if (address !== undefined && port !== undefined) listen.push({ address, port: Number(port) });
    }
    const allowed = await readdir(join(sub, 'allowed_hosts')).catch(() => undefined);
    if (!allowed) return undefined;
    return {
      nqn,
      devicePath: (await readOpt(join(sub, 'namespaces', '1', 'device_path'))) ?? '',
      listen,
      allowedHosts: allowed.sort(),
    };
  }

  private async subsystemDir(nqn: string): Promise<string> {
    checkNqn(nqn);
    const sub = join(this.cfs, 'subsystems', nqn);
    if (!(await exists(sub))) throw new NotFoundError(`no exported subsystem ${nqn}`);
    return sub;
  }

  async grantHost(nqn: string, a: HostAccess, o?: OpOptions): Promise<void> {
    check(o);
    checkNqn(a.hostNqn);
    checkSecret(a.dhchapSecret);
    const sub = await this.subsystemDir(nqn);
    const host = join(this.cfs, 'hosts', a.hostNqn);
    await mkdir(host, { recursive: true });
    if (a.dhchapSecret !== undefined) {
      // kernels without CONFIG_NVME_TARGET_AUTH have no dhchap_key: never pretend to authenticate
      if (!(await exists(join(host, 'dhchap_key')))) {
        throw new HostError('this kernel has no NVMe target authentication (CONFIG_NVME_TARGET_AUTH)');
      }
      if ((await readOpt(join(host, 'dhchap_key'))) !== a.dhchapSecret) {
        await writeFile(join(host, 'dhchap_hash'), 'hmac(sha256)');
        await writeFile(join(host, 'dhchap_key'), a.dhchapSecret);
      }
    }
    const link = join(sub, 'allowed_hosts', a.hostNqn);
    if (!(await exists(link))) await symlink(host, link);
  }

  async revokeHost(nqn: string, hostNqn: string, o?: OpOptions): Promise<void> {
    check(o);
    checkNqn(hostNqn);
    const link = join(this.cfs, 'subsystems', nqn, 'allowed_hosts', hostNqn);
    if (await exists(link)) await unlink(link);
    await rmdir(join(this.cfs, 'hosts', hostNqn)).catch(() => {}); // still allowed elsewhere: stays
  }

  async unexport(nqn: string, o?: OpOptions): Promise<void> {
    check(o);
    checkNqn(nqn);
    const sub = join(this.cfs, 'subsystems', nqn);
    if (!(await exists(sub))) return;
    for (const id of await readdir(join(this.cfs, 'ports'))) {
      const d = join(this.cfs, 'ports', id);
      const link = join(d, 'subsystems', nqn);
      if (!(await exists(link))) continue;
      await unlink(link);
      if ((await readdir(join(d, 'subsystems'))).length === 0) await rmdir(d);
    }
    for (const h of await readdir(join(sub, 'allowed_hosts'))) await this.revokeHost(nqn, h, o);
    for (const ns of await readdir(join(sub, 'namespaces'))) {
      await writeFile(join(sub, 'namespaces', ns, 'enable'), '0');
      await rmdir(join(sub, 'namespaces', ns));
    }
    await rmdir(sub);
  }

  async listExports(o?: OpOptions): Promise<ExportInfo[]> {
    check(o);
    const dir = join(this.cfs, 'subsystems');
    if (!(await exists(dir))) return [];
    const mine = (await readdir(dir)).filter((n) => n.startsWith(`${NQN_PREFIX}:`)).sort();
    const all = await Promise.all(mine.map((n) => this.readExport(n)));
    return all.filter((e): e is ExportInfo => e !== undefined);
  }

  // --- NVMe-oF initiator ---------------------------------------------------------------------

  /** Our controllers (this host NQN) connected to a subsystem: names like nvme3. */
  private async controllers(nqn: string): Promise<string[]> {
    const out: string[] = [];
    for (const c of await readdir('/sys/class/nvme').catch(() => [] as string[])) {
      if (
        (await readOpt(`/sys/class/nvme/${c}/subsysnqn`)) === nqn &&
        (await readOpt(`/sys/class/nvme/${c}/hostnqn`)) === this.hostNqn
      ) {
        out.push(c);
      }
    }
    return out;
  }

  async findDeviceByNqn(subsystemNqn: string, o?: OpOptions): Promise<string | undefined> {
    check(o);
    if ((await this.controllers(subsystemNqn)).length === 0) return undefined;
    for (const b of (await readdir('/sys/block')).sort()) {
      if (!/^nvme\d+n\d+$/.test(b)) continue;
      // a multipath head's device is the nvme-subsystem, a single path's the controller: both
      // carry subsysnqn. Never guess /dev/nvmeXnY from probe order.
      if ((await readOpt(`/sys/block/${b}/device/subsysnqn`)) === subsystemNqn) return `/dev/${b}`;
    }
    return undefined;
  }

  async connect(spec: ConnectSpec, o?: OpOptions): Promise<string> {
    check(o);
    checkNqn(spec.subsystemNqn);
    checkSecret(spec.dhchapSecret);
    checkCtrlLoss(spec.ctrlLossTmoSec);
    await this.ensureModules(o);
    if ((await this.controllers(spec.subsystemNqn)).length === 0) {
      const args = [
        'connect',
        '--transport=tcp',
        `--traddr=${spec.target.address}`,
        `--trsvcid=${spec.target.port}`,
        `--nqn=${spec.subsystemNqn}`,
        `--hostnqn=${this.hostNqn}`,
        `--hostid=${this.hostId}`,
        `--ctrl-loss-tmo=${spec.ctrlLossTmoSec}`,
        '--reconnect-delay=1',
      ];
      if (spec.dhchapSecret) args.push(`--dhchap-secret=${spec.dhchapSecret}`);
      try {
        await this.x('nvme', args, o, { timeoutMs: 30_000 });
      } catch (e) {
        if (!(e instanceof CommandError)) throw e;
        throw new ConnectRefusedError(
          `${spec.target.address}:${spec.target.port} refused ${spec.subsystemNqn} to ${this.hostNqn}: ${e.message}`,
        );
      }
    }
    let dev: string | undefined;
    await waitFor(async () => {
      dev = await this.findDeviceByNqn(spec.subsystemNqn);
      return dev !== undefined && exists(dev);
    }, `namespace of ${spec.subsystemNqn}`);
    return dev as string;
  }

  async disconnect(subsystemNqn: string, o?: OpOptions): Promise<void> {
    check(o);
    checkNqn(subsystemNqn);
    const ctrls = await this.controllers(subsystemNqn);
    if (ctrls.length === 0) return;
    const dev = await this.findDeviceByNqn(subsystemNqn);
    if (dev) await this.refuseBusy(dev, 'disconnect');
    for (const c of ctrls) await this.x('nvme', ['disconnect', `--device=${c}`], o);
    await waitFor(
      async () => (await this.controllers(subsystemNqn)).length === 0,
      `disconnect of ${subsystemNqn}`,
    );
  }

  // --- MD RAID1 ------------------------------------------------------------------------------

  /** The running array (/sys/block/mdN) with this name, if any. */
  private async findArray(
    name: string,
    o?: OpOptions,
  ): Promise<{ md: string; detail: Record<string, string> } | undefined> {
    for (const b of await readdir('/sys/block')) {
      if (!/^md\d+$/.test(b)) continue;
      const state = await readOpt(`/sys/block/${b}/md/array_state`);
      if (!state || state === 'clear' || state === 'inactive') continue;
      const r = await this.x('mdadm', ['--detail', '--export', `/dev/${b}`], o, { okCodes: [0, 1, 2] });
      const detail = parseExport(r.stdout);
      const n = detail.MD_NAME ?? '';
      if (n === name || n.endsWith(`:${name}`)) return { md: b, detail };
    }
    return undefined;
  }

  private async arrayInfo(md: string, detail: Record<string, string>): Promise<ArrayInfo> {
    const base = `/sys/block/${md}/md`;
    const members: ArrayMember[] = [];
    for (const e of (await readdir(base)).sort()) {
      if (!e.startsWith('dev-')) continue;
      const block = await readlink(join(base, e, 'block')).catch(() => e.slice(4));
      const flags = ((await readOpt(join(base, e, 'state'))) ?? '').split(',');
      const slotText = await readOpt(join(base, e, 'slot'));
      const slot = slotText && slotText !== 'none' ? Number(slotText) : undefined;
      const state: ArrayMember['state'] = flags.includes('faulty')
        ? 'faulty'
        : flags.includes('in_sync')
          ? 'in_sync'
          : slot !== undefined
            ? 'rebuilding'
            : 'spare';
      members.push({ devicePath: `/dev/${basename(block)}`, slot, state });
    }
    const completed = (await readOpt(join(base, 'sync_completed'))) ?? 'none';
    const m = /^(\d+)\s*\/\s*(\d+)$/.exec(completed);
    const action = (await readOpt(join(base, 'sync_action'))) ?? 'idle';
    return {
      name: (detail.MD_NAME ?? '').replace(/^.*:/, ''),
      uuid: detail.MD_UUID ?? '',
      devicePath: `/dev/${md}`,
      raidDevices: Number(await readText(join(base, 'raid_disks'))),
      members,
      degraded: Number((await readOpt(join(base, 'degraded'))) ?? '0') > 0,
      syncAction: action,
      syncProgress: m && action !== 'idle' ? Number(m[1]) / Math.max(1, Number(m[2])) : undefined,
      mismatchCount: Number((await readOpt(join(base, 'mismatch_cnt'))) ?? '0'),
      sizeBytes: Number(await readText(`/sys/block/${md}/size`)) * 512,
    };
  }

  private async requireArray(volumeId: string, o?: OpOptions) {
    const name = arrayName(volumeId);
    const a = await this.findArray(name, o);
    if (!a) throw new NotFoundError(`array ${name} is not assembled`);
    return { ...a, info: await this.arrayInfo(a.md, a.detail) };
  }

  async getArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo | undefined> {
    check(o);
    const a = await this.findArray(arrayName(volumeId), o);
    return a ? this.arrayInfo(a.md, a.detail) : undefined;
  }

  /** The MD superblock on a device: {MD_UUID, MD_NAME, ...}, or undefined when it has none. */
  private async examine(path: string, o?: OpOptions): Promise<Record<string, string> | undefined> {
    const r = await this.x('mdadm', ['--examine', '--export', path], o, { okCodes: [0, 1] });
    const e = parseExport(r.stdout);
    return r.code === 0 && e.MD_UUID ? e : undefined;
  }

  private async sameDevice(a: string, b: string): Promise<boolean> {
    const [x, y] = [await this.devNumber(a), await this.devNumber(b)];
    return x !== undefined && x === y;
  }

  async createArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const name = arrayName(spec.volumeId);
    if (spec.devices.length < 1) throw new InvalidArgumentError('an array needs at least one device');
    await this.ensureModules(o);
    const running = await this.findArray(name, o);
    if (running) {
      const info = await this.arrayInfo(running.md, running.detail);
      const all = await Promise.all(
        spec.devices.map(async (d) =>
          (await Promise.all(info.members.map((m) => this.sameDevice(m.devicePath, d)))).some(Boolean),
        ),
      );
      if (all.every(Boolean)) return info;
      throw new ForeignSuperblockError(`array ${name} is already running with other members`);
    }
    for (const d of spec.devices) {
      await this.refuseBusy(d, `create array ${name} on`);
      const sb = await this.examine(d, o);
      if (sb) {
        throw new ForeignSuperblockError(
          `${d} carries an MD superblock of array ${sb.MD_NAME ?? '?'} (${sb.MD_UUID}); not creating over it`,
        );
      }
      await this.refuseSignature(d, o);
    }
    await this.x(
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
        ...spec.devices,
      ],
      o,
    );
    return (await this.requireArray(spec.volumeId, o)).info;
  }

  async assembleArray(spec: ArrayCreateSpec, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const name = arrayName(spec.volumeId);
    if (spec.devices.length < 1) throw new InvalidArgumentError('assembling needs at least one device');
    await this.ensureModules(o);
    const running = await this.findArray(name, o);
    if (running) return this.arrayInfo(running.md, running.detail);
    const uuids = new Set<string>();
    for (const d of spec.devices) {
      const sb = await this.examine(d, o);
      const n = (sb?.MD_NAME ?? '').replace(/^.*:/, '');
      if (!sb || n !== name) {
        throw new ForeignSuperblockError(
          `${d} has no superblock of array ${name} (found ${sb?.MD_NAME ?? 'none'})`,
        );
      }
      uuids.add(sb.MD_UUID ?? '');
    }
    if (uuids.size !== 1) throw new ForeignSuperblockError(`devices of ${name} carry different array UUIDs`);
    await this.x('mdadm', ['--assemble', `/dev/md/${name}`, '--run', ...spec.devices], o);
    return (await this.requireArray(spec.volumeId, o)).info;
  }

  async addMember(volumeId: string, devicePath: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = await this.requireArray(volumeId, o);
    for (const m of a.info.members) if (await this.sameDevice(m.devicePath, devicePath)) return a.info;
    await this.refuseBusy(devicePath, `add to ${a.info.name}`);
    const sb = await this.examine(devicePath, o);
    if (sb && sb.MD_UUID !== a.info.uuid) {
      throw new ForeignSuperblockError(
        `${devicePath} carries an MD superblock of array ${sb.MD_NAME ?? '?'}`,
      );
    }
    if (!sb) await this.refuseSignature(devicePath, o);
    await this.x('mdadm', [`/dev/${a.md}`, '--add', devicePath], o);
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
    const st = `/sys/block/${a.md}/md/dev-${basename(devicePath)}/state`;
    if (m.state !== 'faulty') await writeFile(st, 'faulty');
    await waitFor(async () => {
      try {
        await writeFile(st, 'remove');
        return true;
      } catch {
        return !(await exists(st));
      }
    }, `removal of ${devicePath} from ${a.info.name}`);
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
    await this.x(
      'mdadm',
      ['--grow', `/dev/${a.md}`, `--raid-devices=${count}`, ...(count === 1 ? ['--force'] : [])],
      o,
    );
    return (await this.requireArray(volumeId, o)).info;
  }

  async growArray(volumeId: string, o?: OpOptions): Promise<ArrayInfo> {
    check(o);
    const a = await this.requireArray(volumeId, o);
    await this.x('mdadm', ['--grow', `/dev/${a.md}`, '--size=max'], o);
    return (await this.requireArray(volumeId, o)).info;
  }

  async stopArray(volumeId: string, o?: OpOptions): Promise<void> {
    check(o);
    const name = arrayName(volumeId);
    const a = await this.findArray(name, o);
    if (!a) return;
    await this.refuseBusy(`/dev/${a.md}`, `stop array ${name} on`);
    await this.x('mdadm', ['--stop', `/dev/${a.md}`], o);
  }

  // --- filesystem ----------------------------------------------------------------------------

  async makeFilesystem(devicePath: string, o?: OpOptions): Promise<void> {
    check(o);
    if (!(await this.devNumber(devicePath))) throw new NotFoundError(`no block device ${devicePath}`);
    const r = await this.x('blkid', ['--probe', '--output', 'export', devicePath], o, { okCodes: [0, 2] });
    const type = parseExport(r.stdout).TYPE;
    if (type === 'xfs') return;
    if (type) throw new ForeignSuperblockError(`${devicePath} carries ${type}; not formatting it`);
    const size =
      Number(await readText(`/sys/class/block/${basename(await realpath(devicePath))}/size`)) * 512;
    if (size < 300e6) throw new InvalidArgumentError(`${devicePath} is too small for XFS (< 300 MB)`);
    await this.refuseBusy(devicePath, 'format');
    // no -f: mkfs.xfs itself refuses a device with a signature blkid did not report
    await this.x('mkfs.xfs', ['-q', devicePath], o, { timeoutMs: 300_000 });
  }

  /** The topmost mount at a path. */
  private async mountAt(target: string): Promise<MountEntry | undefined> {
    const path = await realpath(target).catch(() => resolve(target));
    return (await readMounts()).findLast((m) => m.target === path);
  }

  /** The mount at target when it is a filesystem (not a bound device node). */
  private async filesystemAt(target: string): Promise<MountEntry> {
    const m = await this.mountAt(target);
    if (!m || (await nodeDev(m.target))) throw new NotFoundError(`no filesystem is mounted on ${target}`);
    return m;
  }

  async mount(devicePath: string, target: string, o?: OpOptions): Promise<void> {
    check(o);
    const dev = await this.devNumber(devicePath);
    if (!dev) throw new NotFoundError(`no block device ${devicePath}`);
    const have = await this.mountAt(target);
    if (have?.dev === dev) return;
    if (have) throw new DeviceInUseError(`${target} already has ${have.source} mounted`);
    await mkdir(target, { recursive: true });
    await this.x('mount', ['-t', 'xfs', devicePath, target], o);
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
    await mkdir(target, { recursive: true });
    await this.x('mount', ['--bind', ...(o.readonly ? ['-o', 'ro'] : []), src.target, target], o);
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
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, '', { flag: 'a' });
    }
    await this.x('mount', ['--bind', ...(o.readonly ? ['-o', 'ro'] : []), devicePath, target], o);
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
    await this.x('mount', ['-o', 'remount,bind,ro', have.target], o);
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
    };
  }

  async unmount(target: string, o?: OpOptions): Promise<void> {
    check(o);
    const m = await this.mountAt(target);
    if (m) await this.x('umount', [m.target], o);
  }

  async growFilesystem(target: string, o?: OpOptions): Promise<void> {
    check(o);
    await this.x('xfs_growfs', [(await this.filesystemAt(target)).target], o);
  }

  async filesystemUsage(target: string, o?: OpOptions): Promise<FsUsage> {
    check(o);
    const s = await statfs((await this.filesystemAt(target)).target);
    return {
      sizeBytes: s.blocks * s.bsize,
      usedBytes: (s.blocks - s.bfree) * s.bsize,
      freeBytes: s.bavail * s.bsize,
      inodes: s.files,
      inodesFree: s.ffree,
    };
  }
}

/** Polls `cond` every 100 ms for up to `ms` (device nodes and sysfs settle asynchronously). */
async function waitFor(cond: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new HostError(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}
