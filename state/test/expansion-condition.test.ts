import { describe, expect, it } from 'vitest';
import { expandingCondition, withExpanding } from '../expansion-condition.ts';
import type { VolumeRecord } from '../store.ts';

const GiB = 1 << 30;
const rec = (extra: Partial<VolumeRecord> = {}): VolumeRecord => ({
  id: 'v',
  name: 'v',
  sizeBytes: GiB,
  replicaCount: 2,
  spread: { domain: 'zone', mode: 'none' },
  fsType: 'xfs',
  phase: 'Active',
  replicas: [],
  ...extra,
});

describe('the Expanding condition', () => {
  it('shows the move and its progress, or why the expansion waits', () => {
    const member = (id: string, bytes: number) => ({
      id,
      node: 'n1',
      drive: 'd',
      extent: { start: 0, end: bytes },
      state: 'InSync' as const,
    });
    const moving = rec({
      replicas: [member('r0', GiB), member('r2', 2 * GiB)],
      expansion: { sizeBytes: 2 * GiB },
      relocation: {
        toNode: 'n1',
        toReplica: 'r2',
        fromReplica: 'r0',
        step: 'syncing',
        bytesDone: GiB / 4,
        bytesTotal: GiB,
      },
    });
    expect(expandingCondition(moving)).toEqual({
      type: 'Expanding',
      status: 'True',
      reason: 'RelocatingForGrowth',
      message: `growing from ${GiB} to ${2 * GiB} bytes: moving r0 to a larger extent on n1 as r2: syncing 25%`,
    });
    // a relocation of the same size (following the pod) runs first: named as such
    const follow = { ...moving, replicas: [member('r0', GiB), member('r2', GiB)] };
    expect(expandingCondition(follow)?.message).toMatch(/: moving r0 on n1 as r2: syncing 25%$/);
    expect(
      expandingCondition(rec({ expansion: { sizeBytes: 2 * GiB, waiting: 'waiting for a pod' } })),
    ).toMatchObject({
      reason: 'Waiting',
      message: `growing from ${GiB} to ${2 * GiB} bytes: waiting for a pod`,
    });
    // a finished move whose old member is not released yet: growing, no percentage
    const ended = rec({
      expansion: { sizeBytes: 2 * GiB },
      relocation: { toNode: 'n1', toReplica: 'r2', fromReplica: 'r0', step: 'done' },
    });
    expect(expandingCondition(ended)?.reason).toBe('Growing');
    expect(expandingCondition(rec())).toBeUndefined();
  });

  it('turns False once the expansion is over, and is never added to a volume that never waited', () => {
    const t0 = new Date('2026-11-28T10:00:00Z');
    const t1 = new Date('2026-11-28T10:05:00Z');
    const during = withExpanding([], rec({ expansion: { sizeBytes: 2 * GiB } }), t0);
    expect(during).toMatchObject([
      { type: 'Expanding', status: 'True', lastTransitionTime: t0.toISOString() },
    ]);
    const done = withExpanding(during, rec({ sizeBytes: 2 * GiB }), t1);
    expect(done).toEqual([
      {
        type: 'Expanding',
        status: 'False',
        reason: 'Expanded',
        message: `${2 * GiB} bytes`,
        lastTransitionTime: t1.toISOString(),
      },
    ]);
    expect(withExpanding(done, rec({ sizeBytes: 2 * GiB }), new Date())).toBe(done); // unchanged
    expect(withExpanding([], rec())).toEqual([]);
  });
});
