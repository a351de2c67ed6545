import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MeshstorProcess } from '../../test/support/meshstor-process.ts';

const cli = join(import.meta.dirname, '..', 'meshstor.ts');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

describe('meshstor CLI', () => {
  it('lists commands and refuses unknown ones with exit 2', () => {
    expect(run('--help').stdout).toMatch(/simulate/);
    const r = run('frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it('simulate writes the report files for a scenario file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-cli-'));
    const scenario = join(dir, 's.yaml');
    writeFileSync(
      scenario,
      `name: tiny
seed: 1
durationHours: 200
cluster:
  zones: [a, b]
  nodesPerZone: 2
  nodeTypes: [{ name: t, drives: [1TB] }]
workload:
  arrivalsPerHour: 0.5
  sizes: [{ value: 10GiB, weight: 1 }]
  replicaCounts: [{ value: 2, weight: 1 }]
policies: [meshstor, random]
`,
    );
    const r = run('simulate', scenario, '--out', join(dir, 'out'), '--no-progress');
    expect(r.stderr).toMatch(/simulated \d+ events/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/meshstor\s+none/);
    const withProgress = run('simulate', scenario, '--out', join(dir, 'out'), '--progress');
    expect(withProgress.stderr).toMatch(/simulating: 50% \(\d+\/\d+ events, (meshstor|random)\)/);
    // progress goes to stderr only: stdout is the same
    expect(withProgress.stdout).toBe(r.stdout);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual([
      'fill.svg',
      'locality.svg',
      'metrics.csv',
      'report.md',
      'timeseries.csv',
    ]);
  });

  it('a bad scenario file fails with its problems and exit 1; bad flags exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-cli-'));
    const scenario = join(dir, 'bad.yaml');
    writeFileSync(scenario, 'name: Bad Name\nseed: x\n');
    const r = run('simulate', scenario);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/scenario .*bad.yaml is not valid/);
    expect(r.stderr).toMatch(/name: lowercase/);
    expect(run('simulate', join(dir, 'missing.yaml')).stderr).toMatch(/cannot read scenario file .*ENOENT/);
    const flag = run('simulate', '--bogus');
    expect(flag.status).toBe(2);
    expect(flag.stderr).toMatch(/bogus/);
    expect(run('simulate', '--policies', 'nope').stderr).toMatch(/--policies: known policies/);
  });
});

