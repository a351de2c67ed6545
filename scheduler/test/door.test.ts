// The extender's door (issue 13 §2): the verbs over HTTPS that require a client certificate from
// the configured CA. Real TLS on a real socket with certificates openssl makes for the test: the
// scheduler's certificate is let in; no certificate, or one from another CA, ends in the handshake
// before the verbs run. Plain HTTP only when asked for, with a warning.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeLogger } from '../../kube/log.ts';
import { type ExtenderPki, issue, makeCa, makeExtenderPki, type Pem } from '../../test/tls.ts';
import { closeServer, listen, privateSocket, readDoorTls, verbsServer } from '../door.ts';
import { ExtenderMetrics } from '../metrics.ts';
import { createVerbsApp } from '../server.ts';
import { ExtenderState } from '../state.ts';
import { postJson } from '../warm-up.ts';
import { pod } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshstor-door-'));
const state = new ExtenderState();
const metrics = new ExtenderMetrics(() => state.sizes());
const app = createVerbsApp({ state, metrics, log: makeLogger('test', 'silent') });
let pki: ExtenderPki;
let stranger: Pem;
let server: Server;
let port: number;
const body = JSON.stringify({ Pod: pod('p', []), NodeNames: ['node-1'] });

beforeAll(async () => {
  pki = makeExtenderPki(dir);
  // A client certificate as good as the scheduler's in every way but its issuer.
  const otherCa = makeCa(dir, 'other-ca', 'someone-else');
  stranger = issue(dir, otherCa, 'stranger', { subject: '/CN=kube-scheduler', usage: 'client' });
  const tls = readDoorTls({ cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca.cert });
  server = verbsServer({ tls }, app, makeLogger('test', 'silent'));
  port = await listen(server, 0, '127.0.0.1');
});
afterAll(async () => {
  await closeServer(server);
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves once `ok` holds, checking every 50 ms for at most 5 s. */
async function until(ok: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** POST /filter over HTTPS, trusting the extender's CA, with the client certificate given. */
function callFilter(client?: Pem): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/filter',
        method: 'POST',
        ca: readFileSync(pki.ca.cert),
        ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
        headers: { 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', (e) => resolve({ error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}` }));
    req.end(body);
  });
}

describe('mutual TLS on the verbs', () => {
  it("answers kube-scheduler's client certificate", async () => {
    expect(await callFilter(pki.client)).toEqual({ status: 200 });
  });

  it('refuses a caller without a client certificate before any verb runs', async () => {
    const filter = vi.spyOn(state, 'filter');
    const r = await callFilter();
    expect(r).toHaveProperty('error');
    expect((r as { error: string }).error).toMatch(/alert certificate required/i);
    expect(filter).not.toHaveBeenCalled();
    filter.mockRestore();
  });

  it('refuses a client certificate signed by another CA', async () => {
    const filter = vi.spyOn(state, 'filter');
    const r = await callFilter(stranger);
    expect(r).toHaveProperty('error');
    // TLS 1.3: the server checks the client's certificate after the client finished; it sends an
    // `unknown ca` alert and closes, which the client sees as the alert or as a reset.
    expect((r as { error: string }).error).toMatch(/unknown ca|ECONNRESET/i);
    expect(filter).not.toHaveBeenCalled();
    filter.mockRestore();
  });

  it('refuses plain HTTP on the TLS port', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/filter`, { method: 'POST', body }).catch(
      (e: Error) => e,
    );
    // Node answers an HTTP request on a TLS socket with a bare 400 or closes it; never a verb.
    if (res instanceof Error) expect(res.message).toMatch(/fetch failed/);
    else expect(res.status).toBe(400);
  });
});

describe('reading the PEM files', () => {
  it('names the flag and path of a missing file, never contents', () => {
    expect(() =>
      readDoorTls({ cert: join(dir, 'nope.crt'), key: pki.server.key, clientCa: pki.ca.cert }),
    ).toThrow(/--tls-cert .*nope\.crt: ENOENT/);
  });

  it('refuses a key that is not the certificate’s at start', () => {
    const msg = (() => {
      try {
        readDoorTls({ cert: pki.server.cert, key: pki.client.key, clientCa: pki.ca.cert });
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(msg).toMatch(/key values mismatch/);
    expect(msg).not.toMatch(/PRIVATE KEY/);
  });

  it('refuses a file that holds no PEM', () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    expect(() => readDoorTls({ cert: junk, key: pki.server.key, clientCa: pki.ca.cert })).toThrow(
      /--tls-cert/,
    );
  });
});

describe('renewed certificates are used without a restart', () => {
  /** The subject CN of the certificate the server shows a new connection. */
  const servedCn = (p: number) =>
    new Promise<string>((resolve, reject) => {
      const socket = tlsConnect(
        {
          host: '127.0.0.1',
          port: p,
          ca: readFileSync(pki.ca.cert),
          cert: readFileSync(pki.client.cert),
          key: readFileSync(pki.client.key),
        },
        () => {
          resolve(String(socket.getPeerCertificate().subject.CN));
          socket.end();
        },
      );
      socket.on('error', reject);
    });

  it('reads the files again, uses a changed valid set, keeps the old one when the new is broken', async () => {
    const live = join(dir, 'live');
    mkdirSync(live);
    const files = { cert: join(live, 'tls.crt'), key: join(live, 'tls.key'), clientCa: join(live, 'ca.crt') };
    copyFileSync(pki.server.cert, files.cert);
    copyFileSync(pki.server.key, files.key);
    copyFileSync(pki.ca.cert, files.clientCa);
    const renewed = issue(dir, pki.ca, 'renewed', {
      subject: '/CN=meshstor-extender-renewed',
      usage: 'server',
      sans: ['IP:127.0.0.1'],
    });
    const log = makeLogger('test', 'silent');
    const warn = vi.spyOn(log, 'warn');
    const s = verbsServer({ tls: readDoorTls(files), files, reloadMs: 50 }, app, log);
    const p = await listen(s, 0, '127.0.0.1');
    try {
      expect(await servedCn(p)).toBe('meshstor-extender');
      copyFileSync(renewed.key, files.key);
      copyFileSync(renewed.cert, files.cert);
      await until(async () => (await servedCn(p)) === 'meshstor-extender-renewed');
      writeFileSync(files.cert, 'half-written\n');
      await until(async () => warn.mock.calls.some((c) => /unusable/.test(String(c[1]))));
      expect(await servedCn(p)).toBe('meshstor-extender-renewed');
      expect(JSON.stringify(warn.mock.calls)).not.toMatch(/PRIVATE KEY|half-written/);
    } finally {
      await closeServer(s);
    }
  });
});

describe('plain HTTP only when asked for', () => {
  it('warns that the verbs are unauthenticated', async () => {
    const log = makeLogger('test', 'silent');
    const warn = vi.spyOn(log, 'warn');
    const plain = verbsServer({ insecureHttp: true }, app, log);
    const p = await listen(plain, 0, '127.0.0.1');
    try {
      expect(warn.mock.calls[0]?.[0]).toMatch(
        /INSECURE: --insecure-http .*plain HTTP without authentication/,
      );
      const r = await fetch(`http://127.0.0.1:${p}/filter`, { method: 'POST', body });
      expect(r.status).toBe(200);
    } finally {
      await closeServer(plain);
    }
  });
});

describe("the warm-up's private socket", () => {
  it('lives in a directory only this user can enter, serves the verbs, and is gone after close', async () => {
    const s = await privateSocket(app);
    const sockDir = join(s.socketPath, '..');
    expect(statSync(sockDir).mode & 0o777).toBe(0o700);
    const { Agent } = await import('node:http');
    const agent = new Agent();
    expect(await postJson(agent, { socketPath: s.socketPath }, '/filter', body)).toBe(200);
    agent.destroy();
    await s.close();
    expect(() => statSync(sockDir)).toThrow(/ENOENT/);
  });
});
