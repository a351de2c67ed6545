// Inside the VM: watches for secrets where they must never be. While running it reads every
// process's /proc/<pid>/cmdline every 50 ms (a command given a key on its argv, as
// `nvme connect --dhchap-secret=...` would be, shows there for as long as it runs); at the end it
// reads the kernel log (/dev/kmsg), and every command line the nodes' LinuxHosts ran in between
// (env.ts records them: under TCG the sampling is too slow to see every short command). Any text
// holding a DH-HMAC-CHAP secret is an offence.
import { constants } from 'node:fs';
import { open, readdir, readFile } from 'node:fs/promises';
import { holdsSecret, redactSecrets } from '../../../kube/redact.ts';
import { commandsRun } from './env.ts';

export interface WatchReport {
  scans: number;
  /** Distinct processes whose command line was read. */
  processes: number;
  /** Where a secret was seen (redacted), empty when none. */
  offences: string[];
  kernelLogLines: number;
  /** Host commands run while watching, each checked. */
  commands: number;
}

export class SecretWatch {
  private scans = 0;
  private readonly seen = new Set<string>();
  private readonly offences: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private firstCommand = 0;

  start(): void {
    this.firstCommand = commandsRun.length;
    const tick = () => {
      this.running = this.scan().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, 50);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  private async scan(): Promise<void> {
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const argv = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (!argv) continue;
      const line = argv.split('\0').join(' ').trim();
      this.seen.add(`${pid} ${line.slice(0, 80)}`);
      if (holdsSecret(line)) this.offences.push(`cmdline of ${pid}: ${redactSecrets(line).slice(0, 200)}`);
    }
    this.scans++;
  }

  async stop(): Promise<WatchReport> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    const kmsg = await kernelLog();
    for (const l of kmsg) if (holdsSecret(l)) this.offences.push(`kernel log: ${redactSecrets(l)}`);
    const commands = commandsRun.slice(this.firstCommand);
    for (const c of commands) if (holdsSecret(c)) this.offences.push(`command: ${redactSecrets(c)}`);
    return {
      scans: this.scans,
      processes: this.seen.size,
      offences: this.offences,
      kernelLogLines: kmsg.length,
      commands: commands.length,
    };
  }
}

/** Every record in the kernel's ring buffer (`prio,seq,usec,flags;message`), oldest first. */
export async function kernelLog(): Promise<string[]> {
  const fh = await open('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  const out: string[] = [];
  const buf = Buffer.alloc(8192);
  try {
    for (;;) {
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, buf.length, null));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break;
        if (code === 'EPIPE') continue; // records overwritten while reading: go on with the next
        throw e;
      }
      if (n === 0) break;
      out.push(buf.toString('utf8', 0, n).trimEnd());
    }
  } finally {
    await fh.close();
  }
  return out;
}

/** Kernel log records at or after `sinceSec` of uptime, as message text. */
export async function kernelLogSince(sinceSec: number): Promise<string[]> {
  return (await kernelLog())
    .map((r) => /^\d+,\d+,(\d+),[^;]*;(.*)/s.exec(r))
    .filter((m): m is RegExpExecArray => m !== null && Number(m[1]) / 1e6 >= sinceSec)
    .map((m) => (m[2] ?? '').split('\n')[0] ?? '');
}

export async function uptimeSec(): Promise<number> {
  return Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
}
