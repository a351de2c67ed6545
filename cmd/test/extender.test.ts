import { afterEach, describe, expect, it, vi } from 'vitest';
import { runExtender } from '../extender.ts';

describe('meshstor extender flags', () => {
  afterEach(() => vi.restoreAllMocks());
  it.each([
    [['--port', 'http'], /--port must be 0..65535/],
    [['--heartbeat-stale', '0'], /--heartbeat-stale > 0/],
    [['--bogus'], /Unknown option '--bogus'/],
  ])('%j exits 2 with the usage', async (argv, msg) => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await runExtender(argv)).toBe(2);
    expect(String(err.mock.calls[0]?.[0])).toMatch(msg);
    expect(String(err.mock.calls[0]?.[0])).toMatch(/usage: meshstor extender/);
  });
});
