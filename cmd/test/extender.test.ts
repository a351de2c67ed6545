import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../meshstor.ts';

describe('meshstor extender flags', () => {
  afterEach(() => vi.restoreAllMocks());
  it.each([
    [['--port', 'http'], /--port http: not a whole number/],
    [['--heartbeat-stale', '0'], /--heartbeat-stale 0: must be 1\.\./],
    [['--bogus'], /Unknown option '--bogus'/],
    [['--log-level', 'loud'], /--log-level loud: use fatal or error/],
  ])('%j exits 2 and points at --help', async (argv, msg) => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await main(['extender', ...argv])).toBe(2);
    expect(String(err.mock.calls[0]?.[0])).toMatch(msg);
    expect(String(err.mock.calls[0]?.[0])).toMatch(/Run 'meshstor extender --help'/);
  });

  // The default is mutual TLS: no certificate is a clear start-up error, never a plain-HTTP server.
  it.each([
    [[], /serves its verbs over mutual TLS: give --tls-cert, --tls-key and --client-ca/],
    [['--tls-cert', 'a.crt', '--tls-key', 'a.key'], /give --tls-cert, --tls-key and --client-ca/],
    [['--insecure-http', '--client-ca', 'ca.crt'], /--insecure-http and --tls-cert.* exclude each other/],
  ])('%j exits 2 before it listens', async (argv, msg) => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await main(['extender', ...argv])).toBe(2);
    expect(String(err.mock.calls[0]?.[0])).toMatch(msg);
  });

  it('a certificate file that cannot be read exits 1 naming the flag and the path', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    const missing = '/nonexistent/meshstor/tls.crt';
    expect(await main(['extender', '--tls-cert', missing, '--tls-key', 'k', '--client-ca', 'c'])).toBe(1);
    expect(String(err.mock.calls[0]?.[0])).toMatch(/--tls-cert \/nonexistent\/meshstor\/tls\.crt: ENOENT/);
  });
});

describe('every subcommand', () => {
  afterEach(() => vi.restoreAllMocks());
  // `meshstor extender --help` used to fail with "Unknown option '--help'".
  it.each(['simulate', 'controller', 'extender', 'agent'])(
    '%s answers --help with its options and exit 0',
    async (name) => {
      const out = vi.spyOn(console, 'log').mockImplementation(() => {});
      expect(await main([name, '--help'])).toBe(0);
      const text = String(out.mock.calls[0]?.[0]);
      expect(text).toMatch(new RegExp(`^usage: meshstor ${name}`));
      expect(text).toMatch(/--log-level LEVEL/);
      expect(text).toMatch(/-h, --help/);
    },
  );
});
