// Builds the scenario's nodes: node types drawn by weight with the scenario's seed.
import type { DriveInfo, NodeInfo } from '../placement/model.ts';
import { Rng } from '../placement/rng.ts';
import { alignUp, MiB } from '../placement/units.ts';
import { type Scenario, zoneCounts } from './scenario.ts';

type NodeType = Scenario['cluster']['nodeTypes'][number];

export function makeNode(name: string, zone: string, rack: string, t: NodeType, gptSlots: number): NodeInfo {
  const drives: DriveInfo[] = [];
  const lbs = t.logicalBlockSize;
  if (t.osDrive) {
    const efiEnd = 513 * MiB;
    drives.push({
      id: `${name}-os`,
      sizeBytes: t.osDrive.size,
      logicalBlockSize: lbs,
      gptSlots,
      partitions: [
        { start: MiB, end: efiEnd, label: 'EFI' },
        { start: efiEnd, end: alignUp(efiEnd + t.osDrive.used), label: 'root' },
      ],
    });
  }
  t.drives.forEach((size, i) => {
    drives.push({ id: `${name}-nvme${i}`, sizeBytes: size, logicalBlockSize: lbs, gptSlots, partitions: [] });
  });
  return { name, labels: { zone, rack: `${zone}-r${rack}` }, schedulable: true, agentHealthy: true, drives };
}

export function generateCluster(s: Scenario): NodeInfo[] {
  const rng = new Rng(s.seed ^ 0x5eed);
  const nodes: NodeInfo[] = [];
  const counts = zoneCounts(s.cluster);
  for (const [z, zone] of s.cluster.zones.entries()) {
    for (let i = 0; i < (counts[z] as number); i++) {
      const t = rng.weighted(s.cluster.nodeTypes.map((x) => ({ weight: x.weight, value: x })));
      const rack = String(i % s.cluster.racksPerZone);
      nodes.push(makeNode(`${zone}-${String(i).padStart(2, '0')}`, zone, rack, t, s.cluster.gptSlots));
    }
  }
  return nodes;
}
