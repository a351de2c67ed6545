// KeyedLock: one holder per key; waiting and answering end when the caller's signal aborts, while
// the key stays held until the work itself is done (two holders at once is what it prevents).
import { describe, expect, it } from 'vitest';
import { KeyedLock } from '../lock.ts';

const later = () => {
  let resolve!: () => void;
  const p = new Promise<void>((r) => {
    resolve = r;
  });
  return { p, resolve };
};

describe('KeyedLock', () => {
  it('runs work on one key one at a time, in order', async () => {
    const lock = new KeyedLock();
    const seen: string[] = [];
    const gate = later();
    const a = lock.run('k', async () => {
      seen.push('a start');
      await gate.p;
      seen.push('a end');
    });
    const b = lock.run('k', async () => void seen.push('b'));
    await Promise.resolve();
    expect(seen).toEqual(['a start']);
    gate.resolve();
    await Promise.all([a, b]);
    expect(seen).toEqual(['a start', 'a end', 'b']);
  });

  it('a waiter whose signal aborts gives up with the signal’s reason, without ever running', async () => {
    const lock = new KeyedLock();
    const gate = later();
    const holder = lock.run('k', () => gate.p);
    const ac = new AbortController();
    let ran = false;
    const waiter = lock.run(
      'k',
      async () => {
        ran = true;
      },
      ac.signal,
    );
    const reason = new Error('deadline');
    ac.abort(reason);
    await expect(waiter).rejects.toBe(reason);
    // the next caller still waits for the holder, then runs
    const next = lock.run('k', async () => 'next');
    gate.resolve();
    await holder;
    expect(await next).toBe('next');
    expect(ran).toBe(false);
  });

  it('a holder whose signal aborts is answered at once; the key is free only when its work ends', async () => {
    const lock = new KeyedLock();
    const gate = later();
    const ac = new AbortController();
    const started = later();
    const holder = lock.run(
      'k',
      () => {
        started.resolve();
        return gate.p;
      },
      ac.signal,
    );
    await started.p;
    ac.abort(new Error('cancelled'));
    await expect(holder).rejects.toThrow('cancelled');
    expect(await lock.tryRun('k', async () => 'ran', 'busy')).toBe('busy');
    gate.resolve();
    await gate.p;
    await new Promise((r) => setTimeout(r, 0));
    expect(await lock.tryRun('k', async () => 'ran', 'busy')).toBe('ran');
    expect(lock.size).toBe(0);
  });

  it('an already aborted signal is refused before queueing', async () => {
    const lock = new KeyedLock();
    await expect(lock.run('k', async () => 1, AbortSignal.abort(new Error('late')))).rejects.toThrow('late');
    expect(lock.size).toBe(0);
  });
});
