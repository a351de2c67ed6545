// The one exec wrapper: C locale, time bound, cancellation, command + stderr in errors.
import { describe, expect, it } from 'vitest';
import { CancelledError, CommandError, CommandTimeoutError } from '../errors.ts';
import { exec } from '../exec.ts';

describe('exec', () => {
  it('runs with LC_ALL=C and returns stdout', async () => {
    const r = await exec('sh', ['-c', 'echo "$LC_ALL"; echo err >&2']);
    expect(r.stdout).toBe('C\n');
    expect(r.stderr).toBe('err\n');
    expect(r.code).toBe(0);
  });

  it('puts the command line and stderr in the error of a failing command', async () => {
    const e = await exec('sh', ['-c', 'echo "no such array" >&2; exit 3']).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).exitCode).toBe(3);
    expect((e as CommandError).message).toContain("sh -c 'echo");
    expect((e as CommandError).message).toContain('no such array');
  });

  it('accepts listed exit codes', async () => {
    expect((await exec('sh', ['-c', 'exit 1'], { okCodes: [0, 1] })).code).toBe(1);
  });

  it('kills a command that runs past its bound, children included', async () => {
    const t0 = Date.now();
    const e = await exec('sh', ['-c', 'sleep 30 & sleep 30'], { timeoutMs: 300 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CommandTimeoutError);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('cancels through an AbortSignal, before and during the run', async () => {
    const ac = new AbortController();
    const p = exec('sleep', ['30'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    await expect(exec('true', [], { signal: ac.signal })).rejects.toBeInstanceOf(CancelledError);
  });

  it('reports a command that cannot start', async () => {
    await expect(exec('/nonexistent/tool', [])).rejects.toThrow(/cannot run: \/nonexistent\/tool/);
  });
});
