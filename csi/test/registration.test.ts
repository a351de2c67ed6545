// The agent's registration with kubelet (csi/registration.ts): a gRPC client playing kubelet's plugin
// watcher calls GetInfo and NotifyRegistrationStatus over the registration socket; kubelet's verdict
// becomes the state /healthz reads; a stale socket is replaced and the socket goes away on stop.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  KubeletRegistration,
  loadRegistration,
  type PluginInfo,
  REGISTRATION_SOCKET,
  registrationTarget,
} from '../registration.ts';

type Unary = (request: object, callback: (e: grpc.ServiceError | null, v: unknown) => void) => void;

/** What kubelet's plugin watcher does with a socket it found: GetInfo, then NotifyRegistrationStatus. */
function kubelet(socket: string) {
  const client = new (loadRegistration().pluginregistration.Registration)(
    `unix:${socket}`,
    grpc.credentials.createInsecure(),
  ) as unknown as Record<'GetInfo' | 'NotifyRegistrationStatus', Unary> & grpc.Client;
  const call = (method: 'GetInfo' | 'NotifyRegistrationStatus', request: object) =>
    new Promise<unknown>((resolve, reject) =>
      client[method](request, (e, v) => (e ? reject(e) : resolve(v))),
    );
  return {
    getInfo: () => call('GetInfo', {}) as Promise<PluginInfo>,
    notify: (plugin_registered: boolean, error = '') =>
      call('NotifyRegistrationStatus', { plugin_registered, error }),
    close: () => client.close(),
  };
}

describe('registrationTarget', () => {
  const csiSocket = '/csi/csi.sock';
  it('derives the registry and the host endpoint from --kubelet-dir', () => {
    expect(registrationTarget({ kubeletDir: '/var/lib/kubelet', csiSocket })).toEqual({
      dir: '/var/lib/kubelet/plugins_registry',
      endpoint: '/var/lib/kubelet/plugins/meshstor.io/csi.sock',
      explicit: false,
    });
  });
  it('takes the flags as given; an empty --registration-dir is off, as is no kubelet at all', () => {
    expect(
      registrationTarget({
        kubeletDir: '/k',
        registrationDir: '/registration',
        csiEndpointOnHost: '/k/plugins/x/csi.sock',
        csiSocket,
      }),
    ).toEqual({ dir: '/registration', endpoint: '/k/plugins/x/csi.sock', explicit: true });
    expect(registrationTarget({ kubeletDir: '/k', registrationDir: '', csiSocket })).toBeUndefined();
    expect(registrationTarget({ csiSocket })).toBeUndefined();
    // kubelet on this host without a kubelet dir: it reaches the CSI socket where we serve it
    expect(registrationTarget({ registrationDir: '/r', csiSocket })?.endpoint).toBe(csiSocket);
  });
});

describe('KubeletRegistration', () => {
  let registration: KubeletRegistration | undefined;
  afterEach(async () => {
    await registration?.stop();
    registration = undefined;
  });

  it('answers kubelet’s GetInfo, follows NotifyRegistrationStatus, and leaves on stop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-reg-'));
    const heard: string[] = [];
    registration = await KubeletRegistration.serve({
      dir,
      endpoint: '/var/lib/kubelet/plugins/meshstor.io/csi.sock',
      onChange: (s) => heard.push(s.state),
    });
    const socket = join(dir, REGISTRATION_SOCKET);
    expect(registration.socket).toBe(socket);
    expect(lstatSync(socket).isSocket()).toBe(true);
    expect(registration.state()).toEqual({ state: 'waiting' });
    expect(registration.problem()).toBeUndefined(); // a slow kubelet is no reason to restart

    const k = kubelet(socket);
    try {
      expect(await k.getInfo()).toEqual({
        type: 'CSIPlugin',
        name: 'meshstor.io',
        endpoint: '/var/lib/kubelet/plugins/meshstor.io/csi.sock',
        supported_versions: ['1.0.0'],
      });
      await k.notify(false, 'error dialing /var/lib/kubelet/plugins/meshstor.io/csi.sock');
      expect(registration.state()).toEqual({
        state: 'refused',
        error: 'error dialing /var/lib/kubelet/plugins/meshstor.io/csi.sock',
      });
      expect(registration.problem()).toMatch(/kubelet refused to register the CSI plugin: error dialing/);
      // kubelet retries; a later success clears the refusal
      await k.notify(true);
      expect(registration.state()).toEqual({ state: 'registered' });
      expect(registration.problem()).toBeUndefined();
      expect(heard).toEqual(['refused', 'registered']);
    } finally {
      k.close();
    }

    await registration.stop();
    registration = undefined;
    expect(existsSync(socket)).toBe(false);
    const late = kubelet(socket);
    await expect(late.getInfo()).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    late.close();
  });

  it('reports a registration socket that vanished (kubelet no longer knows the driver)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-reg-'));
    registration = await KubeletRegistration.serve({ dir, endpoint: '/e.sock' });
    unlinkSync(registration.socket);
    expect(registration.problem()).toMatch(/registration socket .* is gone/);
  });

  it('replaces a stale socket left by a killed agent, refuses any other file, needs the directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshstor-reg-'));
    const socket = join(dir, REGISTRATION_SOCKET);
    // a process that listened there and was killed leaves its socket file behind
    const holder = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`,
    ]);
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(lstatSync(socket).isSocket()).toBe(true);
    registration = await KubeletRegistration.serve({ dir, endpoint: '/e.sock' });
    const k = kubelet(socket);
    expect((await k.getInfo()).name).toBe('meshstor.io');
    k.close();
    await registration.stop();
    registration = undefined;

    writeFileSync(socket, 'not a socket');
    await expect(KubeletRegistration.serve({ dir, endpoint: '/e.sock' })).rejects.toThrow(
      /exists and is not a socket/,
    );
    expect(existsSync(socket)).toBe(true); // left alone
    await expect(
      KubeletRegistration.serve({ dir: join(dir, 'missing'), endpoint: '/e.sock' }),
    ).rejects.toThrow(/ENOENT/);
  });
});
