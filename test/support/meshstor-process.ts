// Runs `meshstor <args>` as a child process for tests: collects its JSON log lines from stderr,
// waits for a log message, and stops it with SIGTERM (returning its exit code).
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export const MESHSTOR_CLI = join(import.meta.dirname, '..', '..', 'cmd', 'meshstor.ts');

export class MeshstorProcess {
  readonly proc: ChildProcess;
  log = '';
  private readonly exited: Promise<number | null>;

  /** `onLog` also sees the log as it arrives (e.g. to copy it to a VM's console). */
  constructor(args: string[], onLog?: (chunk: string) => void) {
    this.proc = spawn(process.execPath, [MESHSTOR_CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr?.on('data', (d) => {
      this.log += String(d);
      onLog?.(String(d));
    });
    this.exited = new Promise((r) => this.proc.once('exit', (code) => r(code)));
  }

  /** `meshstor controller --state kube` on a socket, its allocator Lease in namespace default. */
  static kubeController(socket: string, kubeconfig: string, extra: string[] = []): MeshstorProcess {
    return new MeshstorProcess([
      'controller',
      '--csi-socket',
      socket,
      '--kubeconfig',
      kubeconfig,
      '--lease-namespace',
      'default',
      ...extra,
    ]);
  }

  /** Resolves when a log line has `"msg":"<msg>"`; rejects on timeout or if the process exits first. */
  async waitFor(msg: string, timeoutMs = 30_000): Promise<void> {
    const needle = `"msg":"${msg}"`;
    const deadline = Date.now() + timeoutMs;
    while (!this.log.includes(needle)) {
      if (this.proc.exitCode !== null)
        throw new Error(`meshstor exited (${this.proc.exitCode}) before "${msg}":\n${this.log}`);
      if (Date.now() > deadline)
        throw new Error(`meshstor did not log "${msg}" within ${timeoutMs} ms:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The log lines (JSON objects) with this message whose fields include `fields` (compared as JSON). */
  lines(msg: string, fields: Record<string, unknown> = {}): Record<string, unknown>[] {
    return this.log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter(
        (l) =>
          l.msg === msg &&
          Object.entries(fields).every(([k, v]) => JSON.stringify(l[k]) === JSON.stringify(v)),
      );
  }

  /** Whether a log line has this message and these fields. */
  logged(msg: string, fields: Record<string, unknown> = {}): boolean {
    return this.lines(msg, fields).length > 0;
  }

  async stop(): Promise<number | null> {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
    return this.exited;
  }
}
