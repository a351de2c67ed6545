// The ONE place the agent runs host commands. LC_ALL=C (parsable, untranslated output), a time
// bound (SIGKILL when exceeded), cancellation through an AbortSignal, and errors that carry the
// full command line and its stderr. LinuxHost and the kernel-module loader (kernel-modules.ts) call it.
import { spawn } from 'node:child_process';
import { CancelledError, CommandError, CommandTimeoutError } from './errors.ts';

export interface ExecOptions {
  /** Time bound in ms (default 60 s). The process (group) is killed when it is exceeded. */
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
  /** Exit codes that count as success (default [0]). */
  okCodes?: number[];
  input?: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A function with exec's signature: LinuxHost takes one so tests can log or count commands. */
export type Exec = (cmd: string, args: string[], opts?: ExecOptions) => Promise<ExecResult>;

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);
export const commandLine = (cmd: string, args: string[]) => [cmd, ...args].map(quote).join(' ');

export const exec: Exec = (cmd, args, opts = {}) => {
  const line = commandLine(cmd, args);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const ok = opts.okCodes ?? [0];
  if (opts.signal?.aborted) return Promise.reject(new CancelledError(`cancelled before start: ${line}`));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group, so a kill reaches its children too
    });
    let stdout = '';
    let stderr = '';
    let why: 'timeout' | 'cancel' | undefined;
    const kill = (reason: 'timeout' | 'cancel') => {
      why ??= reason;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    const onAbort = () => kill('cancel');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.stdin.on('error', () => {}); // a command that does not read its input is fine
    child.stdin.end(opts.input ?? '');
    const done = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (e) => {
      done();
      reject(new CommandError(line, null, `${stderr}${e.message}`, 'cannot run'));
    });
    child.on('close', (code, sig) => {
      done();
      if (why === 'timeout')
        reject(new CommandTimeoutError(line, code, stderr, `timed out after ${timeoutMs} ms`));
      else if (why === 'cancel') reject(new CancelledError(`cancelled: ${line}`));
      else if (code !== null && ok.includes(code)) resolve({ code, stdout, stderr });
      else reject(new CommandError(line, code, stderr, code === null ? `killed by ${sig}` : undefined));
    });
  });
};
