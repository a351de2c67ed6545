// Self-fencing's timing on the real apiserver (ADR 0006): a node's right to write is its
// coordination.k8s.io Lease, renewed through KubeLeases; another node watching that Lease may take a
// volume over only once it has been unchanged for D + M on its own clock. Here the holder reaches the
// apiserver through a TCP relay this test can cut (its connections dropped, new ones refused), the
// way a partition cuts a node off; the watcher keeps its own connection. Short timings keep the
// test quick; the inequalities they satisfy are the production ones (timingViolations).
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { KubeLeases, nodeLeaseName } from '../../agent/kube-leases.ts';
import { RightWatch, timingViolations, WRITE_RIGHT, WriteRight } from '../../agent/write-right.ts';
import { loadKubeConfig } from '../../kube/client.ts';

const TIMING = {
  ...WRITE_RIGHT,
  leaseMs: 4_000,
  renewMs: 1_000,
  fenceGuardMs: 500,
  takeoverMarginMs: 1_000,
  // a remote leg's ctrl-loss-tmo scaled with the lease: 6 s > D(1 + ρ)
  remoteCtrlLossTmoSec: 6,
};

/** A TCP relay to the apiserver that can be cut: existing connections destroyed, new ones refused. */
class Relay {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  cut = false;

  constructor(target: { host: string; port: number }) {
    this.server = createServer((client) => {
      if (this.cut) return void client.destroy();
      const upstream = tcpConnect(target.port, target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as { port: number }).port)),
    );
  }

  sever(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    this.sever();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("self-fencing's right to write on the real apiserver (ADR 0006)", () => {
  const relays: Relay[] = [];
  afterAll(async () => {
    for (const r of relays) await r.close();
  });

  it('the test timing keeps the inequalities the production timing keeps', () => {
    expect(timingViolations(TIMING)).toEqual([]);
  });

  it('a node cut off from the apiserver fences itself before another node may take over', async () => {
    const watcherKc = loadKubeConfig(inject('cluster').kubeconfig);
    const server = new URL(watcherKc.getCurrentCluster()?.server as string);
    const relay = new Relay({ host: server.hostname, port: Number(server.port) });
    relays.push(relay);
    const port = await relay.listen();
    // the holder's kubeconfig: the same credentials, the apiserver through the relay (the serving
    // certificate names 127.0.0.1, so TLS still verifies)
    const holderKc = loadKubeConfig(inject('cluster').kubeconfig);
    const c = holderKc.getCurrentCluster();
    if (!c) throw new Error('no cluster in the kubeconfig');
    holderKc.clusters = holderKc.clusters.map((x) =>
      x.name === c.name ? { ...x, server: `https://127.0.0.1:${port}` } : x,
    );

    const node = `wr-${process.pid}`;
    const events: { what: string; at: number }[] = [];
    const mark = (what: string) => events.push({ what, at: performance.now() });
    const holder = new WriteRight({
      node,
      api: new KubeLeases(holderKc, 'default'),
      timing: TIMING,
      onLapse: async (why) => {
        mark(`lapse: ${why}`);
      },
    });
    const watch = new RightWatch(new KubeLeases(watcherKc, 'default'), undefined, TIMING);

    // the holder renews: it holds its right, and the watcher never sees the lease end
    await holder.tick();
    await holder.settle();
    expect(holder.holds()).toBe(true);
    holder.start(100);
    const lease = await watcherKc
      .makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api)
      .readNamespacedLease({ name: nodeLeaseName(node), namespace: 'default' });
    expect(lease.spec?.holderIdentity).toBe(node);
    expect(lease.spec?.leaseDurationSeconds).toBe(4);
    for (let i = 0; i < 10; i++) {
      expect(await watch.waitMs(node)).toBeGreaterThan(0);
      await sleep(300);
    }
    expect(holder.holds()).toBe(true);
    expect(events).toEqual([]);

    // the cut: the holder's renewals fail from now on
    relay.sever();
    mark('cut');
    let takeoverAt: number | undefined;
    const deadline = performance.now() + 4 * (TIMING.leaseMs + TIMING.takeoverMarginMs);
    while (takeoverAt === undefined && performance.now() < deadline) {
      if ((await watch.waitMs(node)) === 0) takeoverAt = performance.now();
      else await sleep(100);
    }
    holder.stop();
    const cutAt = events.find((e) => e.what === 'cut')?.at as number;
    const lapse = events.find((e) => e.what.startsWith('lapse'));
    expect(lapse, `no lapse after the cut: ${JSON.stringify(events)}`).toBeDefined();
    expect(lapse?.what).toMatch(/not renewed/);
    expect(takeoverAt, 'the watcher never saw the right end').toBeDefined();
    const lapseAt = lapse?.at as number;
    // the holder stopped acknowledging writes within one lease of the cut, before the takeover
    expect(lapseAt - cutAt).toBeLessThanOrEqual(TIMING.leaseMs);
    expect(lapseAt).toBeLessThan(takeoverAt as number);
    // and the watcher waited at least D + M of unchanged lease after the holder's last renewal
    expect((takeoverAt as number) - cutAt).toBeGreaterThanOrEqual(
      // the last accepted renewal was sent at most one renewal period (+ a 100 ms tick) before it
      TIMING.leaseMs + TIMING.takeoverMarginMs - TIMING.renewMs - 200,
    );
    console.log(
      `[write-right] cut → fence ${Math.round(lapseAt - cutAt)} ms, cut → takeover allowed ${Math.round(
        (takeoverAt as number) - cutAt,
      )} ms (D ${TIMING.leaseMs}, M ${TIMING.takeoverMarginMs}, G ${TIMING.fenceGuardMs} ms)`,
    );
  }, 60_000);
});
