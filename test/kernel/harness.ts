// Boots the kernel-tier VM: Debian's kernel + the base initramfs from `npm run setup:kernel`, with
// the project (agent/, placement/, csi/, kube/, test/kernel/guest/) appended as a second cpio archive, virtual
// `-device nvme` drives backed by sparse files, and the console on stdout. The guest runs one
// suite with Node 24 and prints `@@MS {json}` lines; this returns them with the exit status.
// A guest that does not finish within its time bound is killed (SIGKILL).
import { spawn, spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentBuild } from './paths.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** What the guest needs of the project. */
// kube/: csi/ reads MeshStor objects through kube/placement-model.ts (no Kubernetes client is loaded).
const PROJECT_DIRS = [
  'agent',
  'placement',
  'csi',
  'kube',
  'state',
  'controller',
  'test/kernel/guest',
  'bench/kernel',
];
/**
 * The only packages the guest loads, with their JavaScript (csi/ takes gRPC status codes from
 * @grpc/grpc-js, which needs @js-sdsl/ordered-map); everything else is Node builtins.
 */
const GUEST_PACKAGES = ['@grpc/grpc-js', '@js-sdsl/ordered-map'];

export interface DriveSpec {
  serial: string;
  sizeBytes: number;
  /** An existing image to attach (kept between boots: a "reboot"); default a fresh sparse file. */
  image?: string;
}

export interface BootOptions {
  suite: string;
  drives: DriveSpec[];
  timeoutMs: number;
  memMiB?: number;
  /** Files to place into the guest, relative to /project. */
  files?: Record<string, string>;
  /** Where drive images go (default: a temp dir removed afterwards unless keepImages). */
  workDir?: string;
  /** Print the console as it arrives (MESHSTOR_VM_LOG=1 does the same). */
  echo?: boolean;
}

export interface GuestEvent {
  kind: string;
  name?: string;
  ok?: boolean;
  ms?: number;
  error?: string;
  data?: unknown;
  code?: number;
  uptime?: number;
}

export interface GuestRun {
  accel: 'kvm' | 'tcg';
  exitCode: number | undefined;
  events: GuestEvent[];
  console: string;
  bootSec: number | undefined;
  wallSec: number;
  images: Record<string, string>;
  timedOut: boolean;
}

/** Reason the tier cannot run here, or undefined. */
export function kernelTierMissing(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'the kernel tier needs linux/x64';
  const q = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']);
  if (q.status !== 0) return 'qemu-system-x86_64 is not installed (run `npm run setup:kernel`)';
  if (!currentBuild()) return 'no kernel/initramfs cached (run `npm run setup:kernel`)';
  return undefined;
}

