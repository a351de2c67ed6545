// An Exec that reports every host command to an observer (the agent's metrics): the program, how
// long it ran, and why it failed. It wraps the one exec wrapper; it runs nothing itself.
import { basename } from 'node:path';
import type { HostCommandFailure, HostCommandObserver } from '../../kube/metrics.ts';
import { CancelledError, CommandError, CommandTimeoutError } from './errors.ts';
import type { Exec } from './exec.ts';

export function failureOf(e: unknown): HostCommandFailure {
  if (e instanceof CancelledError) return 'cancelled';
  if (e instanceof CommandTimeoutError) return 'timeout';
  // exec.ts says 'cannot run' when the program could not be started (not installed, no permission)
  if (e instanceof CommandError)
    return e.exitCode === null && e.message.startsWith('cannot run') ? 'not_run' : 'exit';
  return 'not_run';
}

export function observedExec(exec: Exec, observe: HostCommandObserver, now = () => performance.now()): Exec {
  return async (cmd, args, opts) => {
    // the program only: arguments hold ids and paths (unbounded label values) and may hold secrets
    const command = basename(cmd);
    const start = now();
    try {
      const r = await exec(cmd, args, opts);
      observe(command, (now() - start) / 1000);
      return r;
    } catch (e) {
      observe(command, (now() - start) / 1000, failureOf(e));
      throw e;
    }
  };
}
