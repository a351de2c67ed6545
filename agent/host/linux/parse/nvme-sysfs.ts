// The NVMe host side in sysfs: controllers (/sys/class/nvme/nvmeN/{subsysnqn,hostnqn,transport}) and
// namespace block devices (/sys/block/nvmeXnY/device/{transport,serial,subsysnqn}, wwid). The
// readers keep the files as they are (untrimmed; qemu pads a serial with spaces).
/** nvme<subsys>n<ns>: a namespace's block device. nvmeXcYnZ are a multipath head's hidden paths. */
export const isNamespaceBlock = (name: string): boolean => /^nvme\d+n\d+$/.test(name);

export interface ControllerFiles {
  name: string;
  subsysnqn: string | undefined;
  hostnqn: string | undefined;
}

/** Controllers of this host (host NQN) connected to the subsystem: names like nvme3. */
export function ownControllers(ctrls: ControllerFiles[], subsystemNqn: string, hostNqn: string): string[] {
  return ctrls
    .filter((c) => c.subsysnqn?.trim() === subsystemNqn && c.hostnqn?.trim() === hostNqn)
    .map((c) => c.name);
}

export interface NamespaceFiles {
  /** Block device name (nvme1n1). */
  block: string;
  /** device/transport: pcie, tcp, loop, ... */
  transport: string | undefined;
  serial: string | undefined;
  wwid: string | undefined;
  /** device/subsysnqn: a single path's controller and a multipath head's subsystem both carry it. */
  subsysnqn: string | undefined;
}

/** The block device of a subsystem's namespace, by NQN (never guessed from probe order). */
export function namespaceDevice(blocks: NamespaceFiles[], subsystemNqn: string): string | undefined {
  const b = [...blocks]
    .sort((x, y) => (x.block < y.block ? -1 : 1))
    .find((x) => isNamespaceBlock(x.block) && x.subsysnqn?.trim() === subsystemNqn);
  return b ? `/dev/${b.block}` : undefined;
}

/**
 * The stable id of a local drive: its serial (or WWID without one); undefined for a fabrics
 * namespace (tcp, loop: a remote replica, not this node's drive).
 */
export function localDriveId(b: NamespaceFiles): string | undefined {
  if (!isNamespaceBlock(b.block) || b.transport?.trim() !== 'pcie') return undefined;
  return b.serial?.trim() || b.wwid?.trim() || undefined;
}
