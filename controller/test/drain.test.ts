// The drain plan meshstor drain prints: every replica on the node, its destination, bytes, order
// (most exposed first, then largest), in-sync copies while it runs, and why some wait.
import { describe, expect, it } from 'vitest';
import type { NodeInfo } from '../../placement/model.ts';
import { GiB, MiB } from '../../placement/units.ts';
import type { VolumeRecord } from '../../state/store.ts';
import { formatDrainReport, planDrainReport } from '../drain.ts';

const node = (name: string, schedulable = true): NodeInfo => ({
  name,
  labels: { zone: name },
  schedulable,
  agentHealthy: true,
  drives: [{ id: `${name}-d`, sizeBytes: 100 * GiB, logicalBlockSize: 512, gptSlots: 128, partitions: [] }],
});

let next = MiB;
function vol(
  id: string,
  gib: number,
  on: [string, VolumeRecord['replicas'][number]['state']][],
  attached?: string,
): VolumeRecord {
  const start = next;
  next += (gib + 1) * GiB;
  return {
    id,
    name: id,
    sizeBytes: gib * GiB,
    replicaCount: on.length,
    spread: { domain: 'zone', mode: 'preferred' },
    fsType: 'xfs',
    phase: 'Active',
    replicas: on.map(([n, state], i) => ({
      id: `r${i}`,
      node: n,
      drive: `${n}-d`,
      extent: { start, end: start + gib * GiB + 64 * MiB },
      state,
    })),
    attachment: attached ? { node: attached, hostNqn: `nqn.x:${attached}` } : undefined,
  };
}

describe('drain plan', () => {
  const nodes = [node('a'), node('b'), node('c'), node('d', false)];
  const records = [
    vol(
      'big',
      8,
      [
        ['a', 'InSync'],
        ['b', 'InSync'],
      ],
      'b',
    ),
    vol(
      'small',
      1,
      [
        ['a', 'InSync'],
        ['c', 'InSync'],
      ],
      'c',
    ),
    vol('single', 2, [['a', 'InSync']], 'a'),
    vol(
      'degraded',
      1,
      [
        ['a', 'InSync'],
        ['b', 'Faulty'],
      ],
      'a',
    ),
    vol('idle', 1, [
      ['a', 'InSync'],
      ['c', 'InSync'],
    ]),
    vol(
      'elsewhere',
      1,
      [
        ['b', 'InSync'],
        ['c', 'InSync'],
      ],
      'b',
    ),
  ];
  const r = planDrainReport(nodes, records, 'a');

  it('plans every replica on the node, most exposed first, never onto the cordoned node or a node holding the volume', () => {
    expect(r.moves.map((m) => m.volume)).toEqual(['single', 'degraded', 'big', 'idle', 'small']);
    expect(r.moves.map((m) => m.order)).toEqual([1, 2, 3, 4, 5]);
    for (const m of r.moves) {
      expect(['b', 'c']).toContain(m.to.node);
      const holders = records.find((v) => v.id === m.volume)?.replicas.map((x) => x.node);
      expect(holders).not.toContain(m.to.node);
    }
    expect(r.moves.find((m) => m.volume === 'big')?.to.node).toBe('c');
    expect(r.totalBytes).toBe(r.moves.reduce((s, m) => s + m.bytes, 0));
    expect(r.moves.find((m) => m.volume === 'big')?.bytes).toBeGreaterThanOrEqual(8 * GiB);
  });

  it('says what has fewer in-sync copies while it runs, what is alone on the node, and what waits', () => {
    const by = (id: string) => r.moves.find((m) => m.volume === id);
    expect(by('big')?.inSyncWhileMoving).toBe(2);
    expect(by('degraded')?.inSyncWhileMoving).toBe(1);
    expect(by('single')?.inSyncElsewhere).toBe(0);
    expect(by('big')?.waits).toBeUndefined();
    expect(by('single')?.waits).toBeUndefined();
    expect(by('degraded')?.waits).toMatch(/degraded \(1 of 2 copies in sync\)/);
    expect(by('idle')?.waits).toMatch(/not attached/);
    const text = formatDrainReport(r, true);
    expect(text).toMatch(/^Drain plan for node a \(dry run: nothing changes/);
    expect(text).toMatch(/Total: 5 moves, /);
    expect(text).toMatch(
      /Fewer in-sync copies than replicaCount while it runs:\n {2}degraded: 1 of 2 in sync/,
    );
    expect(text).toMatch(/Only copy on a until its new copy is in sync:\n {2}single/);
    expect(text).toMatch(/Waiting \(not moved now\):\n {2}degraded: .*\n {2}idle: not attached/);
  });

  it('a move under way shows where its record takes it, as moving', () => {
    const v = vol(
      'busy',
      1,
      [
        ['a', 'InSync'],
        ['b', 'InSync'],
      ],
      'b',
    );
    v.replicas.push({
      id: 'r2',
      node: 'c',
      drive: 'c-d',
      extent: { start: 90 * GiB, end: 91 * GiB + 64 * MiB },
      state: 'Syncing',
    });
    v.relocation = { toNode: 'c', toReplica: 'r2', fromReplica: 'r0', step: 'syncing' };
    const plan = planDrainReport(nodes, [v], 'a');
    expect(plan.moves).toMatchObject([
      { volume: 'busy', replica: 'r0', to: { node: 'c', drive: 'c-d' }, running: true },
    ]);
    expect(plan.moves[0]?.waits).toBeUndefined();
    expect(formatDrainReport(plan, false)).toMatch(/busy +r0 .* c\/c-d +2 of 2 +moving/);
  });

  it('a node without replicas: nothing to move', () => {
    const none = planDrainReport(nodes, records, 'd');
    expect(none.moves).toEqual([]);
    expect(formatDrainReport(none, true)).toMatch(/nothing to move/);
  });
});
