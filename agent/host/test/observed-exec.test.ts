import { describe, expect, it } from 'vitest';
import type { HostCommandFailure } from '../../../kube/metrics.ts';
import { CancelledError, CommandError, CommandTimeoutError } from '../errors.ts';
import type { Exec } from '../exec.ts';
import { observedExec } from '../observed-exec.ts';

describe('observedExec', () => {
  const seen: [string, number, HostCommandFailure | undefined][] = [];
  let t = 0;
  const clock = () => t;
  const observe = (c: string, s: number, f?: HostCommandFailure) => {
    seen.push([c, s, f]);
  };

  it('reports the program, its duration and why it failed; results and errors pass through', async () => {
    const errors: Record<string, Error> = {
      exit: new CommandError('mdadm --add', 1, 'mdadm: busy'),
      timeout: new CommandTimeoutError('mkfs.xfs /dev/md0', null, '', 'timed out after 60000 ms'),
      cancelled: new CancelledError('cancelled: nvme connect'),
      missing: new CommandError('sgdisk', null, 'spawn sgdisk ENOENT', 'cannot run'),
      killed: new CommandError('mdadm', null, '', 'killed by SIGKILL'),
    };
    const inner: Exec = async (_cmd, args) => {
      t += 1500;
      const e = errors[args[0] ?? ''];
      if (e) throw e;
      return { code: 0, stdout: 'out', stderr: '' };
    };
    const run = observedExec(inner, observe, clock);
    expect(await run('/usr/sbin/sgdisk', ['--print', '/dev/nvme0n1'])).toEqual({
      code: 0,
      stdout: 'out',
      stderr: '',
    });
    for (const k of Object.keys(errors)) await expect(run('mdadm', [k])).rejects.toBe(errors[k]);
    expect(seen).toEqual([
      ['sgdisk', 1.5, undefined],
      ['mdadm', 1.5, 'exit'],
      ['mdadm', 1.5, 'timeout'],
      ['mdadm', 1.5, 'cancelled'],
      ['mdadm', 1.5, 'not_run'],
      ['mdadm', 1.5, 'exit'],
    ]);
  });
});
