import { describe, expect, it } from 'vitest';
import { every } from '../periodic.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('every', () => {
  it('a kick runs a pass at once; kicks during a pass give exactly one more; stop waits and ends it', async () => {
    let runs = 0;
    let release: () => void = () => {};
    const p = every(60_000, async () => {
      runs++;
      await new Promise<void>((r) => {
        release = r;
      });
    });
    p.kick();
    expect(runs).toBe(1);
    p.kick();
    p.kick();
    release();
    await sleep(20);
    expect(runs).toBe(2); // the two kicks while it ran: one more pass
    const stopped = p.stop();
    p.kick(); // after stop: ignored
    release();
    await stopped;
    await sleep(20);
    expect(runs).toBe(2);
  });
});
