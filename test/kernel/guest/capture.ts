// Suite `capture` (run by test/kernel/capture.ts, not by the tier): builds a partitioned drive, an
// MBR drive, an nvmet export with DH-HMAC-CHAP, a RAID1 over a local partition and an nvme-tcp
// namespace, XFS mounted and bound, and prints what LinuxHost reads at each stage (tool output,
// sysfs, configfs, mountinfo) as `@@MS {"kind":"fixture"}` lines: the parsers' test fixtures.
import { readdir, readFile, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../../../agent/host/exec.ts';
import { readNamespaces } from '../../../agent/host/linux/devices.ts';
import { readControllers } from '../../../agent/host/linux/initiator.ts';
import { readMdFiles } from '../../../agent/host/linux/md.ts';
import { readPorts } from '../../../agent/host/linux/nvmet.ts';
import { readKernelPartitions } from '../../../agent/host/linux/partitions.ts';
import { generateDhchapSecret, subsystemNqn } from '../../../agent/host/names.ts';
import { waitIdle } from '../../../agent/host/test/contract.ts';
import { MiB } from '../../../placement/index.ts';
import { DRIVES, diskBySerial, LISTEN_B, NQN, nodes, reset } from './env.ts';

const CFS = '/sys/kernel/config/nvmet';
const VOL = 'vol-cap';

function fixture(name: string, data: unknown): void {
  process.stdout.write(`@@MS ${JSON.stringify({ kind: 'fixture', name, data })}\n`);
}

/** A command's exit code and stdout, as LinuxHost gets them from exec.ts. */
async function tool(name: string, cmd: string, args: string[]): Promise<void> {
  const r = await exec(cmd, args, { okCodes: [0, 1, 2], timeoutMs: 120_000 });
  fixture(name, { command: [cmd, ...args].join(' '), code: r.code, stdout: r.stdout });
}

/** Slows md's resync and recovery so a capture sees one running (init.sh sets them high). */
async function syncSpeed(minKiB: number, maxKiB: number): Promise<void> {
  await writeFile('/proc/sys/dev/raid/speed_limit_min', String(minKiB));
  await writeFile('/proc/sys/dev/raid/speed_limit_max', String(maxKiB));
}

async function mdFiles(name: string, md: string): Promise<void> {
  fixture(name, {
    arrayState: await readFile(`/sys/block/${md}/md/array_state`, 'utf8'),
    files: await readMdFiles(md),
  });
}

export async function captureFixtures(): Promise<unknown> {
  await reset();
  const { a, b } = nodes();
  const dataA = await diskBySerial(DRIVES.a);
  const mbr = await diskBySerial(DRIVES.b2);

  // drives without and with tables
  await tool('sfdisk-no-table', 'sfdisk', ['--json', dataA]);
  await tool('blkid-blank-disk', 'blkid', ['--probe', '--output', 'export', dataA]);
  await tool('sfdisk-os-drive', 'sfdisk', ['--json', await diskBySerial(DRIVES.aOs)]);
  await exec('sfdisk', ['--quiet', mbr], { input: 'label: dos\n,64MiB,L\n' });
  await tool('sfdisk-dos', 'sfdisk', ['--json', mbr]);
  await tool('blkid-dos-disk', 'blkid', ['--probe', '--output', 'export', mbr]);
  await exec('sgdisk', ['--zap-all', mbr], { okCodes: [0, 2] });

  // MeshStor's partitions: two replicas and a spare on A, one replica on B
  const size = 320 * MiB;
  const [p1, p3, p4] = await a.createPartitions(DRIVES.a, [
    { volumeId: VOL, replicaId: 'r1', extent: { start: MiB, end: MiB + size } },
    { volumeId: 'vol-other', replicaId: 'r3', extent: { start: MiB + size, end: 65 * MiB + size } },
    { volumeId: VOL, replicaId: 'r4', extent: { start: 65 * MiB + size, end: 65 * MiB + 2 * size } },
  ]);
  const [p2] = await b.createPartitions(DRIVES.b, [
    { volumeId: VOL, replicaId: 'r2', extent: { start: MiB, end: MiB + size } },
  ]);
  if (!p1 || !p2 || !p3 || !p4) throw new Error('partitions were not created');
  await tool('sfdisk-gpt-meshstor', 'sfdisk', ['--json', dataA]);
  await tool('blkid-gpt-disk', 'blkid', ['--probe', '--output', 'export', dataA]);
  await tool('blkid-blank-partition', 'blkid', ['--probe', '--output', 'export', p1.path]);
  await tool('mdadm-examine-blank', 'mdadm', ['--examine', '--export', p1.path]);
  fixture('kernel-partitions', await readKernelPartitions(dataA.slice(5)));
  fixture('namespaces-local', await readNamespaces());

  // B exports r2 to A with a secret, A exports the other volume's r3 on its own address
  const secret = generateDhchapSecret();
  const nqn2 = subsystemNqn(p2.owner ?? { volumeId: VOL, replicaId: 'r2' });
  await b.exportReplica({ volumeId: VOL, replicaId: 'r2', devicePath: p2.path, listen: LISTEN_B });
  await b.grantHost(nqn2, { hostNqn: NQN.a, dhchapSecret: secret });
  await a.exportReplica({
    volumeId: 'vol-other',
    replicaId: 'r3',
    devicePath: p3.path,
    listen: { address: '127.0.0.3', port: 4420 },
  });
  const remote = await a.connect({
    subsystemNqn: nqn2,
    target: LISTEN_B,
    dhchapSecret: secret,
    ctrlLossTmoSec: 5,
  });
  fixture('nvmet-ports', await readPorts(CFS));
  const subsystems = [];
  for (const nqn of (await readdir(join(CFS, 'subsystems'))).sort()) {
    subsystems.push({
      nqn,
      allowedHosts: await readdir(join(CFS, 'subsystems', nqn, 'allowed_hosts')),
      devicePath: await readFile(join(CFS, 'subsystems', nqn, 'namespaces', '1', 'device_path'), 'utf8'),
    });
  }
  fixture('nvmet-subsystems', subsystems);
  fixture('nvme-controllers', await readControllers());
  fixture('namespaces-with-fabric', await readNamespaces());

  // RAID1 over the local partition and the nvme-tcp namespace: resyncing, then clean
  await syncSpeed(1000, 2000);
  const created = await a.createArray({ volumeId: VOL, devices: [p1.path, remote] });
  const md = created.devicePath.slice(5);
  await mdFiles('md-resync', md);
  await tool('mdadm-detail', 'mdadm', ['--detail', '--export', created.devicePath]);
  await syncSpeed(2_000_000, 2_000_000);
  await waitIdle(a, VOL);
  await mdFiles('md-clean', md);
  await tool('mdadm-examine-member', 'mdadm', ['--examine', '--export', p1.path]);
  await tool('mdadm-examine-bitmap-clean', 'mdadm', ['--examine-bitmap', p1.path]);
  const remoteState = `/sys/block/${md}/md/dev-${remote.slice(5)}/state`;
  await writeFile(remoteState, 'writemostly');
  await mdFiles('md-write-mostly', md);
  await writeFile(remoteState, '-writemostly');
  await tool('blkid-raid-member', 'blkid', ['--probe', '--output', 'export', p1.path]);

  // XFS, mounted, bound read-only onto a path with a space, and the device bound onto a file
  await a.makeFilesystem(created.devicePath);
  await a.mount(created.devicePath, '/mnt/cap/fs');
  await a.bindMount('/mnt/cap/fs', '/mnt/cap/pub lished', { readonly: true });
  await a.bindDevice(created.devicePath, '/mnt/cap/dev/block');
  fixture('mountinfo', await readFile('/proc/self/mountinfo', 'utf8'));
  await tool('blkid-xfs', 'blkid', ['--probe', '--output', 'export', created.devicePath]);
  const s = await statfs('/mnt/cap/fs');
  fixture('statfs', {
    bsize: s.bsize,
    blocks: s.blocks,
    bfree: s.bfree,
    bavail: s.bavail,
    files: s.files,
    ffree: s.ffree,
  });
  const devs = [];
  for (const path of [created.devicePath, p1.path, remote]) {
    const real = path.slice(5);
    devs.push({
      path,
      rdev: String((await stat(path, { bigint: true })).rdev),
      sysfsDev: await readFile(`/sys/class/block/${real}/dev`, 'utf8'),
    });
  }
  fixture('device-numbers', devs);

  // the remote leg fails, is removed and comes back (recovering), then a spare joins
  await writeFile(`/sys/block/${md}/md/dev-${remote.slice(5)}/state`, 'faulty');
  await mdFiles('md-faulty', md);
  await a.removeMember(VOL, remote);
  // written while the leg is away: the bitmap keeps those chunks dirty; the leg's superblock stays behind
  await writeFile('/mnt/cap/fs/away', Buffer.alloc(4 * MiB, 7));
  await exec('sync', []);
  await tool('mdadm-examine-bitmap-dirty', 'mdadm', ['--examine-bitmap', p1.path]);
  await tool('mdadm-examine-member-current', 'mdadm', ['--examine', '--export', p1.path]);
  await tool('mdadm-examine-member-stale', 'mdadm', ['--examine', '--export', remote]);
  // without its superblock the leg comes back as a new member: a full (throttled) recovery
  await exec('mdadm', ['--zero-superblock', remote]);
  await syncSpeed(1000, 2000);
  await a.addMember(VOL, remote);
  // md's thread starts the recovery (and gives the new member its slot) a moment after the add
  for (let i = 0; i < 100; i++) {
    if ((await readFile(`/sys/block/${md}/md/sync_action`, 'utf8')).trim() === 'recover') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await mdFiles('md-recovering', md);
  await syncSpeed(2_000_000, 2_000_000);
  await waitIdle(a, VOL);
  await a.addMember(VOL, p4.path);
  await mdFiles('md-spare', md);
  return { md, remote };
}
