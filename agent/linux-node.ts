// What `meshstor agent --host linux` does before it serves: this node's host NQN (created and
// persisted in /etc/nvme when absent), the kernel modules MeshStor needs (loaded if missing; what
// is still missing is reported, and staging is refused naming it), and the LinuxHost, whose
// commands are timed for the metrics.

import type { HostCommandObserver } from '../kube/metrics.ts';
import { type Exec, exec } from './host/exec.ts';
import { ensureKernelModules, type KernelModulesReport } from './host/kernel-modules.ts';
import { LinuxHost } from './host/linux.ts';
import { observedExec } from './host/observed-exec.ts';
import { ensureHostNqn, NVME_CONFIG_DIR } from './host-nqn.ts';

export interface LinuxNode {
  host: LinuxHost;
  hostNqn: string;
  /** Whether the host NQN (or host id) was created now. */
  createdIdentity: boolean;
  modules: KernelModulesReport;
}

export async function prepareLinuxNode(o: {
  nvmeDir?: string | undefined;
  observe?: HostCommandObserver | undefined;
  driveFilter?: ((id: string) => boolean) | undefined;
  signal?: AbortSignal | undefined;
}): Promise<LinuxNode> {
  const run: Exec = o.observe ? observedExec(exec, o.observe) : exec;
  const identity = await ensureHostNqn(o.nvmeDir ?? NVME_CONFIG_DIR);
  const modules = await ensureKernelModules({ exec: run, signal: o.signal });
  const host = new LinuxHost({ hostNqn: identity.hostNqn, exec: run, driveFilter: o.driveFilter });
  return {
    host,
    hostNqn: identity.hostNqn,
    createdIdentity: identity.created.hostNqn || identity.created.hostId,
    modules,
  };
}