function listFiles(dir: string, names = ['-name', '*.ts']): string[] {
  const r = spawnSync('find', [dir, '-type', 'f', '(', ...names, ')'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

/** The project cpio: /init and /project/... (appended to the base initramfs; later files win). */
function projectInitrd(base: string, out: string, files: Record<string, string>): void {
  const stage = mkdtempSync(join(tmpdir(), 'meshstor-guest-'));
  try {
    const put = (rel: string, content: string | Buffer, mode = 0o644) => {
      const to = join(stage, rel);
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, content, { mode });
    };
    put('init', readFileSync(join(ROOT, 'test/kernel/guest/init.sh')), 0o755);
    put('project/package.json', JSON.stringify({ type: 'module', private: true }));
    for (const d of PROJECT_DIRS) {
      for (const f of listFiles(join(ROOT, d))) put(join('project', relative(ROOT, f)), readFileSync(f));
    }
    for (const p of GUEST_PACKAGES) {
      const files = listFiles(join(ROOT, 'node_modules', p), [
        '-name',
        '*.js',
        '-o',
        '-name',
        'package.json',
      ]);
      for (const f of files) put(join('project', relative(ROOT, f)), readFileSync(f));
    }
    for (const [rel, content] of Object.entries(files)) put(join('project', rel), content);
    const r = spawnSync('sh', ['-c', `cd "${stage}" && find . | cpio -o -H newc --quiet > "${out}.project"`]);
    if (r.status !== 0) throw new Error(`cpio failed: ${r.stderr}`);
    const cat = spawnSync('sh', ['-c', `cat "${base}" "${out}.project" > "${out}"`]);
    if (cat.status !== 0) throw new Error(`cannot write ${out}`);
    rmSync(`${out}.project`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function kvmUsable(): boolean {
  if (process.env.MESHSTOR_ACCEL === 'tcg') return false;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return false;
  }
  // MESHSTOR_ACCEL=kvm tries KVM even when the CPU flags do not show it (it falls back if it faults)
  return process.env.MESHSTOR_ACCEL === 'kvm' || /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

function runQemu(accel: 'kvm' | 'tcg', args: string[], o: BootOptions, bootLimitMs: number) {
  return new Promise<{ console: string; timedOut: boolean; noBoot: boolean }>((resolve) => {
    const accelArgs =
      accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
    const q = spawn('qemu-system-x86_64', [...accelArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let timedOut = false;
    let booted = false;
    const echo = o.echo || process.env.MESHSTOR_VM_LOG === '1';
    const onData = (d: Buffer) => {
      const s = d.toString('utf8');
      out += s;
      if (!booted && out.includes('"kind":"booted"')) booted = true;
      if (echo) process.stdout.write(s);
    };
    q.stdout.on('data', onData);
    q.stderr.on('data', onData);
    const kill = setTimeout(() => {
      timedOut = true;
      q.kill('SIGKILL');
    }, o.timeoutMs);
    const bootKill = setTimeout(() => {
      if (!booted) q.kill('SIGKILL');
    }, bootLimitMs);
    q.on('close', () => {
      clearTimeout(kill);
      clearTimeout(bootKill);
      resolve({ console: out.replaceAll('\r', ''), timedOut, noBoot: !booted });
    });
  });
}

/** Guest Node died (by a signal) before it reported any case. */
function startupCrash(console: string): boolean {
  const exit = /@@MS \{"kind":"exit","code":(\d+)/.exec(console);
  return !console.includes('"kind":"case"') && exit !== null && Number(exit[1]) >= 128;
}

export async function bootGuest(o: BootOptions): Promise<GuestRun> {
  const build = currentBuild();
  if (!build) throw new Error('run `npm run setup:kernel` first');
  const work = o.workDir ?? mkdtempSync(join(tmpdir(), 'meshstor-vm-'));
  mkdirSync(work, { recursive: true });
  const initrd = join(work, 'initrd.cpio');
  projectInitrd(build.initrd, initrd, o.files ?? {});
  const images: Record<string, string> = {};
  const made: string[] = [];
  const driveArgs: string[] = [];
  o.drives.forEach((d, i) => {
    const img = d.image ?? join(work, `${d.serial}.img`);
    if (!d.image || !existsSync(img)) writeFileSync(img, '');
    if (!d.image) made.push(img);
    spawnSync('truncate', ['-s', String(d.sizeBytes), img]);
    images[d.serial] = img;
    driveArgs.push(
      '-drive',
      `if=none,id=d${i},file=${img},format=raw,cache=unsafe`,
      '-device',
      `nvme,drive=d${i},serial=${d.serial}`,
    );
  });
  const fw = existsSync('/usr/share/qemu/qboot.rom') ? ['-bios', '/usr/share/qemu/qboot.rom'] : [];
  const args = [
    ...fw,
    '-machine',
    'q35',
    '-smp',
    process.env.MESHSTOR_SMP ?? '2',
    '-m',
    String(o.memMiB ?? 2048),
    '-display',
    'none',
    '-vga',
    'none',
    '-nic',
    'none',
    '-serial',
    'stdio',
    '-monitor',
    'none',
    '-no-reboot',
    '-kernel',
    build.kernel,
    '-initrd',
    initrd,
    '-append',
    `console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init cryptomgr.notests audit=0 mitigations=off meshstor.suite=${o.suite}`,
    ...driveArgs,
  ];
  const t0 = Date.now();
  let accel: 'kvm' | 'tcg' = kvmUsable() ? 'kvm' : 'tcg';
  let r = await runQemu(accel, args, o, accel === 'kvm' ? 30_000 : o.timeoutMs);
  if (accel === 'kvm' && r.noBoot) {
    // /dev/kvm exists on some machines whose guests fault: fall back to TCG
    accel = 'tcg';
    r = await runQemu(accel, args, o, o.timeoutMs);
  }
  if (r.noBoot && !r.timedOut) {
    // seen once under multi-threaded TCG: an int3 oops while the kernel patched its own text,
    // before /init ran (nothing touched the drives yet): boot once more, and say so
    console.error(
      `[kernel] the guest died before /init (${accel}); booting again:\n${r.console.slice(-1500)}`,
    );
    r = await runQemu(accel, args, o, o.timeoutMs);
  }
  for (let retry = 0; retry < 2 && !r.timedOut && startupCrash(r.console); retry++) {
    // Node 24 in the TCG guest has died at startup in a V8 check ("it->second.Size() > offset",
    // SIGTRAP) before running any case, i.e. before touching a drive: boot again, and say so
    console.error(`[kernel] guest Node crashed at startup (${accel}); booting again`);
    r = await runQemu(accel, args, o, o.timeoutMs);
  }
  const events: GuestEvent[] = [];
  for (const line of r.console.split('\n')) {
    const i = line.indexOf('@@MS {');
    if (i < 0) continue;
    try {
      events.push(JSON.parse(line.slice(i + 5)) as GuestEvent);
    } catch {
      // a console line interleaved with kernel output: ignore it, the case then counts as missing
    }
  }
  rmSync(initrd, { force: true });
  // images the caller passed in are theirs (kept for a "reboot"); the ones made here go
  for (const img of made) rmSync(img, { force: true });
  if (!o.workDir) rmSync(work, { recursive: true, force: true });
  return {
    accel,
    exitCode: events.find((e) => e.kind === 'exit')?.code,
    events,
    console: r.console,
    bootSec: events.find((e) => e.kind === 'booted')?.uptime,
    wallSec: (Date.now() - t0) / 1000,
    images,
    timedOut: r.timedOut,
  };
}
