// Boots the kernel-tier VM: Debian's kernel + the base initramfs from `npm run setup:kernel`, with
// the project (every top-level source folder, test/kernel/guest/ and bench/kernel/) appended as a
// second cpio archive, virtual `-device nvme` drives backed by sparse files, and the console on
// stdout. The guest runs one suite with Node 24 and prints `@@MS {json}` lines. `startGuest`
// returns a live session (its events as they arrive, the console written to a file, `kill()`);
// `bootGuest` waits for the result. A guest that does not finish within its time bound is killed.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import {
  accessSync,
  constants,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  type WriteStream,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageFiles } from './guest-packages.ts';
import { currentBuild, type KernelBuild } from './paths.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/**
 * Top-level folders the guest does not get whole: test/ and bench/ contribute only their guest
 * parts (GUEST_TEST_DIRS); node_modules only GUEST_PACKAGES (and BootOptions.packages).
 */
const NOT_COPIED = new Set(['node_modules', 'test', 'bench']);
const GUEST_TEST_DIRS = ['test/kernel/guest', 'test/support', 'bench/kernel'];
/**
 * The packages every guest loads, with their dependencies (csi/ takes gRPC status codes from
 * @grpc/grpc-js); everything else is Node builtins.
 */
const GUEST_PACKAGES = ['@grpc/grpc-js'];
/**
 * The NIC of a guest with `network`: virtio-net (a module in Debian's cloud kernel, not in the base
 * initramfs, so the harness adds it and its dependencies from the unpacked kernel package).
 */
const NET_MODULE = 'virtio_net';

/**
 * The guest console's kernel log level: 5 shows warnings too (the NVMe driver's I/O timeouts and
 * controller resets are warnings: CI's k5 failure in the eighth session, a 60 s stall of one
 * drive's reads, could not be read at 3). MESHSTOR_KERNEL_LOGLEVEL (0-8) sets another.
 */
function kernelLogLevel(): number {
  const asked = Number(process.env.MESHSTOR_KERNEL_LOGLEVEL ?? 5);
  return Number.isInteger(asked) && asked >= 0 && asked <= 8 ? asked : 5;
}

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
  /** Write the console (every boot attempt) to this file as it arrives. */
  consoleLog?: string;
  /** More packages of node_modules the guest loads (with their dependencies), e.g. for cmd/meshstor.ts. */
  packages?: string[];
  /**
   * A NIC on qemu's user network: the guest is 10.0.2.15/24 and reaches the host's loopback at
   * 10.0.2.2 (the host reaches nothing in the guest).
   */
  network?: boolean;
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
  /** Guest uptime at /init, and host wall ms from qemu's start to then. */
  bootSec: number | undefined;
  bootMs: number | undefined;
  wallSec: number;
  images: Record<string, string>;
  timedOut: boolean;
  /** Why `GuestSession.kill()` was called, if it was. */
  killedBecause: string | undefined;
}

/** Reason the tier cannot run here, or undefined. */
export function kernelTierMissing(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'the kernel tier needs linux/x64';
  const q = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']);
  if (q.status !== 0) return 'qemu-system-x86_64 is not installed (run `npm run setup:kernel`)';
  if (!currentBuild()) return 'no kernel/initramfs cached (run `npm run setup:kernel`)';
  return undefined;
}

