// The NVMe-oF target: nvmet through configfs. One subsystem per replica with the partition as
// namespace 1, one tcp port per listen address, hosts allowed one by one with their DH-HMAC-CHAP
// keys (host key and controller key: both sides prove themselves).
import { mkdir, readdir, rmdir, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkKeys } from '../dhchap.ts';
import { HostError, InvalidArgumentError, NotFoundError } from '../errors.ts';
import { checkNqn, subsystemNqn } from '../names.ts';
import type { ExportInfo, ExportSpec, HostAccess, OpOptions } from '../types.ts';
import { check, exists, readOpt, readRaw, readText } from './context.ts';
import { devNumber, Section } from './devices.ts';
import { exportFrom, nextPortId, ourSubsystems, type PortFiles, portServes } from './parse/nvmet-configfs.ts';

/** The HMAC the target asks for, and the DH group (ephemeral FFDHE: a recorded exchange gives nothing to guess the key from). */
export const DHCHAP_HASH = 'hmac(sha256)';
export const DHCHAP_DHGROUP = 'ffdhe2048';

/** Every port's address attributes, and the subsystems it links. */
export async function readPorts(cfs: string): Promise<(PortFiles & { subsystems: string[] })[]> {
  const out = [];
  for (const id of await readdir(join(cfs, 'ports'))) {
    const d = join(cfs, 'ports', id);
    out.push({
      id,
      trtype: await readRaw(join(d, 'addr_trtype')),
      traddr: await readRaw(join(d, 'addr_traddr')),
      trsvcid: await readRaw(join(d, 'addr_trsvcid')),
      subsystems: await readdir(join(d, 'subsystems')).catch(() => [] as string[]),
    });
  }
  return out;
}

export class Target extends Section {
  private get cfs() {
    return this.c.cfs;
  }

  async exportReplica(spec: ExportSpec, o?: OpOptions): Promise<ExportInfo> {
    check(o);
    const nqn = subsystemNqn(spec);
    const { address, port } = spec.listen;
    if (!/^[0-9a-f.:]+$/i.test(address) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidArgumentError(`listen address ${address}:${port} is not an IP address and port`);
    }
    await this.c.ensureModules(o);
    if (!(await devNumber(spec.devicePath))) throw new NotFoundError(`no block device ${spec.devicePath}`);
    const sub = join(this.cfs, 'subsystems', nqn);
    const ns = join(sub, 'namespaces', '1');
    const cur = await readOpt(join(ns, 'device_path'));
    if (cur && (await devNumber(cur)) !== (await devNumber(spec.devicePath))) {
      throw new InvalidArgumentError(`${nqn} already exports ${cur}, not ${spec.devicePath}`);
    }
    if (!cur) await this.devices.refuseBusy(spec.devicePath, 'export');
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, 'attr_allow_any_host'), '0');
    await mkdir(ns, { recursive: true });
    if (!cur) await writeFile(join(ns, 'device_path'), spec.devicePath);
    if ((await readText(join(ns, 'enable'))) !== '1') await writeFile(join(ns, 'enable'), '1');
    // one tcp port per listen address; its address attributes are read-only while enabled
    const portsDir = join(this.cfs, 'ports');
    const ports = await readPorts(this.cfs);
    const found = ports.findLast((p) => portServes(p, spec.listen));
    let portDir: string;
    if (found) portDir = join(portsDir, found.id);
    else {
      portDir = join(portsDir, nextPortId(ports.map((p) => p.id)));
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
    const linked = [];
    for (const p of await readPorts(this.cfs)) if (p.subsystems.includes(nqn)) linked.push(p);
    const allowedHosts = await readdir(join(sub, 'allowed_hosts')).catch(() => undefined);
    const devicePath = await readRaw(join(sub, 'namespaces', '1', 'device_path'));
    return exportFrom({ nqn, allowedHosts, devicePath }, linked);
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
    checkKeys(a);
    const sub = await this.subsystemDir(nqn);
    const host = join(this.cfs, 'hosts', a.hostNqn);
    await mkdir(host, { recursive: true });
    if (a.dhchapSecret !== undefined) await this.setKeys(host, a);
    const link = join(sub, 'allowed_hosts', a.hostNqn);
    if (!(await exists(link))) await symlink(host, link);
  }

  /**
   * The host's keys, written straight into configfs (never through a command). Written only when
   * they differ, so a pass that finds them in place changes nothing. Live controllers keep their
   * session: nvmet reads the keys again at the next connect or re-authentication, which is how a
   * rotation goes without a disconnect (ADR 0007).
   */
  private async setKeys(host: string, a: HostAccess): Promise<void> {
    // kernels without CONFIG_NVME_TARGET_AUTH have no dhchap_key: never pretend to authenticate
    if (!(await exists(join(host, 'dhchap_key')))) {
      throw new HostError('this kernel has no NVMe target authentication (CONFIG_NVME_TARGET_AUTH)');
    }
    const set = async (file: string, value: string) => {
      if ((await readOpt(join(host, file))) !== value) await writeFile(join(host, file), value);
    };
    await set('dhchap_hash', DHCHAP_HASH);
    await set('dhchap_dhgroup', DHCHAP_DHGROUP);
    await set('dhchap_key', a.dhchapSecret as string);
    if (a.dhchapCtrlSecret !== undefined) await set('dhchap_ctrl_key', a.dhchapCtrlSecret);
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
    const all = await Promise.all(ourSubsystems(await readdir(dir)).map((n) => this.readExport(n)));
    return all.filter((e): e is ExportInfo => e !== undefined);
  }
}
