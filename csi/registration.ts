// The agent registers its CSI socket with kubelet itself (what node-driver-registrar does for other
// drivers): kubelet's plugin watcher finds `<plugins_registry>/meshstor.io-reg.sock`, calls GetInfo
// (type CSIPlugin, the driver name, the CSI socket as kubelet reaches it on the host, the CSI
// versions), dials that socket for NodeGetInfo, and tells the result with NotifyRegistrationStatus.
// Removing the socket is how a plugin leaves: kubelet notices and deregisters the driver.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from '../kube/log.ts';
import { DRIVER_NAME } from './identity.ts';
import { LOADER_OPTIONS, shutdownServer } from './server.ts';
import { listenUnix, removeSocket } from './socket.ts';

export const REGISTRATION_PROTO_PATH = join(import.meta.dirname, 'proto', 'pluginregistration.proto');

/** The registration socket's name in kubelet's plugin registry (`<plugin name>-reg.sock`, as kubelet recommends). */
export const REGISTRATION_SOCKET = `${DRIVER_NAME}-reg.sock`;

/** The CSI versions the driver serves, as kubelet wants them listed. */
export const CSI_VERSIONS = ['1.0.0'] as const;

/** What kubelet has said about the registration. */
export type RegistrationState =
  | { state: 'waiting' } // kubelet has not called NotifyRegistrationStatus yet
  | { state: 'registered' }
  | { state: 'refused'; error: string };

export interface PluginInfo {
  type: string;
  name: string;
  endpoint: string;
  supported_versions: string[];
}

interface RegistrationPackage {
  pluginregistration: { Registration: grpc.ServiceClientConstructor };
}

export function loadRegistration(): RegistrationPackage {
  // The loaded definition is untyped by nature; RegistrationPackage names the one service.
  return grpc.loadPackageDefinition(
    protoLoader.loadSync(REGISTRATION_PROTO_PATH, LOADER_OPTIONS),
  ) as unknown as RegistrationPackage;
}

/** The flags that decide where the agent registers (cmd/agent.ts passes its config). */
export interface RegistrationFlags {
  kubeletDir?: string | undefined;
  /** Explicit; '' turns registration off. */
  registrationDir?: string | undefined;
  csiEndpointOnHost?: string | undefined;
  /** The CSI socket as this process serves it. */
  csiSocket: string;
}

export interface RegistrationTarget {
  /** The plugin registry directory as this process sees it. */
  dir: string;
  /** The CSI socket as kubelet reaches it on the host. */
  endpoint: string;
  /** Given by flag (a missing directory is an error) rather than derived from --kubelet-dir. */
  explicit: boolean;
}

/**
 * Where to register: `--registration-dir` when given ('' is off), else `<kubelet-dir>/plugins_registry`;
 * nowhere without either (no kubelet to tell). The endpoint: `--csi-endpoint-on-host`, else
 * `<kubelet-dir>/plugins/meshstor.io/csi.sock`, else the CSI socket itself (kubelet on this host).
 */
export function registrationTarget(flags: RegistrationFlags): RegistrationTarget | undefined {
  const { kubeletDir, registrationDir } = flags;
  if (registrationDir === '') return undefined;
  const dir = registrationDir ?? (kubeletDir ? join(kubeletDir, 'plugins_registry') : undefined);
  if (dir === undefined) return undefined;
  const endpoint =
    flags.csiEndpointOnHost ??
    (kubeletDir ? join(kubeletDir, 'plugins', DRIVER_NAME, 'csi.sock') : flags.csiSocket);
  return { dir, endpoint, explicit: registrationDir !== undefined };
}

export interface RegistrationOptions {
  dir: string;
  endpoint: string;
  log?: Logger | undefined;
  /** Hears every change of state (the metrics). */
  onChange?: ((state: RegistrationState) => void) | undefined;
}

/** The registration socket being served: kubelet's verdict, and the way out. */
export class KubeletRegistration {
  readonly socket: string;
  readonly info: PluginInfo;
  private current: RegistrationState = { state: 'waiting' };
  private readonly server: grpc.Server;
  private readonly opts: RegistrationOptions;

  private constructor(server: grpc.Server, socket: string, opts: RegistrationOptions) {
    this.server = server;
    this.socket = socket;
    this.opts = opts;
    this.info = {
      type: 'CSIPlugin',
      name: DRIVER_NAME,
      endpoint: opts.endpoint,
      supported_versions: [...CSI_VERSIONS],
    };
  }

  /** Serves the registration socket in `opts.dir` (which must exist: kubelet owns it), replacing a stale one. */
  static async serve(opts: RegistrationOptions): Promise<KubeletRegistration> {
    const socket = join(opts.dir, REGISTRATION_SOCKET);
    if (!statSync(opts.dir).isDirectory()) throw new Error(`${opts.dir} is not a directory`);
    const server = new grpc.Server();
    const registration = new KubeletRegistration(server, socket, opts);
    server.addService(loadRegistration().pluginregistration.Registration.service, {
      GetInfo: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<PluginInfo>) => {
        opts.log?.info(registration.info, 'kubelet asked for the plugin info');
        callback(null, registration.info);
      },
      NotifyRegistrationStatus: (
        call: grpc.ServerUnaryCall<{ plugin_registered: boolean; error: string }, unknown>,
        callback: grpc.sendUnaryData<object>,
      ) => {
        registration.heard(call.request.plugin_registered, call.request.error);
        callback(null, {});
      },
    });
    await listenUnix(server, socket);
    opts.log?.info({ socket, endpoint: opts.endpoint }, 'waiting for kubelet to register the CSI plugin');
    return registration;
  }

  state(): RegistrationState {
    return this.current;
  }

  /**
   * Why this agent is not usable by kubelet, for /healthz: kubelet refused the plugin, or the
   * registration socket is gone (kubelet then no longer knows the driver; a restart serves it again).
   * Waiting for kubelet is not a problem: kubelet may be slow or restarting.
   */
  problem(): string | undefined {
    if (this.current.state === 'refused')
      return `kubelet refused to register the CSI plugin: ${this.current.error}`;
    if (!existsSync(this.socket)) return `the kubelet registration socket ${this.socket} is gone`;
    return undefined;
  }

  /** Leaves kubelet: the socket goes first (kubelet deregisters the driver), then the server. */
  async stop(): Promise<void> {
    removeSocket(this.socket);
    await shutdownServer(this.server, 1_000);
  }

  private heard(registered: boolean, error: string): void {
    const { log, endpoint } = this.opts;
    if (registered) {
      this.current = { state: 'registered' };
      log?.info({ endpoint }, 'kubelet registered the CSI plugin');
    } else {
      const reason = error || 'no reason given';
      this.current = { state: 'refused', error: reason };
      log?.error({ error: reason, endpoint }, 'kubelet refused to register the CSI plugin');
    }
    this.opts.onChange?.(this.current);
  }
}
