// What goes into the MeshStor image: the Debian packages (shared with deploy/Containerfile, which a
// unit test keeps in step), how mmdebstrap trims them, and which of the repository's files ship.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The image name the build tags and the chart uses by default. No registry hosts it: load the archive. */
export const IMAGE_REPOSITORY = 'localhost/meshstor';
export const DEBIAN_SUITE = 'bookworm';
export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';

/**
 * Every program the agent's LinuxHost runs (a unit test reads them out of agent/'s sources and
 * fails when one is missing here; `npm run image:check` fails when the image lacks one). The
 * kernel tier's guest had `mount` from elsewhere, so only a real node found it missing.
 */
export const HOST_COMMANDS = [
  'blkdiscard',
  'blkid',
  'dd',
  'dmsetup',
  'fsfreeze',
  'mdadm',
  'mkfs.xfs',
  'modprobe',
  'mount',
  'nvme',
  'partx',
  'sfdisk',
  'sgdisk',
  'umount',
  'wipefs',
  'xfs_growfs',
] as const;

/** deploy/image/packages.txt: one Debian package a line, `#` comments. */
export function imagePackages(): string[] {
  return readFileSync(join(here, 'packages.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/**
 * mmdebstrap options. `essential` is the smallest variant with a shell and dpkg; docs, man pages
 * and translations are not installed. xfsprogs depends on python3 for xfs_scrub_all alone, which
 * MeshStor never runs, so python is purged after the install.
 */
export const MMDEBSTRAP_OPTIONS = [
  '--variant=essential',
  '--mode=root',
  '--format=tar',
  '--dpkgopt=path-exclude=/usr/share/man/*',
  '--dpkgopt=path-exclude=/usr/share/doc/*',
  '--dpkgopt=path-include=/usr/share/doc/*/copyright',
  '--dpkgopt=path-exclude=/usr/share/locale/*',
  '--dpkgopt=path-exclude=/usr/share/info/*',
  // python3 first: its prerm needs the interpreter the second purge removes
  '--customize-hook=chroot "$1" dpkg --purge --force-depends python3',
  '--customize-hook=chroot "$1" dpkg --purge --force-depends python3-minimal python3.11 python3.11-minimal libpython3-stdlib libpython3.11-stdlib libpython3.11-minimal',
  '--customize-hook=rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/var/cache/debconf/*-old',
];
