// SIGTERM always stops the process: a stop that hangs (work Node cannot cancel, such as a
// file-system call looping in the kernel, keeps the event loop alive) ends at the grace period, a
// second signal ends it at once, and `meshstor agent` answers a hostile NodePublish under /proc
// instead of hanging on it, then stops on SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { loadCsi } from '../../csi/server.ts';
import { MeshstorProcess } from '../../test/support/meshstor-process.ts';

const CLI_MODULE = join(import.meta.dirname, '..', 'cli.ts');

/**
 * A process that serves until SIGTERM and then never finishes stopping: a ref'd timer stands for
 * the server before the signal and for the stuck work after it.
 */
function stuckStopper(exitAfterMs: number) {
  const script = `
    const { untilStopSignal } = await import(${JSON.stringify(CLI_MODULE)});
    setInterval(() => {}, 1000);
    const stopping = untilStopSignal({ exitAfterMs: ${exitAfterMs} });
    console.log('ready');
    await stopping;
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => {
    err += String(d);
  });
  const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => resolve({ code, at: Date.now() })),
  );
  const outcome = (withinMs: number) =>
    Promise.race([
      exited,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), withinMs)).then(() => {
        child.kill('SIGKILL');
        return undefined;
      }),
    ]);
  return { child, ready, outcome, stderr: () => err };
}

type Unary = (
  req: object,
  opts: grpc.CallOptions,
  cb: (e: grpc.ServiceError | null, r: unknown) => void,
) => void;

function call(client: grpc.Client, rpc: string, req: object, timeoutMs = 10_000) {
  const fn = (client as unknown as Record<string, Unary>)[rpc] as Unary;
  return new Promise<{ code: number; details?: string }>((resolve) =>
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (e) =>
      resolve(e ? { code: e.code, details: e.details } : { code: 0 }),
    ),
  );
}

describe('stopping', () => {
  it('a stop that hangs ends at the grace period', async () => {
    const p = stuckStopper(300);
    await p.ready;
    const sent = Date.now();
    p.child.kill('SIGTERM');
    const r = await p.outcome(10_000);
    expect(r, 'the process was still running 10 s after SIGTERM').toBeDefined();
    expect(r?.code).toBe(1);
    expect(p.stderr()).toMatch(/still stopping 300 ms after SIGTERM/);
    expect((r?.at ?? 0) - sent).toBeLessThan(10_000);
  });

  it('a second SIGTERM ends a hanging stop at once', async () => {
    const p = stuckStopper(60_000);
    await p.ready;
    p.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    p.child.kill('SIGTERM');
    const r = await p.outcome(10_000);
    expect(r?.code).toBe(1);
    expect(p.stderr()).toMatch(/second SIGTERM/);
  });

  it('meshstor agent refuses a NodePublish under /proc (kubelet dir by default) and stops on SIGTERM', async () => {
    const socket = join(mkdtempSync(join(tmpdir(), 'meshstor-stop-')), 'csi.sock');
    const agent = new MeshstorProcess([
      'agent',
      '--host',
      'simulated',
      '--state',
      'memory',
      '--with-controller',
      '--node',
      'n1',
      '--csi-socket',
      socket,
      '--drives',
      '4GiB',
    ]);
    try {
      await agent.waitFor('serving');
      const csi = loadCsi().csi.v1;
      const creds = grpc.credentials.createInsecure();
      const ctl = new csi.Controller(`unix:${socket}`, creds);
      const node = new csi.Node(`unix:${socket}`, creds);
      const cap = { mount: { fs_type: 'xfs' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
      const created = await call(ctl, 'CreateVolume', {
        name: 'v1',
        capacity_range: { required_bytes: String(1 << 30) },
        volume_capabilities: [cap],
      });
      expect(created.code).toBe(grpc.status.OK);
      const staging = '/var/lib/kubelet/plugins/kubernetes.io/csi/meshstor.io/v1/globalmount';
      const staged = await call(node, 'NodeStageVolume', {
        volume_id: 'v1',
        staging_target_path: staging,
        volume_capability: cap,
      });
      expect(staged.code).toBe(grpc.status.OK);
      const published = await call(node, 'NodePublishVolume', {
        volume_id: 'v1',
        staging_target_path: staging,
        target_path: '/proc/meshstor-test/pods/x/mount',
        volume_capability: cap,
      });
      expect(published.code).toBe(grpc.status.INVALID_ARGUMENT);
      // the volume's lock is free: another call on it is answered
      const other = await call(node, 'NodeUnpublishVolume', {
        volume_id: 'v1',
        target_path: '/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/v1/mount',
      });
      expect(other.code).toBe(grpc.status.OK);
      ctl.close();
      node.close();
    } finally {
      const stopped = await Promise.race([
        agent.stop(),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000)),
      ]);
      if (stopped === 'hung') agent.proc.kill('SIGKILL');
      expect(stopped).toBe(0);
    }
  });
});
