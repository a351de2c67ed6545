// MeshStorNode and MeshStorVolume objects for tests of every folder that reads them.
import type { MeshStorNode, MeshStorVolume } from '../../kube/crds.ts';
import { GiB, MiB } from '../../placement/units.ts';

export function msNode(
  name: string,
  opts: { driveBytes?: number; ready?: boolean; heartbeat?: number; zone?: string; drives?: number } = {},
): MeshStorNode {
  const size = opts.driveBytes ?? 1024 * GiB;
  return {
    apiVersion: 'meshstor.io/v1alpha1',
    kind: 'MeshStorNode',
    metadata: { name },
    spec: { nodeName: name, topology: opts.zone ? { zone: opts.zone } : {} },
    status: {
      heartbeatTime: new Date(opts.heartbeat ?? 1_000_000).toISOString(),
      drives: Array.from({ length: opts.drives ?? 1 }, (_, i) => ({
        id: `nvme${i}`,
        sizeBytes: size,
        logicalBlockSize: 512 as const,
        gptSlots: 128,
      })),
      conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True', reason: 'AgentUp' }],
    },
  };
}

export function msVolume(
  name: string,
  replicaNodes: string[],
  opts: { sizeBytes?: number; state?: 'InSync' | 'Syncing'; start?: number } = {},
): MeshStorVolume {
  const size = opts.sizeBytes ?? 10 * GiB;
  const start = opts.start ?? MiB;
  const end = start + Math.ceil((size + 128 * MiB) / MiB) * MiB;
  return {
    apiVersion: 'meshstor.io/v1alpha1',
    kind: 'MeshStorVolume',
    metadata: { name },
    spec: {
      sizeBytes: size,
      replicaCount: replicaNodes.length,
      replicas: replicaNodes.map((node, i) => ({
        id: `r${i}`,
        node,
        drive: 'nvme0',
        extent: { start, end },
      })),
    },
    status: {
      members: replicaNodes.map((node, i) => ({ replicaId: `r${i}`, node, state: opts.state ?? 'InSync' })),
    },
  };
}
