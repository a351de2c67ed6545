// Translates MeshStorNode and MeshStorVolume objects into the placement engine's model. Shared by
// the extender and the CSI controller so both see a node and a volume the same way.

import type { Extent, MemberPhase, MeshStorNode, MeshStorVolume } from '../kube/crds.ts';
import type { MemberState, NodeInfo, VolumeInfo } from '../placement/model.ts';
import type { NodeLedger } from './ledger.ts';

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

/** The label of a partition that stands for a ledger claim no record holds (reports only). */
export const CLAIM_LABEL = 'ledger-claim';

/**
 * The nodes with every ledger claim that no volume's replica covers added as a partition of its
 * drive: the bytes stay taken until the ledger reconciler releases the claim (an allocation
 * killed between its claim and its record, or a record dropped before its claims; orphans are
 * released only after a grace period, ADR 0004). A plan onto them would be refused at its claim,
 * and planned again every pass until then. A claim a replica or partition already covers adds
 * nothing. Claims on nodes not in `nodes` are left out (nothing is placed there either).
 */
export function withLedgerClaims(
  nodes: readonly NodeInfo[],
  volumes: readonly VolumeInfo[],
  ledgers: readonly NodeLedger[],
): NodeInfo[] {
  const claimsOf = new Map(ledgers.map((l) => [l.node, l.claims]));
  // Bytes the snapshot shows taken per node and drive: replicas (Removed ones hold nothing).
  const taken = new Map<string, Extent[]>();
  const take = (node: string, drive: string, e: Extent) => {
    const key = `${node}\u0000${drive}`;
    const list = taken.get(key);
    if (list) list.push(e);
    else taken.set(key, [e]);
  };
  for (const v of volumes) {
    for (const r of v.replicas) if (r.state !== 'Removed') take(r.node, r.drive, r.extent);
  }
  return nodes.map((n) => {
    const claims = claimsOf.get(n.name);
    if (!claims?.length) return n;
    return {
      ...n,
      drives: n.drives.map((d) => {
        const held = [...(taken.get(`${n.name}\u0000${d.id}`) ?? []), ...d.partitions];
        const unheld = claims.filter(
          (c) => c.drive === d.id && !held.some((e) => e.start <= c.start && c.end <= e.end),
        );
        if (unheld.length === 0) return d;
        return {
          ...d,
          partitions: [
            ...d.partitions,
            ...unheld.map((c) => ({
              start: c.start,
              end: c.end,
              label: `${CLAIM_LABEL} ${c.volume}/${c.replica}`,
            })),
          ],
        };
      }),
    };
  });
}
