import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CsiRpcMetrics,
  HostCommandMetrics,
  listeningPort,
  metricsRegistry,
  ResyncMetrics,
  serveMetrics,
  type VolumeCensus,
  VolumeMetrics,
} from '../metrics.ts';

/** The value of one sample line (name{labels} value) of the text format, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics on their own registry', () => {
  it('CSI RPC durations by method and code', async () => {
    const reg = metricsRegistry('controller');
    const csi = new CsiRpcMetrics(reg);
    csi.observe('CreateVolume', 'OK', 0.2);
    csi.observe('CreateVolume', 'OK', 3);
    csi.observe('NodeStageVolume', 'FAILED_PRECONDITION', 0.004);
    const text = await reg.metrics();
    expect(text).toContain('# TYPE meshstor_csi_rpc_duration_seconds histogram');
    expect(sample(text, 'meshstor_csi_rpc_duration_seconds_count{method="CreateVolume",code="OK"}')).toBe(2);
    expect(
      sample(text, 'meshstor_csi_rpc_duration_seconds_sum{method="CreateVolume",code="OK"}'),
    ).toBeCloseTo(3.2);
    expect(
      sample(text, 'meshstor_csi_rpc_duration_seconds_bucket{le="0.25",method="CreateVolume",code="OK"}'),
    ).toBe(1);
    expect(
      sample(
        text,
        'meshstor_csi_rpc_duration_seconds_bucket{le="0.005",method="NodeStageVolume",code="FAILED_PRECONDITION"}',
      ),
    ).toBe(1);
    // no process metrics unless asked for
    expect(text).not.toContain('process_cpu');
  });

  it('host command durations, and failures by reason', async () => {
    const reg = metricsRegistry('agent');
    const host = new HostCommandMetrics(reg);
    host.observe('sgdisk', 1.1);
    host.observe('mdadm', 0.3, 'exit');
    host.observe('mdadm', 60, 'timeout');
    const text = await reg.metrics();
    expect(sample(text, 'meshstor_host_command_duration_seconds_count{command="mdadm"}')).toBe(2);
    expect(sample(text, 'meshstor_host_command_duration_seconds_count{command="sgdisk"}')).toBe(1);
    expect(sample(text, 'meshstor_host_command_failures_total{command="mdadm",reason="exit"}')).toBe(1);
    expect(sample(text, 'meshstor_host_command_failures_total{command="mdadm",reason="timeout"}')).toBe(1);
    expect(text).not.toContain('meshstor_host_command_failures_total{command="sgdisk"');
  });

  it('volume gauges read the census at scrape time; a state that is gone is dropped', async () => {
    const reg = metricsRegistry('controller');
    let census: VolumeCensus | undefined;
    new VolumeMetrics(reg, () => census);
    expect(await reg.metrics()).not.toMatch(/^meshstor_volumes\{/m); // nothing known yet: no made-up zeros
    census = {
      volumes: { InSync: 3, Relocating: 1, Ghost: 1 },
      members: { InSync: 7, Syncing: 1 },
      relocations: 1,
      relocationBytesRemaining: 5e9,
    };
    let text = await reg.metrics();
    expect(sample(text, 'meshstor_volumes{state="InSync"}')).toBe(3);
    expect(sample(text, 'meshstor_volumes{state="Ghost"}')).toBe(1);
    expect(sample(text, 'meshstor_members{state="Syncing"}')).toBe(1);
    expect(sample(text, 'meshstor_relocations_in_progress')).toBe(1);
    expect(sample(text, 'meshstor_relocation_bytes_remaining')).toBe(5e9);
    census = { volumes: { InSync: 4 }, members: { InSync: 8 }, relocations: 0, relocationBytesRemaining: 0 };
    text = await reg.metrics();
    expect(sample(text, 'meshstor_volumes{state="Ghost"}')).toBeUndefined();
    expect(sample(text, 'meshstor_relocations_in_progress')).toBe(0);
  });

  it('resync: in progress, bytes left, bytes copied never counted backwards, rate between samples', async () => {
    const reg = metricsRegistry('agent');
    const r = new ResyncMetrics(reg);
    const GB = 1e9;
    r.sample([{ array: 'ms-v1', action: 'recover', progress: 0.1, sizeBytes: 10 * GB }], 0);
    r.sample(
      [
        { array: 'ms-v1', action: 'recover', progress: 0.3, sizeBytes: 10 * GB },
        { array: 'ms-v2', action: 'resync', progress: 0.5, sizeBytes: 2 * GB },
      ],
      10_000,
    );
    let text = await reg.metrics();
    expect(sample(text, 'meshstor_resyncs_in_progress')).toBe(2);
    expect(sample(text, 'meshstor_resync_bytes_remaining')).toBe(7 * GB + 1 * GB);
    expect(sample(text, 'meshstor_resync_bytes_total')).toBe(2 * GB); // v2 is new: counted from here
    expect(sample(text, 'meshstor_resync_bytes_per_second')).toBe(0.2 * GB);
    // v1 started over (a member re-added): nothing counted backwards; v2 finished
    r.sample([{ array: 'ms-v1', action: 'recover', progress: 0.05, sizeBytes: 10 * GB }], 20_000);
    text = await reg.metrics();
    expect(sample(text, 'meshstor_resync_bytes_total')).toBe(2 * GB);
    expect(sample(text, 'meshstor_resyncs_in_progress')).toBe(1);
    expect(sample(text, 'meshstor_resync_bytes_per_second')).toBe(0);
  });

  it('process metrics carry the component prefix when asked for', async () => {
    const text = await metricsRegistry('agent', true).metrics();
    expect(text).toContain('meshstor_agent_process_cpu_seconds_total');
  });
});

describe('serveMetrics', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => server?.close(r));
    server = undefined;
  });

  it('serves /metrics and /healthz, refuses the rest', async () => {
    const reg = metricsRegistry('agent');
    new CsiRpcMetrics(reg).observe('NodePublishVolume', 'OK', 0.01);
    let unhealthy: string | undefined;
    server = await serveMetrics(0, reg, { host: '127.0.0.1', unhealthy: () => unhealthy });
    const base = `http://127.0.0.1:${listeningPort(server)}`;
    const m = await fetch(`${base}/metrics`);
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(
      sample(await m.text(), 'meshstor_csi_rpc_duration_seconds_count{method="NodePublishVolume",code="OK"}'),
    ).toBe(1);
    const h = await fetch(`${base}/healthz`);
    expect([h.status, await h.text()]).toEqual([200, 'ok\n']);
    unhealthy = 'host commands stuck';
    const h2 = await fetch(`${base}/healthz`);
    expect([h2.status, await h2.text()]).toEqual([503, 'host commands stuck\n']);
    const nf = await fetch(`${base}/nope`);
    expect(nf.status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('/healthz awaits an asynchronous check, and a check that throws is unhealthy', async () => {
    let check: () => Promise<string | undefined> = async () => undefined;
    server = await serveMetrics(0, metricsRegistry('agent'), { host: '127.0.0.1', unhealthy: () => check() });
    const url = `http://127.0.0.1:${listeningPort(server)}/healthz`;
    expect((await fetch(url)).status).toBe(200);
    check = async () => 'the CSI driver does not answer Probe';
    const slow = await fetch(url);
    expect([slow.status, await slow.text()]).toEqual([503, 'the CSI driver does not answer Probe\n']);
    check = () => Promise.reject(new Error('boom'));
    const thrown = await fetch(url);
    expect([thrown.status, await thrown.text()]).toEqual([503, 'the health check failed: boom\n']);
  });

  it('a port in use is an error, not a silent non-start', async () => {
    const reg = metricsRegistry('agent');
    server = await serveMetrics(0, reg, { host: '127.0.0.1' });
    await expect(serveMetrics(listeningPort(server), reg, { host: '127.0.0.1' })).rejects.toThrow(
      /EADDRINUSE/,
    );
  });
});
