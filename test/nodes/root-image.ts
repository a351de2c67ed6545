// The guests' root filesystem image, built on the host from the host's own Debian binaries (same
// release as a node would run) and cached by the content of everything that goes into it:
//   busybox and util-linux tools, kmod, iptables (legacy), containerd 1.6, runc, the CNI plugins,
//   kubelet, the kernel's modules, guest/node-init.sh and guest/containerd.toml, and containerd's
//   image store with every image the tier runs already imported and unpacked: pause, busybox, the
//   CSI sidecars and MeshStor's own image (`npm run image`). Importing at boot under TCG costs about
//   a minute per guest; importing here, into the image every guest shares, costs it once.
// Also the small initramfs (busybox, virtio_blk, guest/initramfs-init.sh) that mounts that image.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { currentBuild } from '../kernel/paths.ts';
import { PROVISIONER_VERSION, provisionerBinary } from '../provision/paths.ts';
import { csiSnapshotterBinary, SNAPSHOTTER_VERSION } from '../snapshot/paths.ts';
import { writeImageArchive } from './image-archive.ts';
import {
  BUSYBOX_IMAGE,
  CACHE,
  E2E_IMAGES,
  HOST_PACKAGES,
  k8sNodeBinary,
  PAUSE_IMAGE,
  pauseBinary,
  RESIZER_VERSION,
  resizerBinary,
} from './paths.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

export interface GuestRoot {
  /** ext4 image every guest opens with snapshot=on */
  image: string;
  kernel: string;
  /** the base initramfs; each guest appends its own files (/node/*) */
  initrd: string;
  /** kernel release (modules) */
  release: string;
  /** the MeshStor image reference imported into the root, e.g. localhost/meshstor:0.1.0-abc1234 */
  meshstorImage: string;
}

/** Tools from the host copied with their shared libraries (path on the host → path in the guest). */
const HOST_TOOLS = [
  '/usr/bin/mount',
  '/usr/bin/umount',
  '/usr/bin/findmnt',
  '/usr/sbin/losetup',
  '/usr/bin/nsenter',
  '/usr/sbin/blkid',
  '/usr/sbin/blockdev',
  '/usr/bin/bash',
  '/usr/bin/kmod',
  '/usr/bin/containerd',
  '/usr/bin/containerd-shim-runc-v2',
  '/usr/bin/ctr',
  '/usr/sbin/runc',
  '/usr/sbin/xtables-legacy-multi',
  '/usr/sbin/mkfs.ext4',
];
const CNI_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'];

function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** The archive `npm run image` wrote last and the reference it carries. */
export function meshstorImageArchive(): { archive: string; reference: string } {
  const latest = join(repo, 'dist', 'image', 'latest');
  if (!existsSync(latest)) throw new Error('no MeshStor image: run `npm run image` first');
  const version = readFileSync(latest, 'utf8').trim();
  return {
    archive: join(repo, 'dist', 'image', `meshstor-${version}.oci.tar`),
    reference: `localhost/meshstor:${version}`,
  };
}

/** A file's identity for the cache key: content hash for small files, size+mtime for big ones. */
function fingerprint(file: string): string {
  const s = statSync(file);
  if (s.size < 1 << 20) return createHash('sha256').update(readFileSync(file)).digest('hex');
  return `${s.size}:${s.mtimeMs}`;
}