function listFiles(dir: string, names = ['-name', '*.ts', '-o', '-name', '*.proto']): string[] {
  const r = spawnSync('find', [dir, '-type', 'f', '(', ...names, ')'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

/** Every top-level folder with TypeScript in it (new ones included), and the guest parts of test/ and bench/. */
function guestDirs(): string[] {
  const top = readdirSync(ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && !NOT_COPIED.has(d.name))
    .map((d) => d.name)
    .filter((d) => listFiles(join(ROOT, d)).length > 0);
  return [...top, ...GUEST_TEST_DIRS];
}

/**
 * The kernel modules (paths under the kernel package's root, in load order) a NIC needs, from the
 * kernel package `setup.ts` unpacked next to the kernel image.
 */
function netModules(build: KernelBuild): { root: string; modules: string[] } {
  const root = dirname(dirname(build.kernel));
  const r = spawnSync('modprobe', ['-d', root, '-S', build.release, '--show-depends', NET_MODULE], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`modprobe --show-depends ${NET_MODULE} failed: ${r.stderr}`);
  const modules = [...r.stdout.matchAll(/^insmod (\S+)/gm)].map((m) => relative(root, m[1] as string));
  if (modules.length === 0) throw new Error(`${NET_MODULE} is built in or missing in ${root}`);
  return { root, modules };
}

/** The project cpio: /init and /project/... (appended to the base initramfs; later files win). */
function projectInitrd(base: string, out: string, o: BootOptions, build: KernelBuild): void {
  const files = o.files ?? {};
  const stage = mkdtempSync(join(tmpdir(), 'meshstor-guest-'));
  try {
    const put = (rel: string, content: string | Buffer, mode = 0o644) => {
      const to = join(stage, rel);
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, content, { mode });
    };
    put('init', readFileSync(join(ROOT, 'test/kernel/guest/init.sh')), 0o755);
    put('project/package.json', JSON.stringify({ type: 'module', private: true }));
    for (const d of guestDirs()) {
      for (const f of listFiles(join(ROOT, d))) put(join('project', relative(ROOT, f)), readFileSync(f));
    }
    for (const f of packageFiles(ROOT, [...GUEST_PACKAGES, ...(o.packages ?? [])]))
      put(join('project', f), readFileSync(join(ROOT, f)));
    if (o.network) {
      // /init loads these in order and configures the NIC when this list is there
      const net = netModules(build);
      for (const m of net.modules) put(m, readFileSync(join(net.root, m)));
      put('etc/meshstor/net-modules', `${net.modules.map((m) => `/${m}`).join('\n')}\n`);
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

interface Attempt {
  console: string;
  timedOut: boolean;
  noBoot: boolean;
}

/** qemu's TCG accelerator as the guests run it (why single-threaded: in runQemu). */
export const TCG_ACCEL = 'tcg,thread=single';

/** One qemu run; `onData` sees the console as it arrives, `onSpawn` the process (to kill it). */
function runQemu(
  accel: 'kvm' | 'tcg',
  args: string[],
  o: BootOptions,
  bootLimitMs: number,
  onSpawn: (q: ChildProcess) => void,
  onData: (s: string) => void,
) {
  return new Promise<Attempt>((resolve) => {
    // One host thread runs all of a TCG guest's vCPUs (thread=single, not multi-threaded TCG):
    // with a thread per vCPU, Node in the guest crashed now and then as V8 wrote and ran JIT
    // code on different vCPUs (V8 aborting with "Check failed: it->second.Size() > offset" in
    // ThreadIsolation::StartOfJitAllocationAt, a SIGSEGV, or a hang before the first log line):
    // the agent boot failed in 5 of 11 runs on one tree and once in a whole tier run on main.
    // Measured with thread=single: see test/README.md. It costs the guest its second core.
    const accelArgs =
      accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', TCG_ACCEL, '-cpu', 'max'];
    const q = spawn('qemu-system-x86_64', [...accelArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn(q);
    let out = '';
    let timedOut = false;
    let booted = false;
    const echo = o.echo || process.env.MESHSTOR_VM_LOG === '1';
    const data = (d: Buffer) => {
      const s = d.toString('utf8');
      out += s;
      if (!booted && out.includes('"kind":"booted"')) booted = true;
      if (echo) process.stdout.write(s);
      onData(s);
    };
    q.stdout?.on('data', data);
    q.stderr?.on('data', data);
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

function parseEvent(line: string): GuestEvent | undefined {
  const i = line.indexOf('@@MS {');
  if (i < 0) return undefined;
  try {
    return JSON.parse(line.slice(i + 5)) as GuestEvent;
  } catch {
    // a console line interleaved with kernel output: ignore it, the case then counts as missing
    return undefined;
  }
}

/**
 * A guest while it runs: the events of its current boot attempt as they arrive (an attempt that
 * died before any case is booted again, see `startGuest`), when it booted, when each case
 * started, and `kill()`. Emits 'change' on every event and when the guest is gone.
 */
export class GuestSession extends EventEmitter {
  accel: 'kvm' | 'tcg' = 'tcg';
  /** Events of the current attempt. */
  events: GuestEvent[] = [];
  /** Host clock (ms) when the current attempt's qemu started, and when it last printed an event. */
  attemptStartedAt = Date.now();
  lastEventAt = Date.now();
  /** Wall ms from the current attempt's qemu start to its "booted" line (undefined until then). */
  bootMs: number | undefined;
  /** Host clock (ms) when each case of the current attempt started, and when its result came. */
  readonly caseStartedAt = new Map<string, number>();
  readonly caseEndedAt = new Map<string, number>();
  /** The guest is gone (powered off, killed or timed out); `run` is its result. */
  run: GuestRun | undefined;
  /** The harness itself failed (e.g. could not build the initramfs): no guest runs. */
  error: string | undefined;
  killedBecause: string | undefined;
  finished!: Promise<GuestRun>;
  private child: ChildProcess | undefined;
  private partial = '';
  private log: WriteStream | undefined;

  /** Where the console is written as it arrives (BootOptions.consoleLog). */
  readonly consoleLog: string | undefined;

  constructor(consoleLog: string | undefined) {
    super();
    this.consoleLog = consoleLog;
    if (consoleLog) this.log = createWriteStream(consoleLog);
  }

  /** Kills the guest (SIGKILL) and boots no further attempt. */
  kill(reason: string): void {
    this.killedBecause ??= reason;
    this.child?.kill('SIGKILL');
  }

  newAttempt(accel: 'kvm' | 'tcg', q: ChildProcess, n: number): void {
    this.accel = accel;
    this.child = q;
    this.events = [];
    this.bootMs = undefined;
    this.caseStartedAt.clear();
    this.caseEndedAt.clear();
    this.partial = '';
    this.attemptStartedAt = this.lastEventAt = Date.now();
    this.log?.write(`\n=== meshstor harness: boot attempt ${n} (${accel}) at ${new Date().toISOString()}\n`);
    this.emit('change');
  }

  data(s: string): void {
    this.log?.write(s);
    const lines = (this.partial + s.replaceAll('\r', '')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const e = parseEvent(line);
      if (!e) continue;
      const now = Date.now();
      this.events.push(e);
      this.lastEventAt = now;
      if (e.kind === 'booted') this.bootMs = now - this.attemptStartedAt;
      if (e.kind === 'start' && e.name) this.caseStartedAt.set(e.name, now);
      if (e.kind === 'case' && e.name) this.caseEndedAt.set(e.name, now);
      this.emit('change');
    }
  }

  async end(run: GuestRun | undefined, error?: unknown): Promise<void> {
    this.run = run;
    if (error !== undefined) this.error = error instanceof Error ? error.message : String(error);
    this.child = undefined;
    if (this.log) await new Promise<void>((resolve) => this.log?.end(resolve));
    this.emit('change');
  }

  /** The guest is gone, or never started. */
  get gone(): boolean {
    return this.run !== undefined || this.error !== undefined;
  }
}

/** Boots the guest and returns at once; `session.finished` resolves when the guest is gone. */
export function startGuest(o: BootOptions): GuestSession {
  const build = currentBuild();
  if (!build) throw new Error('run `npm run setup:kernel` first');
  const session = new GuestSession(o.consoleLog);
  session.finished = runGuest(o, build, session).catch(async (e: unknown) => {
    await session.end(undefined, e);
    throw e;
  });
  // whoever awaits `finished` sees the error; the session records it for the rest
  session.finished.catch(() => undefined);
  return session;
}

/** Boots the guest and waits until it is gone. */
export function bootGuest(o: BootOptions): Promise<GuestRun> {
  return startGuest(o).finished;
}

async function runGuest(o: BootOptions, build: KernelBuild, session: GuestSession): Promise<GuestRun> {
  const work = o.workDir ?? mkdtempSync(join(tmpdir(), 'meshstor-vm-'));
  mkdirSync(work, { recursive: true });
  const initrd = join(work, 'initrd.cpio');
  projectInitrd(build.initrd, initrd, o, build);
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
    ...(o.network ? ['-nic', 'user,model=virtio-net-pci'] : ['-nic', 'none']),
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
    `console=ttyS0 panic=-1 quiet loglevel=${kernelLogLevel()} rdinit=/init cryptomgr.notests audit=0 mitigations=off meshstor.suite=${o.suite}`,
    ...driveArgs,
  ];
  const t0 = Date.now();
  let accel: 'kvm' | 'tcg' = kvmUsable() ? 'kvm' : 'tcg';
  let attempts = 0;
  const attempt = (bootLimitMs: number) =>
    runQemu(
      accel,
      args,
      o,
      bootLimitMs,
      (q) => session.newAttempt(accel, q, ++attempts),
      (s) => session.data(s),
    );
  const again = (r: Attempt) => !r.timedOut && session.killedBecause === undefined;
  let r = await attempt(accel === 'kvm' ? 30_000 : o.timeoutMs);
  if (accel === 'kvm' && r.noBoot && again(r)) {
    // /dev/kvm exists on some machines whose guests fault: fall back to TCG
    accel = 'tcg';
    r = await attempt(o.timeoutMs);
  }
  if (r.noBoot && again(r)) {
    // seen once under multi-threaded TCG: an int3 oops while the kernel patched its own text,
    // before /init ran (nothing touched the drives yet): boot once more, and say so
    console.error(
      `[kernel] the guest died before /init (${accel}); booting again:\n${r.console.slice(-1500)}`,
    );
    r = await attempt(o.timeoutMs);
  }
  for (let retry = 0; retry < 5 && again(r) && startupCrash(r.console); retry++) {
    // Node 24 in the TCG guest has died at startup in a V8 check ("it->second.Size() > offset",
    // SIGTRAP) before running any case, i.e. before touching a drive: boot again, and say so.
    // Seen under multi-threaded TCG only (TCG_ACCEL); kept as a guard, and it prints when it fires.
    console.error(`[kernel] guest Node crashed at startup (${accel}); booting again`);
    r = await attempt(o.timeoutMs);
  }
  const events = r.console.split('\n').flatMap((line) => parseEvent(line) ?? []);
  rmSync(initrd, { force: true });
  // images the caller passed in are theirs (kept for a "reboot"); the ones made here go
  for (const img of made) rmSync(img, { force: true });
  if (!o.workDir) rmSync(work, { recursive: true, force: true });
  const run: GuestRun = {
    accel,
    exitCode: events.find((e) => e.kind === 'exit')?.code,
    events,
    console: r.console,
    bootSec: events.find((e) => e.kind === 'booted')?.uptime,
    bootMs: session.bootMs,
    wallSec: (Date.now() - t0) / 1000,
    images,
    timedOut: r.timedOut,
    killedBecause: session.killedBecause,
  };
  await session.end(run);
  return run;
}
