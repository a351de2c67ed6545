// The NVMe-oF initiator: connects by writing the options string to /dev/nvme-fabrics (what
// `nvme connect` does, minus the command line: DH-HMAC-CHAP secrets go to the kernel directly and
// never show in /proc/*/cmdline); controllers and namespaces are found again in sysfs by subsystem
// NQN, never by device name. Rotated keys reach a live controller through its sysfs dhchap_secret
// and dhchap_ctrl_secret attributes, which re-authenticate it in place.
import { createHash } from 'node:crypto';
import { open, readdir, writeFile } from 'node:fs/promises';
import { checkKeys } from '../dhchap.ts';
import { CancelledError, ConnectRefusedError, HostError, InvalidArgumentError } from '../errors.ts';
import { checkCtrlLoss, checkNqn } from '../names.ts';
import type { ConnectSpec, OpOptions } from '../types.ts';
import { check, exists, readOpt, readRaw, waitFor } from './context.ts';
import { readNamespaces, Section } from './devices.ts';
import { type ControllerFiles, namespaceDevice, ownControllers } from './parse/nvme-sysfs.ts';

/** A host id (UUID) derived from the host NQN: the kernel refuses one host id with two NQNs. */
export function hostIdFor(nqn: string): string {
  const m = /uuid:([0-9a-f-]{36})$/.exec(nqn);
  if (m?.[1]) return m[1];
  const x = createHash('sha256').update(nqn).digest('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-4${x.slice(13, 16)}-8${x.slice(17, 20)}-${x.slice(20, 32)}`;
}

/** Every NVMe controller in /sys/class/nvme with the NQNs it connects. */
export async function readControllers(): Promise<ControllerFiles[]> {
  const out: ControllerFiles[] = [];
  for (const name of await readdir('/sys/class/nvme').catch(() => [] as string[])) {
    out.push({
      name,
      subsysnqn: await readRaw(`/sys/class/nvme/${name}/subsysnqn`),
      hostnqn: await readRaw(`/sys/class/nvme/${name}/hostnqn`),
    });
  }
  return out;
}

/** The misc device nvme-fabrics reads connect requests from. */
export const FABRICS_DEVICE = '/dev/nvme-fabrics';
/**
 * How long a connect may hold the caller: past the kernel's admin command timeout (60 s), which
 * bounds a connect whose authentication failed on the target's side. The kernel runs one connect
 * at a time (a mutex around /dev/nvme-fabrics writes), so the next one waits for that one.
 */
const CONNECT_MS = 75_000;
/**
 * How long an existing controller may take to show its namespace before it is replaced: one that
 * lost its subsystem reconnects every second (reconnect_delay=1) and, once the target has it
 * again, rescans within a second or two; under qemu TCG a few more.
 */
const STALE_CONTROLLER_MS = 8_000;
/** How long a new controller may take to show its namespace. */
const NAMESPACE_MS = 15_000;

/**
 * The options string the kernel parses (drivers/nvme/host/fabrics.c, comma-separated key=value).
 * Every value is checked first: a comma in one would inject another option.
 */
export function fabricsOptions(spec: ConnectSpec, hostNqn: string, hostId: string): string {
  checkNqn(spec.subsystemNqn);
  checkNqn(hostNqn);
  checkKeys(spec);
  checkCtrlLoss(spec.ctrlLossTmoSec);
  const { address, port } = spec.target;
  if (!/^[0-9a-f.:]+$/i.test(address) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`target ${address}:${port} is not an IP address and port`);
  }
  if (!/^[0-9a-f-]{36}$/.test(hostId)) throw new InvalidArgumentError(`host id ${hostId} is not a UUID`);
  const o = [
    `nqn=${spec.subsystemNqn}`,
    'transport=tcp',
    `traddr=${address}`,
    `trsvcid=${port}`,
    `hostnqn=${hostNqn}`,
    `hostid=${hostId}`,
    `ctrl_loss_tmo=${spec.ctrlLossTmoSec}`,
    'reconnect_delay=1',
  ];
  if (spec.dhchapSecret !== undefined) o.push(`dhchap_secret=${spec.dhchapSecret}`);
  if (spec.dhchapCtrlSecret !== undefined) o.push(`dhchap_ctrl_secret=${spec.dhchapCtrlSecret}`);
  return o.join(',');
}

/** What a connect that does not answer in time is told (it is treated as refused: the caller may retry). */
class ConnectTimeout extends Error {}

/**
 * One write(2) of the options (the kernel takes the whole request from one write), bounded in
 * time. The write cannot be interrupted once in the kernel: on a timeout or a cancel the caller is
 * released and the write finishes on its own (the handle is closed after it); a controller it
 * makes is found by the next connect. A refused authentication can end this way: nvmet drops the
 * connection and the host's connect command waits for its own timeout.
 */
async function writeFabrics(options: string, o: OpOptions | undefined): Promise<void> {
  const fh = await open(FABRICS_DEVICE, 'r+');
  const write = fh.write(options).finally(() => fh.close().catch(() => {}));
  write.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      write,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ConnectTimeout()), CONNECT_MS);
        onAbort = () => reject(new CancelledError('connect cancelled'));
        o?.signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) o?.signal?.removeEventListener('abort', onAbort);
  }
}