function copyWithLibraries(root: string, src: string, dst = src): void {
  mkdirSync(join(root, dirname(dst)), { recursive: true });
  copyFileSync(src, join(root, dst));
  chmodSync(join(root, dst), 0o755);
  const ldd = spawnSync('ldd', [src], { encoding: 'utf8' });
  for (const lib of ldd.stdout.match(/\/\S+/g) ?? []) {
    const target = join(root, lib);
    if (existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(lib, target);
  }
}

function link(root: string, target: string, at: string): void {
  const p = join(root, at);
  mkdirSync(dirname(p), { recursive: true });
  if (!existsSync(p) && !isSymlink(p)) symlinkSync(target, p);
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The small images the tier builds itself, as archives in `dir`. */
function buildSmallImages(dir: string): string[] {
  const made: string[] = [];
  const stage = (name: string) => {
    const d = mkdtempSync(join(tmpdir(), `meshstor-img-${name}-`));
    for (const sub of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(d, sub));
    return d;
  };
  const busyboxApplets = (d: string) => {
    copyFileSync('/bin/busybox', join(d, 'bin', 'busybox'));
    for (const a of run('/bin/busybox', ['--list']).split('\n').filter(Boolean))
      if (a !== 'busybox') symlinkSync('busybox', join(d, 'bin', a));
    writeFileSync(join(d, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  };
  const add = (name: string, spec: Parameters<typeof writeImageArchive>[0]) => {
    const out = join(dir, `${name}.tar`);
    writeImageArchive(spec, out);
    rmSync(spec.root, { recursive: true, force: true });
    made.push(out);
  };
  let d = stage('pause');
  copyFileSync(pauseBinary(), join(d, 'pause'));
  add('pause', { root: d, name: PAUSE_IMAGE, aliases: E2E_IMAGES.pause, entrypoint: ['/pause'] });
  d = stage('busybox');
  busyboxApplets(d);
  add('busybox', { root: d, name: BUSYBOX_IMAGE, aliases: E2E_IMAGES.busybox, cmd: ['/bin/sh'] });
  if (existsSync(k8sNodeBinary('agnhost'))) {
    d = stage('agnhost');
    busyboxApplets(d);
    copyFileSync(k8sNodeBinary('agnhost'), join(d, 'agnhost'));
    const [name, ...aliases] = E2E_IMAGES.agnhost as [string, ...string[]];
    add('agnhost', { root: d, name, aliases, entrypoint: ['/agnhost'] });
  }
  const provisioner = provisionerBinary();
  if (!provisioner) throw new Error('csi-provisioner is not built: npm run setup:provisioner');
  const snapshotter = csiSnapshotterBinary();
  if (!snapshotter) throw new Error('csi-snapshotter is not built: npm run setup:snapshotter');
  for (const [name, bin, ref] of [
    ['csi-provisioner', provisioner, `registry.k8s.io/sig-storage/csi-provisioner:${PROVISIONER_VERSION}`],
    ['csi-resizer', resizerBinary(), `registry.k8s.io/sig-storage/csi-resizer:${RESIZER_VERSION}`],
    ['csi-snapshotter', snapshotter, `registry.k8s.io/sig-storage/csi-snapshotter:${SNAPSHOTTER_VERSION}`],
  ] as const) {
    d = stage(name);
    copyFileSync(bin, join(d, name));
    chmodSync(join(d, name), 0o755);
    add(name, { root: d, name: ref, entrypoint: [`/${name}`] });
  }
  return made;
}

/** Imports and unpacks `archives` into <root>/var/lib/containerd with a private host containerd. */
async function preloadImages(root: string, archives: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshstor-preload-'));
  const socket = join(dir, 'containerd.sock');
  writeFileSync(
    join(dir, 'config.toml'),
    `version = 2\nroot = "${root}/var/lib/containerd"\nstate = "${dir}/state"\n[grpc]\n  address = "${socket}"\n`,
  );
  let containerd: ChildProcess | undefined;
  try {
    containerd = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: 'ignore' });
    for (let i = 0; !existsSync(socket); i++) {
      if (i > 200 || containerd.exitCode !== null) throw new Error('the preload containerd did not start');
      await sleep(100);
    }
    for (const a of archives) run('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'import', a]);
  } finally {
    containerd?.kill('SIGTERM');
    await new Promise((r) => (containerd?.exitCode !== null ? r(undefined) : containerd?.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
}

function packageVersions(): string {
  return run('dpkg-query', ['-W', `-f=\${Package} \${Version}\n`, ...HOST_PACKAGES]);
}

export async function ensureGuestRoot(log: (msg: string) => void = console.log): Promise<GuestRoot> {
  const kernel = currentBuild();
  if (!kernel) throw new Error('no guest kernel: run npm run setup:kernel');
  const meshstor = meshstorImageArchive();
  const moduleRoot = join(dirname(dirname(kernel.kernel)), 'lib', 'modules', kernel.release);
  const inputs = [
    kernel.release,
    packageVersions(),
    ...['node-init.sh', 'initramfs-init.sh', 'containerd.toml'].map((f) =>
      fingerprint(join(here, 'guest', f)),
    ),
    fingerprint(join(here, 'root-image.ts')),
    fingerprint(join(here, 'image-archive.ts')),
    // the names every image is imported under (E2E_IMAGES)
    fingerprint(join(here, 'paths.ts')),
    fingerprint(k8sNodeBinary('kubelet')),
    existsSync(k8sNodeBinary('agnhost')) ? fingerprint(k8sNodeBinary('agnhost')) : 'no agnhost',
    fingerprint(pauseBinary()),
    fingerprint(resizerBinary()),
    fingerprint(provisionerBinary() ?? ''),
    fingerprint(csiSnapshotterBinary() ?? ''),
    fingerprint(meshstor.archive),
  ];
  const key = createHash('sha256').update(inputs.join('\n')).digest('hex').slice(0, 16);
  const out = join(CACHE, `root-${key}`);
  const result: GuestRoot = {
    image: join(out, 'root.img'),
    kernel: kernel.kernel,
    initrd: join(out, 'initrd.cpio'),
    release: kernel.release,
    meshstorImage: meshstor.reference,
  };
  if (existsSync(join(out, 'done'))) return result;
  const t0 = Date.now();
  // one root at a time: older ones are removed (each is a few hundred MB of sparse file)
  if (existsSync(CACHE))
    for (const e of readdirSync(CACHE))
      if (e.startsWith('root-')) rmSync(join(CACHE, e), { recursive: true, force: true });
  const work = `${out}.partial`;
  const root = join(work, 'rootfs');
  rmSync(work, { recursive: true, force: true });
  for (const d of [
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'lib',
    'lib64',
    'etc/containerd',
    'proc',
    'sys',
    'dev',
    'run',
    'tmp',
    'mnt',
    'root',
    'var/lib/kubelet',
    'var/log',
    'opt/cni/bin',
    'etc/cni/net.d',
    'etc/node',
    'etc/nvme',
  ])
    mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  for (const a of run('/bin/busybox', ['--list']).split('\n').filter(Boolean))
    link(root, '/bin/busybox', `/bin/${a}`);
  for (const t of HOST_TOOLS) {
    rmSync(join(root, t), { force: true }); // a busybox applet of the same name gives way
    copyWithLibraries(root, t);
  }
  for (const t of ['modprobe', 'insmod', 'rmmod', 'lsmod', 'depmod', 'modinfo']) {
    rmSync(join(root, 'sbin', t), { force: true });
    rmSync(join(root, 'bin', t), { force: true });
    link(root, '/usr/bin/kmod', `/sbin/${t}`);
  }
  for (const t of ['iptables', 'iptables-save', 'iptables-restore'])
    link(root, '/usr/sbin/xtables-legacy-multi', `/usr/sbin/${t}`);
  cpSync('/usr/lib/x86_64-linux-gnu/xtables', join(root, 'usr/lib/x86_64-linux-gnu/xtables'), {
    recursive: true,
  });
  copyWithLibraries(root, k8sNodeBinary('kubelet'), '/usr/bin/kubelet');
  for (const p of CNI_PLUGINS) copyWithLibraries(root, `/usr/lib/cni/${p}`, `/opt/cni/bin/${p}`);
  cpSync(moduleRoot, join(root, 'lib', 'modules', kernel.release), { recursive: true });
  // decompressed here once: xz under TCG made every guest's modprobes take half a minute
  run('sh', [
    '-c',
    `find '${join(root, 'lib', 'modules')}' -name '*.ko.xz' -print0 | xargs -0 -r -P2 -n64 xz -d`,
  ]);
  run('depmod', ['-b', root, kernel.release]);
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(root, 'etc/resolv.conf'), 'nameserver 10.0.2.3\n');
  writeFileSync(join(root, 'etc/nsswitch.conf'), 'hosts: files dns\n');
  copyFileSync(join(here, 'guest', 'containerd.toml'), join(root, 'etc/containerd/config.toml'));
  copyFileSync(join(here, 'guest', 'node-init.sh'), join(root, 'sbin/node-init'));
  chmodSync(join(root, 'sbin/node-init'), 0o755);
  const images = join(work, 'images');
  mkdirSync(images);
  const archives = [...buildSmallImages(images), meshstor.archive];
  log(`nodes: importing ${archives.length} images into the guests' root`);
  await preloadImages(root, archives);
  // sparse; kubelet's eviction thresholds look at the free space of this file system
  const image = join(work, 'root.img');
  run('truncate', ['-s', '6G', image]);
  run('mkfs.ext4', [
    '-q',
    '-F',
    '-L',
    'msroot',
    '-E',
    'lazy_itable_init=1,lazy_journal_init=1',
    '-d',
    root,
    image,
  ]);
  // the initramfs: busybox, virtio_blk (decompressed for busybox insmod) and /init
  const ird = join(work, 'initrd');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'newroot', 'node'])
    mkdirSync(join(ird, d), { recursive: true });
  copyFileSync('/bin/busybox', join(ird, 'bin', 'busybox'));
  symlinkSync('busybox', join(ird, 'bin', 'sh'));
  const vblk = join(moduleRoot, 'kernel/drivers/block/virtio_blk.ko.xz');
  writeFileSync(join(ird, 'virtio_blk.ko'), spawnSync('xz', ['-dc', vblk], { maxBuffer: 64 << 20 }).stdout);
  copyFileSync(join(here, 'guest', 'initramfs-init.sh'), join(ird, 'init'));
  chmodSync(join(ird, 'init'), 0o755);
  writeFileSync(join(work, 'initrd.cpio'), cpioOf(ird));
  rmSync(root, { recursive: true, force: true });
  rmSync(ird, { recursive: true, force: true });
  rmSync(images, { recursive: true, force: true });
  writeFileSync(join(work, 'done'), `${new Date().toISOString()}\n${inputs.join('\n')}\n`);
  renameSync(work, out);
  log(`nodes: guest root built in ${((Date.now() - t0) / 1000).toFixed(0)} s (${out})`);
  return result;
}

/** A newc cpio archive of `dir` (busybox cpio, as the kernel unpacks it). */
export function cpioOf(dir: string): Buffer {
  const r = spawnSync('sh', ['-c', 'find . | /bin/busybox cpio -o -H newc 2>/dev/null'], {
    cwd: dir,
    maxBuffer: 256 << 20,
  });
  if (r.status !== 0) throw new Error(`cpio of ${dir} failed`);
  return r.stdout;
}
