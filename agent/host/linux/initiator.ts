// The NVMe-oF initiator: nvme-cli connects with this host's NQN and host id; controllers and
// namespaces are found again in sysfs by subsystem NQN, never by device name.
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { CommandError, ConnectRefusedError } from '../errors.ts';
import { checkCtrlLoss, checkNqn, checkSecret } from '../names.ts';
import type { ConnectSpec, OpOptions } from '../types.ts';
import { check, exists, readRaw, waitFor } from './context.ts';
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
    checkNqn(spec.subsystemNqn);
    checkSecret(spec.dhchapSecret);
    checkCtrlLoss(spec.ctrlLossTmoSec);
    await this.c.ensureModules(o);
    if ((await this.controllers(spec.subsystemNqn)).length === 0) {
      const args = [
        'connect',
        '--transport=tcp',
        `--traddr=${spec.target.address}`,
        `--trsvcid=${spec.target.port}`,
        `--nqn=${spec.subsystemNqn}`,
        `--hostnqn=${this.c.hostNqn}`,
        `--hostid=${this.c.hostId}`,
        `--ctrl-loss-tmo=${spec.ctrlLossTmoSec}`,
        '--reconnect-delay=1',
      ];
      if (spec.dhchapSecret) args.push(`--dhchap-secret=${spec.dhchapSecret}`);
      try {
        await this.c.x('nvme', args, o, { timeoutMs: 30_000 });
      } catch (e) {
        if (!(e instanceof CommandError)) throw e;
        throw new ConnectRefusedError(
          `${spec.target.address}:${spec.target.port} refused ${spec.subsystemNqn} to ${this.c.hostNqn}: ${e.message}`,
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
    if (dev) await this.devices.refuseBusy(dev, 'disconnect');
    for (const c of ctrls) await this.c.x('nvme', ['disconnect', `--device=${c}`], o);
    await waitFor(
      async () => (await this.controllers(subsystemNqn)).length === 0,
      `disconnect of ${subsystemNqn}`,
    );
  }
}
