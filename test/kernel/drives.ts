// The VM's drives: node A's "OS drive" (EFI + root partitions already on it, as an installer
// leaves them) and data drive, node B's two data drives, and one data drive each for the staging
// scenario's nodes n1 and n2. Serials are the drives' stable ids.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DriveSpec } from './harness.ts';

const GiB = 2 ** 30;

/**
 * Fresh sparse images in `dir`; the OS drive gets its GPT from sgdisk run on the image file.
 * `abData`: the size of A's and B's data drives (the catch-up boot's 1 GiB volume needs 2 GiB).
 */
export function freshDrives(dir: string, abData = GiB): DriveSpec[] {
  mkdirSync(dir, { recursive: true });
  const specs: DriveSpec[] = [
    { serial: 'MS-A-OS', sizeBytes: 2 * GiB },
    { serial: 'MS-A-DATA', sizeBytes: abData },
    { serial: 'MS-B-DATA', sizeBytes: abData },
    { serial: 'MS-B-DATA2', sizeBytes: GiB },
    // the three nodes of scenarios s and r (n3's drive is where r relocates a member to)
    { serial: 'MS-N1-DATA', sizeBytes: GiB },
    { serial: 'MS-N2-DATA', sizeBytes: GiB },
    { serial: 'MS-N3-DATA', sizeBytes: GiB },
  ];
  return sparseImages(dir, specs);
}

/**
 * The drives of the agent boot (test/kernel/agent.ts): one node's "OS drive" (EFI + root partitions
 * already on it, as an installer leaves them) and two empty data drives.
 */
export function agentDrives(dir: string): DriveSpec[] {
  mkdirSync(dir, { recursive: true });
  return sparseImages(dir, [
    { serial: 'MS-K-OS', sizeBytes: 2 * GiB },
    { serial: 'MS-K-DATA1', sizeBytes: GiB },
    { serial: 'MS-K-DATA2', sizeBytes: GiB },
  ]);
}

/** Fresh sparse images in `dir`; the first gets an OS drive's GPT from sgdisk run on the image file. */
function sparseImages(dir: string, specs: DriveSpec[]): DriveSpec[] {
  for (const s of specs) {
    s.image = join(dir, `${s.serial}.img`);
    rmSync(s.image, { force: true });
    writeFileSync(s.image, '');
    spawnSync('truncate', ['-s', String(s.sizeBytes), s.image]);
  }
  const os = specs[0]?.image as string;
  const r = spawnSync(
    'sgdisk',
    [
      '-n',
      '1:2048:206847',
      '-t',
      '1:EF00',
      '-c',
      '1:EFI',
      '-n',
      '2:206848:2097151',
      '-t',
      '2:8300',
      '-c',
      '2:root',
      os,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`sgdisk on the OS image failed: ${r.stderr}`);
  return specs;
}

/** The same images in another order: after a "reboot" the kernel names the drives differently. */
export function reordered(specs: DriveSpec[]): DriveSpec[] {
  return [...specs].reverse();
}
