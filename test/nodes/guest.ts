// One Kubernetes node of the nodes tier: a qemu TCG guest booting the shared root image (snapshot=on:
// its writes go to a throw-away overlay), with its own NVMe drives (sparse files), eth0 on slirp
// (reaches the host's loopback apiserver as 10.0.2.2) and eth1 on a tap device in a host bridge
// shared by all guests (the node network: 192.168.100.10+N, NVMe/TCP between nodes; the host is
// 192.168.100.1 there, so the apiserver reaches each kubelet for logs and exec). Its console (ttyS0: boot and
// `@@NODE` events) and its logs (ttyS1: kubelet, containerd, every pod container) go to files.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpioOf, type GuestRoot } from './root-image.ts';

export interface DriveFile {
  path: string;
  serial: string;
  sizeMiB: number;
  /** an "OS drive": a GPT with one partition of this many MiB at its start, the rest free */
  osPartitionMiB?: number;
}

export interface GuestSpec {
  name: string;
  /** 1..9: MAC addresses, 192.168.100.(10+index), pod subnet 10.244.index.0/24 */
  index: number;
  /** where the guest reaches the apiserver: the host's bridge address (forwarded to its loopback) */
  apiHost: string;
  apiPort: number;
  /** the control plane's pki directory: ca.crt and node-<name>.crt/.key */
  pki: string;
  root: GuestRoot;
  drives: DriveFile[];
  /** the host tap device of eth1 (in the run's bridge) */
  tap: string;
  labels: Record<string, string>;
  /** taints the node registers with (`key=value:Effect`) */
  taints?: string[];
  memMiB: number;
  cpus: number;
  dir: string;
}

export interface NodeEvent {
  ev: string;
  up: number;
  [key: string]: unknown;
}

export class Guest {
  readonly console: string;
  readonly logs: string;
  private proc: ChildProcess | undefined;
  readonly started = Date.now();

  readonly spec: GuestSpec;

  constructor(spec: GuestSpec) {
    this.spec = spec;
    this.console = join(spec.dir, `${spec.name}.console`);
    this.logs = join(spec.dir, `${spec.name}.logs`);
  }

  /** Creates the drive files (sparse) and the OS drive's partition, when absent. */
  static makeDrives(drives: DriveFile[]): void {
    for (const d of drives) {
      if (existsSync(d.path)) continue;
      spawnSync('truncate', ['-s', `${d.sizeMiB}M`, d.path]);
      if (d.osPartitionMiB !== undefined) {
        const r = spawnSync(
          'sgdisk',
          ['-n', `1:2048:+${d.osPartitionMiB}M`, '-t', '1:8300', '-c', '1:os-root', d.path],
          {
            encoding: 'utf8',
          },
        );
        if (r.status !== 0) throw new Error(`sgdisk on ${d.path}: ${r.stderr}`);
      }
    }
  }

  start(): void {
    const s = this.spec;
    mkdirSync(s.dir, { recursive: true });
    Guest.makeDrives(s.drives);
    // this guest's files, appended to the base initramfs as a second cpio archive
    const files = join(s.dir, `${s.name}.files`);
    mkdirSync(files, { recursive: true });
    writeFileSync(
      join(files, 'env'),
      `NODE=${s.name}\nINDEX=${s.index}\nAPI_HOST=${s.apiHost}\nAPI_PORT=${s.apiPort}\nLABELS=${Object.entries(
        s.labels,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(',')}\nTAINTS=${(s.taints ?? []).join(',')}\n`,
    );
    writeFileSync(join(files, 'ca.crt'), readFileSync(join(s.pki, 'ca.crt')));
    writeFileSync(join(files, 'node.crt'), readFileSync(join(s.pki, `node-${s.name}.crt`)));
    writeFileSync(join(files, 'node.key'), readFileSync(join(s.pki, `node-${s.name}.key`)));
    const staged = join(s.dir, `${s.name}.stage`);
    mkdirSync(join(staged, 'node'), { recursive: true });
    spawnSync('cp', ['-a', `${files}/.`, join(staged, 'node')]);
    const initrd = join(s.dir, `${s.name}.initrd`);
    writeFileSync(initrd, Buffer.concat([readFileSync(s.root.initrd), cpioOf(staged)]));
    const mac = (net: number) => `52:54:00:0${net}:00:0${s.index}`;
    const args = [
      '-accel',
      'tcg,thread=multi,tb-size=256',
      '-cpu',
      'max',
      '-machine',
      'q35',
      '-smp',
      String(s.cpus),
      '-m',
      String(s.memMiB),
      '-display',
      'none',
      '-vga',
      'none',
      '-no-reboot',
      '-monitor',
      'none',
      '-serial',
      'stdio',
      '-serial',
      `file:${this.logs}`,
      '-kernel',
      s.root.kernel,
      '-initrd',
      initrd,
      '-append',
      'console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init cryptomgr.notests audit=0 mitigations=off',
      '-drive',
      `file=${s.root.image},if=none,id=root,format=raw,snapshot=on,cache=unsafe`,
      '-device',
      'virtio-blk-pci,drive=root',
      '-netdev',
      'user,id=n0',
      '-device',
      `virtio-net-pci,netdev=n0,mac=${mac(0)}`,
      '-netdev',
      `tap,id=n1,ifname=${s.tap},script=no,downscript=no`,
      '-device',
      `virtio-net-pci,netdev=n1,mac=${mac(1)}`,
      '-device',
      'virtio-rng-pci',
    ];
    s.drives.forEach((d, i) => {
      args.push('-drive', `file=${d.path},if=none,id=d${i},format=raw,cache=unsafe`);
      args.push('-device', `nvme,drive=d${i},serial=${d.serial}`);
    });
    const out = createWriteStream(this.console);
    // setpriv execs qemu (same pid) with a parent-death signal: a test run that is killed outright
    // takes its guests with it instead of leaving three TCG guests eating the machine's two cores
    this.proc = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const t0 = this.started;
    const stamp = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n'))
        if (line.trim())
          out.write(`${((Date.now() - t0) / 1000).toFixed(1).padStart(7)} ${line.replace(/\r$/, '')}\n`);
    };
    this.proc.stdout?.on('data', stamp);
    this.proc.stderr?.on('data', stamp);
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The `@@NODE` events the guest printed so far. */
  events(): NodeEvent[] {
    if (!existsSync(this.console)) return [];
    const found: NodeEvent[] = [];
    for (const line of readFileSync(this.console, 'utf8').split('\n')) {
      const at = line.indexOf('@@NODE ');
      if (at < 0) continue;
      try {
        found.push(JSON.parse(line.slice(at + 7)) as NodeEvent);
      } catch {
        // a line cut by the console: ignore it
      }
    }
    return found;
  }

  async waitForEvent(ev: string, timeoutMs: number): Promise<NodeEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events().find((x) => x.ev === ev);
      if (e) return e;
      if (!this.running)
        throw new Error(`${this.spec.name}: qemu exited before "${ev}" (console: ${this.console})`);
      if (Date.now() > deadline)
        throw new Error(`${this.spec.name}: no "${ev}" after ${timeoutMs} ms (console: ${this.console})`);
      await sleep(500);
    }
  }

  /** Pulls the plug (a node lost); the drives stay for a later boot. */
  async kill(): Promise<void> {
    if (!this.proc || !this.running) return;
    const p = this.proc;
    p.kill('SIGKILL');
    await new Promise((r) => p.once('exit', r));
  }
}
