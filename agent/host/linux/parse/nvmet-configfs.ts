// nvmet's configfs (/sys/kernel/config/nvmet): ports and the exports MeshStor reads back from it.
// nvmet.ts reads the attribute files as they are (untrimmed, undefined when absent, e.g. removed
// by a concurrent unexport); these turn them into the Host's ExportInfo.
import { NQN_PREFIX } from '../../names.ts';
import type { ExportInfo, ListenAddress } from '../../types.ts';

/** A port's address attributes: ports/<id>/addr_*. */
export interface PortFiles {
  id: string;
  trtype: string | undefined;
  traddr: string | undefined;
  trsvcid: string | undefined;
}

/** Where a port listens, or undefined when its attributes are gone (rmdir in progress). */
export function portListen(p: PortFiles): ListenAddress | undefined {
  const address = p.traddr?.trim();
  const port = p.trsvcid?.trim();
  return address !== undefined && port !== undefined ? { address, port: Number(port) } : undefined;
}

/** A tcp port listening on exactly this address and port. */
export function portServes(p: PortFiles, listen: ListenAddress): boolean {
  return (
    p.trtype?.trim() === 'tcp' &&
    p.traddr?.trim() === listen.address &&
    p.trsvcid?.trim() === String(listen.port)
  );
}

/** The id for a new port: one above the highest in use (ids are decimal directory names). */
export function nextPortId(ids: string[]): string {
  return String(ids.reduce((m, id) => Math.max(m, Number(id)), 0) + 1);
}

/** Subsystems MeshStor made (by NQN prefix), sorted. */
export function ourSubsystems(names: string[]): string[] {
  return names.filter((n) => n.startsWith(`${NQN_PREFIX}:`)).sort();
}

/** A subsystem's files: allowed_hosts/ (undefined once removed) and namespaces/1/device_path. */
export interface SubsystemFiles {
  nqn: string;
  allowedHosts: string[] | undefined;
  devicePath: string | undefined;
}

/**
 * The export, or undefined when the subsystem is being removed (its allowed_hosts is gone).
 * `listen`: the ports that link it.
 */
export function exportFrom(s: SubsystemFiles, linkedPorts: PortFiles[]): ExportInfo | undefined {
  if (!s.allowedHosts) return undefined;
  return {
    nqn: s.nqn,
    devicePath: s.devicePath?.trim() ?? '',
    listen: linkedPorts.map(portListen).filter((l): l is ListenAddress => l !== undefined),
    allowedHosts: [...s.allowedHosts].sort(),
  };
}
