// The host side of the kernel tier's agent boot: the real control plane (etcd + kube-apiserver of
// the cluster tier, the CRDs applied), the guest's Node object (its InternalIP and zone are what
// the agent must take its identity from), and `meshstor controller --state kube` on the host. The
// guest (guest/agent-binary.ts) runs the real `meshstor agent --host linux` on its drives and
// reaches the apiserver at 10.0.2.2 (qemu's user network; the serving certificate names that
// address). Between the guest's cases the host creates and deletes the volume through the
// controller's CSI socket and checks, through the apiserver, what the agent published.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountCap } from '../../csi/test/requests.ts';
import { NODE_KEY } from '../../csi/topology.ts';
import type { MeshStorNode, MeshStorVolume } from '../../kube/crds.ts';
import { MiB } from '../../placement/units.ts';
import { missingBinaries } from '../cluster/binaries.ts';
import { type ControlPlane, startControlPlane } from '../cluster/control-plane.ts';
import { applyCrds, Kube } from '../cluster/kube.ts';
import { type CsiClient, csiClient } from '../support/csi-client.ts';
import { MeshstorProcess } from '../support/meshstor-process.ts';
import { agentDrives } from './drives.ts';
import { AGENT_NODE, AGENT_VOLUME, GUEST_KUBECONFIG, HOST_FROM_GUEST } from './guest/agent-fixture.ts';
import type { BootOptions } from './harness.ts';

/**
 * What `meshstor agent` loads from node_modules (cmd/meshstor.ts and what the agent subcommand
 * imports); the harness adds their dependencies. Measured: the closure is ~120 packages, 42 MB of
 * JavaScript and JSON.
 */
export const AGENT_PACKAGES = [
  '@grpc/grpc-js',
  '@grpc/proto-loader',
  '@kubernetes/client-node',
  'pino',
  'prom-client',
  'yaml',
  'zod',
];

/** The volume's size: XFS refuses filesystems under 300 MiB. */
const VOLUME_BYTES = 512 * MiB;

const b64 = (file: string) => readFileSync(file).toString('base64');

export class AgentBootHost {
  cp: ControlPlane | undefined;
  kube: Kube | undefined;
  private controller: MeshstorProcess | undefined;
  private client: CsiClient | undefined;
  /** Host wall ms of each step the host took (printed by `summary()`). */
  readonly timings: Record<string, number> = {};

  /** Starts the control plane and the controller, creates the Node; resolves to the guest's boot options. */
  async start(work: string): Promise<Omit<BootOptions, 'timeoutMs' | 'consoleLog'>> {
    const missing = missingBinaries();
    if (missing.length > 0)
      throw new Error(`the agent boot needs ${missing.join(', ')}: run npm run setup:cluster`);
    let t0 = Date.now();
    // keep: the logs are copied out by stop() when a test failed; the directory goes either way
    this.cp = await startControlPlane({ extraSans: [`IP:${HOST_FROM_GUEST}`], keep: true });
    await applyCrds(this.cp.kubeconfig);
    this.kube = new Kube(this.cp.kubeconfig);
    await this.kube.createNode(AGENT_NODE.name, { zone: AGENT_NODE.zone, internalIp: AGENT_NODE.internalIp });
    this.timings['control plane up, CRDs, Node'] = Date.now() - t0;
    t0 = Date.now();
    const socket = join(mkdtempSync(join(tmpdir(), 'meshstor-kagent-ctl-')), 'csi.sock');
    this.controller = MeshstorProcess.kubeController(socket, this.cp.kubeconfig);
    await this.controller.waitFor('caches synced', 120_000);
    this.client = csiClient(socket, 'Controller');
    this.timings['meshstor controller ready'] = Date.now() - t0;
    return {
      suite: 'agent',
      drives: agentDrives(join(work, 'agent')),
      network: true,
      packages: AGENT_PACKAGES,
      files: { [GUEST_KUBECONFIG]: this.guestKubeconfig(this.cp) },
    };
  }

  /** The admin's credentials inline, the apiserver at the host's address on qemu's user network. */
  private guestKubeconfig(cp: ControlPlane): string {
    const pki = join(cp.dir, 'pki');
    const port = new URL(cp.apiUrl).port;
    return `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://${HOST_FROM_GUEST}:${port}", certificate-authority-data: "${b64(join(pki, 'ca.crt'))}"}
users:
- name: admin
  user: {client-certificate-data: "${b64(join(pki, 'admin.crt'))}", client-key-data: "${b64(join(pki, 'admin.key'))}"}
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`;
  }

  private k(): Kube {
    if (!this.kube) throw new Error('the control plane did not start');
    return this.kube;
  }

  node(): Promise<MeshStorNode> {
    return this.k().getMeshStorNode(AGENT_NODE.name);
  }

  volume(): Promise<MeshStorVolume> {
    return this.k().getMeshStorVolume(AGENT_VOLUME);
  }

  /** Whether the MeshStorVolume is gone from the apiserver (its finalizer released). */
  async volumeGone(): Promise<boolean> {
    try {
      await this.volume();
      return false;
    } catch (e) {
      if ((e as { code?: number }).code === 404) return true;
      throw e;
    }
  }

  /** CreateVolume through the controller's CSI socket, as the external-provisioner calls it. */
  async createVolume(): Promise<unknown> {
    const t0 = Date.now();
    const res = await this.csi('CreateVolume', {
      name: AGENT_VOLUME,
      capacity_range: { required_bytes: String(VOLUME_BYTES), limit_bytes: '0' },
      volume_capabilities: [mountCap],
      parameters: { replicaCount: '1' },
      accessibility_requirements: {
        requisite: [{ segments: { [NODE_KEY]: AGENT_NODE.name } }],
        preferred: [{ segments: { [NODE_KEY]: AGENT_NODE.name } }],
      },
    });
    this.timings.CreateVolume = Date.now() - t0;
    return res;
  }

  async deleteVolume(): Promise<void> {
    const t0 = Date.now();
    await this.csi('DeleteVolume', { volume_id: AGENT_VOLUME });
    this.timings.DeleteVolume = Date.now() - t0;
  }

  private csi(method: string, request: object): Promise<unknown> {
    if (!this.client) throw new Error('the controller did not start');
    return this.client.call(method, request);
  }

  /**
   * Stops the controller and the control plane. With `keepIn`, their logs go there
   * (agent-controller.log, agent-control-plane/); the control plane's directory is removed.
   */
  async stop(keepIn: string | undefined): Promise<void> {
    this.client?.close();
    const code = await this.controller?.stop();
    if (keepIn && this.controller)
      writeFileSync(join(keepIn, 'agent-controller.log'), `${this.controller.log}\n(exit ${code})\n`);
    await this.cp?.stop();
    if (this.cp) {
      if (keepIn) cpSync(this.cp.logs, join(keepIn, 'agent-control-plane'), { recursive: true });
      rmSync(this.cp.dir, { recursive: true, force: true });
    }
  }

  summary(): string {
    const steps = Object.entries(this.timings).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`);
    return `[kernel] agent boot, host side: ${steps.join(', ')}`;
  }
}
