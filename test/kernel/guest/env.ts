// Inside the VM: the "nodes" (LinuxHost instances with distinct host NQNs and drive sets, B
// listening on its own loopback address) and the fixture reset between cases. The reset is test
// scaffolding, deliberately forceful; it runs its commands through the agent's exec wrapper.
import { readdir, readFile, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commandLine, type Exec, exec } from '../../../agent/host/exec.ts';
import { readDmDevices } from '../../../agent/host/linux/guard.ts';
import { LinuxHost } from '../../../agent/host/linux.ts';
import { guardUuid, partitionOfGuard } from '../../../agent/host/names.ts';

export const NQN = {
  a: 'nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a',
  b: 'nqn.2014-08.org.nvmexpress:uuid:0b0b0b0b-0000-4000-8000-00000000000b',
  x: 'nqn.2014-08.org.nvmexpress:uuid:0e0e0e0e-0000-4000-8000-00000000000e',
};
export const LISTEN_B = { address: '127.0.0.2', port: 4420 };
/** Drives (qemu serials) the harness attaches; MS-A-OS comes with an "OS" layout already on it. */
export const DRIVES = { aOs: 'MS-A-OS', a: 'MS-A-DATA', b: 'MS-B-DATA', b2: 'MS-B-DATA2' };

/** Every command line the nodes' LinuxHosts ran (the secret watch checks none holds a key). */
export const commandsRun: string[] = [];
const recordingExec: Exec = (cmd, args, opts) => {
  commandsRun.push(commandLine(cmd, args));
  return exec(cmd, args, opts);
};

export function nodes() {
  return {
    a: new LinuxHost({ hostNqn: NQN.a, driveFilter: (id) => id.startsWith('MS-A-'), exec: recordingExec }),
    b: new LinuxHost({ hostNqn: NQN.b, driveFilter: (id) => id.startsWith('MS-B-'), exec: recordingExec }),
    x: new LinuxHost({ hostNqn: NQN.x, driveFilter: () => false, exec: recordingExec }),
  };
}

const CFS = '/sys/kernel/config/nvmet';
const ls = (p: string) => readdir(p).catch(() => [] as string[]);
const sh = (cmd: string, args: string[], okCodes = [0]) => exec(cmd, args, { okCodes, timeoutMs: 120_000 });

async function serialOf(block: string): Promise<string | undefined> {
  return (await readFile(`/sys/block/${block}/device/serial`, 'utf8').catch(() => '')).trim() || undefined;
}

export async function diskBySerial(serial: string): Promise<string> {
  for (const b of await ls('/sys/block'))
    if (/^nvme\d+n\d+$/.test(b) && (await serialOf(b)) === serial) return `/dev/${b}`;
  throw new Error(`no drive with serial ${serial}`);
}

/** Back to empty data drives: unmount, stop arrays, disconnect, clear nvmet, wipe and zap. */
export async function reset(opts: { keepOs?: boolean } = {}): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const m of mounts.filter((x) => x.startsWith('/mnt/')).reverse()) await sh('umount', ['-l', m]);
  for (const b of await ls('/sys/block'))
    if (/^md\d+$/.test(b)) await sh('mdadm', ['--stop', `/dev/${b}`], [0, 1]);
  // the fence layers of the arrays just stopped (LinuxHost removes them with its own stopArray)
  for (const d of await readDmDevices())
    if (d.uuid === guardUuid(d.name) && partitionOfGuard(d.name)) await sh('dmsetup', ['remove', d.name]);
  await sh('nvme', ['disconnect-all'], [0, 1]);
  for (const p of await ls(join(CFS, 'ports'))) {
    for (const s of await ls(join(CFS, 'ports', p, 'subsystems')))
      await unlink(join(CFS, 'ports', p, 'subsystems', s));
    await rmdir(join(CFS, 'ports', p));
  }
  for (const s of await ls(join(CFS, 'subsystems'))) {
    const d = join(CFS, 'subsystems', s);
    for (const h of await ls(join(d, 'allowed_hosts'))) await unlink(join(d, 'allowed_hosts', h));
    for (const n of await ls(join(d, 'namespaces'))) {
      await writeFile(join(d, 'namespaces', n, 'enable'), '0');
      await rmdir(join(d, 'namespaces', n));
    }
    await rmdir(d);
  }
  for (const h of await ls(join(CFS, 'hosts'))) await rmdir(join(CFS, 'hosts', h));
  for (const serial of [DRIVES.a, DRIVES.b, DRIVES.b2, ...(opts.keepOs ? [] : [DRIVES.aOs])]) {
    const disk = await diskBySerial(serial);
    const name = disk.slice(5);
    if (serial === DRIVES.aOs) {
      // the OS drive keeps its own partitions 1 and 2; only MeshStor's go
      for (const e of await ls(`/sys/block/${name}`)) {
        const n = Number(
          (await readFile(`/sys/block/${name}/${e}/partition`, 'utf8').catch(() => '0')).trim(),
        );
        if (n > 2) {
          await sh('wipefs', ['-a', '-q', `/dev/${e}`]);
          await sh('sgdisk', [`--delete=${n}`, disk], [0, 2, 4]);
          await sh('partx', ['--delete', '--nr', String(n), disk], [0, 1]);
        }
      }
      continue;
    }
    for (const e of await ls(`/sys/block/${name}`))
      if (e.startsWith(name)) await sh('wipefs', ['-a', '-q', `/dev/${e}`]);
    await sh('wipefs', ['-a', '-q', disk]);
    await sh('sgdisk', ['--zap-all', disk], [0, 2]);
    await sh('partx', ['--delete', disk], [0, 1]);
  }
}
