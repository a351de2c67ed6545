import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { httpsGet } from '../../test/cluster/control-plane.ts';
import { MeshstorProcess } from '../../test/support/meshstor-process.ts';
import { makeExtenderPki } from '../../test/tls.ts';
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

describe('meshstor extender as a process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshstor-ext-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // An apiserver nobody listens on: the informers keep retrying; the doors open regardless.
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
  );
  const common = ['--host', '127.0.0.1', '--port', '0', '--probe-port', '0', '--kubeconfig', kubeconfig];

  it('serves the verbs over mutual TLS, probes apart, and logs no key material', async () => {
    const pki = makeExtenderPki(dir);
    const p = new MeshstorProcess([
      'extender',
      ...common,
      '--tls-cert',
      pki.server.cert,
      '--tls-key',
      pki.server.key,
      '--client-ca',
      pki.ca.cert,
    ]);
    try {
      await p.waitFor('extender listening');
      const [listening] = p.lines('extender listening');
      expect(listening?.scheme).toMatch(/^https \(client certificate required\)/);
      const url = `https://127.0.0.1:${listening?.port}/filter`;
      const ca = readFileSync(pki.ca.cert);
      const [refused, why] = await httpsGet(url, { ca });
      expect([refused, why]).toEqual([0, expect.stringMatching(/certificate required/)]);
      const [served] = await httpsGet(url, {
        ca,
        cert: readFileSync(pki.client.cert),
        key: readFileSync(pki.client.key),
      });
      expect(served).toBe(404); // a GET reached the verbs' app: no such verb
      expect((await fetch(`http://127.0.0.1:${listening?.probePort}/healthz`)).status).toBe(200);
      expect(p.log).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
      expect(p.log).not.toMatch(/INSECURE/);
    } finally {
      expect(await p.stop()).toBe(0);
    }
  });

  it('--insecure-http says so at warn level before it serves plain HTTP', async () => {
    const p = new MeshstorProcess(['extender', ...common, '--insecure-http']);
    try {
      await p.waitFor('extender listening');
      const warn = p.log.split('\n').find((l) => l.includes('INSECURE'));
      expect(JSON.parse(warn ?? '{}')).toMatchObject({ level: 40 });
      const [listening] = p.lines('extender listening');
      expect(listening?.scheme).toBe('http (INSECURE)');
    } finally {
      expect(await p.stop()).toBe(0);
    }
  });
});
