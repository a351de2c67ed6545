// What `meshstor agent --host linux` does before it serves: this node's host NQN (created and
// persisted in /etc/nvme when absent), the kernel modules MeshStor needs (loaded if missing; what
// is still missing is reported, and staging is refused naming it), which drives it may use (the
// admin's selectors, or by default only NVMe drives with no partition table or an empty one; every
// drive left alone is reported with why), and the LinuxHost over those drives, its commands timed
// for the metrics. Drives are chosen once, at start: a drive added later is taken after a restart.
import type { HostCommandObserver } from '../kube/metrics.ts';
import { type DriveSelection, parseDriveSelectors, selectDrives } from './drive-selection.ts';
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
  drives: DriveSelection;
}

export async function prepareLinuxNode(o: {
  nvmeDir?: string | undefined;
  /** `--drive` selectors (the only drives taken, when given). */
  drives?: readonly string[] | undefined;
  /** `--os-drive-tail` selectors (drives whose free space may be used beside partitions not ours). */
  osDriveTail?: readonly string[] | undefined;
  observe?: HostCommandObserver | undefined;
  signal?: AbortSignal | undefined;
}): Promise<LinuxNode> {
  // Bad selectors are refused before anything is read or written.
  const rules = {
    drives: parseDriveSelectors(o.drives ?? []),
    osDriveTail: parseDriveSelectors(o.osDriveTail ?? []),
  };
  const run: Exec = o.observe ? observedExec(exec, o.observe) : exec;
  const identity = await ensureHostNqn(o.nvmeDir ?? NVME_CONFIG_DIR);
  const modules = await ensureKernelModules({ exec: run, signal: o.signal });
  const probe = new LinuxHost({ hostNqn: identity.hostNqn, exec: run, driveFilter: () => false });
  const drives = selectDrives(await probe.driveCandidates({ signal: o.signal }), rules);
  const managed = new Set(drives.managed.map((d) => d.id));
  const host = new LinuxHost({ hostNqn: identity.hostNqn, exec: run, driveFilter: (id) => managed.has(id) });
  return {
    host,
    hostNqn: identity.hostNqn,
    createdIdentity: identity.created.hostNqn || identity.created.hostId,
    modules,
    drives,
  };
}
