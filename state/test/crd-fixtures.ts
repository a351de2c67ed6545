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

/**
 * A MeshStorNode with every field the CRD has set (two drives with owned and foreign partitions,
 * a skipped drive, two conditions), for tests that check a reader against a slimmed copy.
 */
export function richNode(name: string, heartbeat = 1_000_000): MeshStorNode {
  return {
    apiVersion: 'meshstor.io/v1alpha1',
    kind: 'MeshStorNode',
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: '41',
      generation: 3,
      labels: { a: 'b' },
      annotations: { c: 'd' },
      finalizers: ['meshstor.io/x'],
    },
    spec: { nodeName: name, topology: { zone: 'z1', rack: 'r7' } },
    status: {
      observedGeneration: 3,
      heartbeatTime: new Date(heartbeat).toISOString(),
      schedulable: false,
      hostNQN: `nqn.2014-08.org.nvmexpress:uuid:${name}`,
      nvmeofAddress: { transport: 'tcp', address: '10.0.0.1', port: 4420 },
      driveCount: 2,
      capacityBytes: 2048 * GiB,
      freeBytes: 2000 * GiB,
      drives: ['nvme0', 'nvme1'].map((id, i) => ({
        id,
        path: `/dev/${id}n1`,
        sizeBytes: 1024 * GiB,
        logicalBlockSize: i === 0 ? (512 as const) : (4096 as const),
        gptSlots: 128,
        partitions: [
          {
            number: 1,
            partUUID: `pu-${id}-1`,
            label: 'meshstor:vol-a:r0',
            start: MiB,
            end: 11 * GiB,
            owner: { volume: 'vol-a', replica: 'r0' },
          },
          { number: 2, partUUID: `pu-${id}-2`, label: 'EFI', start: 11 * GiB, end: 12 * GiB },
        ],
      })),
      skippedDrives: [{ id: 'S123', path: '/dev/nvme2n1', reason: 'not selected' }],
      conditions: [
        {
          type: 'KernelModulesLoaded',
          status: 'True',
          reason: 'Loaded',
          message: 'all loaded',
          lastTransitionTime: '2026-11-28T10:00:00Z',
        },
        {
          type: 'Ready',
          status: 'True',
          reason: 'AgentUp',
          message: 'reporting',
          lastTransitionTime: '2026-11-28T10:00:00Z',
          observedGeneration: 3,
        },
      ],
    },
  };
}

/** A MeshStorVolume with every field the CRD has set (attached, relocating, one member syncing). */
export function richVolume(name: string, nodes: [string, string]): MeshStorVolume {
  return {
    apiVersion: 'meshstor.io/v1alpha1',
    kind: 'MeshStorVolume',
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: '77',
      generation: 5,
      labels: { l: 'v' },
      annotations: { 'meshstor.io/allocation': 'alloc-1' },
      finalizers: ['meshstor.io/release'],
    },
    spec: {
      sizeBytes: 10 * GiB,
      replicaCount: 2,
      volumeMode: 'Block',
      fsType: 'xfs',
      spread: { domain: 'rack', mode: 'required' },
      replicas: nodes.map((node, i) => ({
        id: `r${i}`,
        node,
        drive: `nvme${i}`,
        extent: { start: MiB, end: 11 * GiB },
      })),
      attachment: { node: nodes[0], hostNQN: 'nqn.host' },
    },
    status: {
      observedGeneration: 5,
      arrayUUID: 'a-u-u-i-d',
      inSyncMembers: 1,
      members: [
        { replicaId: 'r0', node: nodes[0], state: 'InSync' },
        { replicaId: 'r1', node: nodes[1], state: 'Syncing', syncPercent: 40, message: 'copying' },
      ],
      relocation: {
        toNode: nodes[1],
        toReplica: 'r1',
        fromReplica: 'r9',
        step: 'sync',
        bytesDone: 1,
        bytesTotal: 2,
      },
      conditions: [{ type: 'Degraded', status: 'True', reason: 'Syncing' }],
    },
  };
}