describe('meshstor controller', () => {
  it('serves CSI on a socket, provisions, and stops cleanly on SIGTERM', async () => {
    const grpc = await import('@grpc/grpc-js');
    const { loadCsi } = await import('../../csi/server.ts');
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-ctl-'));
    const socket = join(dir, 'csi.sock');
    const proc = new MeshstorProcess([
      'controller',
      '--csi-socket',
      socket,
      '--state',
      'memory',
      '--metrics-port',
      '0',
    ]);
    await proc.waitFor('serving');
    expect(proc.logged('serving', { nodes: 24 })).toBe(true);
    const metricsPort = proc.lines('serving')[0]?.metricsPort;
    const pkg = loadCsi();
    const client = new pkg.csi.v1.Controller(`unix:${socket}`, grpc.credentials.createInsecure());
    const res = await new Promise<{ volume: { volume_id: string } }>((resolve, reject) =>
      (
        client as unknown as { CreateVolume: (r: object, cb: (e: Error | null, v: never) => void) => void }
      ).CreateVolume(
        {
          name: 'pvc-cli',
          capacity_range: { required_bytes: '1073741824' },
          volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
          parameters: { replicaCount: '2' },
        },
        (e, v) => (e ? reject(e) : resolve(v)),
      ),
    );
    expect(res.volume.volume_id).toBe('pvc-cli');
    // the call is counted by method and code on /metrics
    const scraped = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(scraped).toMatch(/meshstor_csi_rpc_duration_seconds_count\{method="CreateVolume",code="OK"\} 1/);
    // /healthz: its own CSI socket answers Probe ready
    const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    client.close();
    expect(await proc.stop()).toBe(0);
    expect(proc.logged('CreateVolume')).toBe(true);
    expect(proc.logged('stopping', { signal: 'SIGTERM' })).toBe(true);
  });

  it('with --state kube, Probe says not ready while its placement caches have no first list', async () => {
    const grpc = await import('@grpc/grpc-js');
    const { loadCsi } = await import('../../csi/server.ts');
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-ctl-'));
    const socket = join(dir, 'csi.sock');
    const kubeconfig = join(dir, 'kubeconfig');
    // An apiserver nobody listens on: the informers keep retrying and never sync.
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
    const proc = MeshstorProcess.kubeController(socket, kubeconfig, ['--metrics-port', '0']);
    await proc.waitFor('serving');
    const identity = new (loadCsi().csi.v1.Identity)(`unix:${socket}`, grpc.credentials.createInsecure());
    const probe = await new Promise<{ ready: { value: boolean } }>((resolve, reject) =>
      (identity as unknown as { Probe: (r: object, cb: (e: Error | null, v: never) => void) => void }).Probe(
        {},
        (e, v) => (e ? reject(e) : resolve(v)),
      ),
    );
    identity.close();
    expect(probe.ready.value).toBe(false);
    expect(proc.logged('caches synced')).toBe(false);
    // not ready is still alive: the livenessprobe sidecar would fail it, but a liveness restart
    // cannot make an unreachable apiserver answer, and on a loaded node (the nodes tier) it kept the
    // controller restarting before its first list ever completed
    const health = await fetch(`http://127.0.0.1:${proc.lines('serving')[0]?.metricsPort}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    expect(await proc.stop()).toBe(0);
  });

  it('refuses a missing socket flag and an unknown state backend with exit 2', () => {
    expect(run('controller').status).toBe(2);
    const r = run('controller', '--csi-socket', '/tmp/x.sock', '--state', 'etcd');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--state etcd: use kube or memory/);
  });
});

describe('meshstor agent', () => {
  it('registers with kubelet through its registry, reports kubelet’s refusal on /healthz, leaves on SIGTERM', async () => {
    const grpc = await import('@grpc/grpc-js');
    const { loadRegistration } = await import('../../csi/registration.ts');
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-agent-'));
    const registry = join(dir, 'plugins_registry');
    mkdirSync(registry);
    const socket = join(dir, 'csi.sock');
    const proc = new MeshstorProcess([
      'agent',
      '--host',
      'simulated',
      '--state',
      'memory',
      '--node',
      'reg-n1',
      '--csi-socket',
      socket,
      '--registration-dir',
      registry,
      '--csi-endpoint-on-host',
      '/var/lib/kubelet/plugins/meshstor.io/csi.sock',
      '--metrics-port',
      '0',
    ]);
    try {
      await proc.waitFor('serving');
      const regSocket = join(registry, 'meshstor.io-reg.sock');
      expect(proc.logged('serving', { registration: regSocket })).toBe(true);
      const base = `http://127.0.0.1:${proc.lines('serving')[0]?.metricsPort}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);

      // kubelet's plugin watcher: GetInfo, then its verdict
      const client = new (loadRegistration().pluginregistration.Registration)(
        `unix:${regSocket}`,
        grpc.credentials.createInsecure(),
      ) as unknown as Record<string, (r: object, cb: (e: Error | null, v: never) => void) => void> &
        InstanceType<typeof grpc.Client>;
      const call = (m: string, r: object) =>
        new Promise<Record<string, unknown>>((resolve, reject) =>
          client[m]?.(r, (e, v) => (e ? reject(e) : resolve(v))),
        );
      expect(await call('GetInfo', {})).toEqual({
        type: 'CSIPlugin',
        name: 'meshstor.io',
        endpoint: '/var/lib/kubelet/plugins/meshstor.io/csi.sock',
        supported_versions: ['1.0.0'],
      });
      await call('NotifyRegistrationStatus', { plugin_registered: true, error: '' });
      expect(await (await fetch(`${base}/metrics`)).text()).toMatch(
        /^meshstor_kubelet_plugin_registered 1$/m,
      );
      await call('NotifyRegistrationStatus', { plugin_registered: false, error: 'version not supported' });
      const health = await fetch(`${base}/healthz`);
      expect([health.status, await health.text()]).toEqual([
        503,
        'kubelet refused to register the CSI plugin: version not supported\n',
      ]);
      expect(
        proc.logged('kubelet refused to register the CSI plugin', { error: 'version not supported' }),
      ).toBe(true);
      client.close();

      expect(await proc.stop()).toBe(0);
      // the socket is gone: kubelet deregisters the driver
      expect(existsSync(regSocket)).toBe(false);
    } finally {
      await proc.stop();
    }
  });
});
