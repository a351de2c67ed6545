// Translates MeshStorNode and MeshStorVolume objects into the placement engine's model. Shared by
// the extender and the CSI controller so both see a node and a volume the same way.

import type { MemberPhase, MeshStorNode, MeshStorVolume } from '../kube/crds.ts';
import type { MemberState, NodeInfo, VolumeInfo } from '../placement/model.ts';

// One member-state vocabulary: the CRD's phases are the model's states, word for word. These two
// lines stop compiling if either side gains or loses a word.
const SAME_WORDS: [MemberPhase] extends [MemberState]
  ? [MemberState] extends [MemberPhase]
    ? true
    : never
  : never = true;
void SAME_WORDS;

/** Whether the node's agent says it is Ready (freshness of the heartbeat is the caller's call). */
export function agentReady(n: MeshStorNode): boolean {
  return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function nodeInfoFrom(n: MeshStorNode, healthy: boolean): NodeInfo {
  return {
    name: n.metadata.name,
    labels: { zone: n.spec.topology?.zone, rack: n.spec.topology?.rack },
    // A cordoned Node takes no new replica (a relocation target or a new volume's copy); its
    // existing replicas stay. Agents that do not report it yet count as schedulable.
    schedulable: n.status?.schedulable ?? true,
    agentHealthy: healthy,
    drives: (n.status?.drives ?? []).map((d) => ({
      id: d.id,
      sizeBytes: d.sizeBytes,
      logicalBlockSize: d.logicalBlockSize,
      gptSlots: d.gptSlots ?? 128,
      partitions: (d.partitions ?? []).map((p) => ({
        start: p.start,
        end: p.end,
        label: p.label,
        owner: p.owner ? { volumeId: p.owner.volume, replicaId: p.owner.replica } : undefined,
      })),
    })),
  };
}

export function volumeInfoFrom(v: MeshStorVolume): VolumeInfo {
  const members = new Map((v.status?.members ?? []).map((m) => [m.replicaId, m.state]));
  return {
    id: v.metadata.name,
    sizeBytes: v.spec.sizeBytes,
    replicaCount: v.spec.replicaCount,
    spread: { domain: v.spec.spread?.domain ?? 'zone', mode: v.spec.spread?.mode ?? 'preferred' },
    replicas: (v.spec.replicas ?? []).map((r) => ({
      id: r.id,
      node: r.node,
      drive: r.drive,
      extent: { start: r.extent.start, end: r.extent.end },
      state: members.get(r.id) ?? 'Pending',
    })),
    attachedNode: v.spec.attachment?.node,
  };
}