export class Initiator extends Section {
  /** Our controllers (this host NQN) connected to a subsystem: names like nvme3. */
  private async controllers(nqn: string): Promise<string[]> {
    return ownControllers(await readControllers(), nqn, this.c.hostNqn);
  }

  async findDeviceByNqn(subsystemNqn: string, o?: OpOptions): Promise<string | undefined> {
    check(o);
    if ((await this.controllers(subsystemNqn)).length === 0) return undefined;
    return namespaceDevice(await readNamespaces(), subsystemNqn);
  }

  async connect(spec: ConnectSpec, o?: OpOptions): Promise<string> {
    check(o);
    const options = fabricsOptions(spec, this.c.hostNqn, this.c.hostId);
    await this.c.ensureModules(o);
    const live = await this.controllers(spec.subsystemNqn);
    if (live.length > 0) {
      const dev = await this.namespaceWithin(spec.subsystemNqn, STALE_CONTROLLER_MS);
      // A controller that lost its subsystem keeps its namespace's device while it tries to
      // reconnect, and takes no I/O (the contract's write to one failed, kernel tier under load,
      // eighth session): only a live one is kept, and only a live one gets new keys.
      if (dev && (await this.liveWithin(live, STALE_CONTROLLER_MS))) {
        await this.rotateKeys(live, spec);
        return dev;
      }
      // A controller without its namespace, or one that does not come back to live: the target
      // removed the subsystem under it (its owner dropped the export and made it again, with other
      // keys perhaps). Waiting on it only waits out ctrl_loss_tmo; a fresh connect gets the export
      // as it is now. The kernel may delete it itself meanwhile (ctrl_loss_tmo): gone is fine.
      try {
        await this.disconnect(spec.subsystemNqn, o);
      } catch (e) {
        if ((await this.controllers(spec.subsystemNqn)).length > 0) throw e;
      }
    }
    try {
      await writeFabrics(options, o);
    } catch (e) {
      if (e instanceof HostError) throw e;
      // the errno only (EKEYREJECTED, ECONNREFUSED, EIO, ...): never the options, they hold the keys
      const code =
        e instanceof ConnectTimeout
          ? `no answer within ${CONNECT_MS / 1000} s`
          : ((e as NodeJS.ErrnoException).code ?? 'error');
      throw new ConnectRefusedError(
        `${spec.target.address}:${spec.target.port} refused ${spec.subsystemNqn} to ${this.c.hostNqn}: ${code}`,
      );
    }
    const dev = await this.namespaceWithin(spec.subsystemNqn, NAMESPACE_MS);
    if (!dev)
      throw new HostError(`timed out after ${NAMESPACE_MS} ms waiting for namespace of ${spec.subsystemNqn}`);
    return dev;
  }

  /** Whether every one of the controllers is in state `live` within `ms`. */
  private async liveWithin(ctrls: string[], ms: number): Promise<boolean> {
    try {
      await waitFor(
        async () => {
          for (const c of ctrls) if ((await readOpt(`/sys/class/nvme/${c}/state`)) !== 'live') return false;
          return true;
        },
        `controllers ${ctrls.join(', ')} live`,
        ms,
      );
      return true;
    } catch (e) {
      if (e instanceof HostError) return false;
      throw e;
    }
  }

  /** The subsystem's namespace device once it shows up within `ms`, else undefined. */
  private async namespaceWithin(nqn: string, ms: number): Promise<string | undefined> {
    let dev: string | undefined;
    try {
      await waitFor(
        async () => {
          dev = await this.findDeviceByNqn(nqn);
          return dev !== undefined && exists(dev);
        },
        `namespace of ${nqn}`,
        ms,
      );
    } catch (e) {
      if (e instanceof HostError) return undefined;
      throw e;
    }
    return dev;
  }

  /**
   * New keys for live controllers: each attribute written re-authenticates the controller with
   * the keys it then holds (nvmet reads its side again for that). Written only when they differ.
   * A controller connected without a secret cannot take one (the kernel refuses the write).
   */
  private async rotateKeys(ctrls: string[], spec: ConnectSpec): Promise<void> {
    for (const c of ctrls) {
      for (const [file, want] of [
        ['dhchap_secret', spec.dhchapSecret],
        ['dhchap_ctrl_secret', spec.dhchapCtrlSecret],
      ] as const) {
        if (want === undefined) continue;
        const path = `/sys/class/nvme/${c}/${file}`;
        const have = await readOpt(path);
        if (have === want) continue;
        if (!have || have === 'none') {
          throw new HostError(
            `${c} (${spec.subsystemNqn}) is connected without ${file}; the kernel cannot add one to a live controller: disconnect it first`,
          );
        }
        await writeFile(path, want);
      }
    }
  }

  async disconnect(subsystemNqn: string, o?: OpOptions): Promise<void> {
    check(o);
    checkNqn(subsystemNqn);
    const ctrls = await this.controllers(subsystemNqn);
    if (ctrls.length === 0) return;
    const dev = await this.findDeviceByNqn(subsystemNqn);
    if (dev) await this.devices.refuseBusy(dev, 'disconnect');
    for (const c of ctrls) await this.c.x('nvme', ['disconnect', `--device=${c}`], o);
    await waitFor(
      async () => (await this.controllers(subsystemNqn)).length === 0,
      `disconnect of ${subsystemNqn}`,
    );
  }
}
