import { describe, expect, it } from 'vitest';
import { readyCondition, withCondition } from '../conditions.ts';
import type { VolumeRecord } from '../store.ts';

const rec = (
  states: VolumeRecord['replicas'][number]['state'][],
  extra: Partial<VolumeRecord> = {},
): VolumeRecord => ({
  id: 'v',
  name: 'v',
  sizeBytes: 1 << 30,
  replicaCount: 2,
  spread: { domain: 'zone', mode: 'none' },
  fsType: 'xfs',
  phase: 'Active',
  replicas: states.map((state, i) => ({
    id: `r${i}`,
    node: `n${i}`,
    drive: 'd',
    extent: { start: 0, end: 1 },
    state,
  })),
  ...extra,
});

describe('readyCondition', () => {
  it('names what is wrong, and says how far a relocation got', () => {
    expect(readyCondition(rec(['Pending', 'Pending']))).toMatchObject({
      status: 'True',
      reason: 'Provisioned',
    });
    expect(
      readyCondition(rec(['InSync', 'InSync'], { arrayUuid: 'u', attachment: { node: 'n0', hostNqn: 'q' } })),
    ).toMatchObject({ status: 'True', reason: 'InSync', message: '2 of 2 copies in sync; attached to n0' });
    expect(readyCondition(rec(['InSync', 'Faulty'], { arrayUuid: 'u' }))).toMatchObject({
      status: 'True',
      reason: 'Degraded',
      message: '1 of 2 copies in sync; faulty: r1 on n1',
    });
    expect(readyCondition(rec(['Faulty', 'Faulty'], { arrayUuid: 'u' }))).toMatchObject({ status: 'False' });
    const moving = rec(['InSync', 'InSync', 'Syncing'], {
      arrayUuid: 'u',
      relocation: {
        toNode: 'n2',
        toReplica: 'r2',
        fromReplica: 'r0',
        step: 'syncing',
        bytesDone: 1 << 29,
        bytesTotal: 1 << 30,
      },
    });
    expect(readyCondition(moving)).toMatchObject({
      reason: 'Relocating',
      message: 'moving r0 to n2 as r2: syncing 50%',
    });
  });

  it('a move replacing a Faulty member is a rebuild: Degraded, then Rebuilding n%, then InSync', () => {
    const lost = rec(['InSync', 'Faulty'], { arrayUuid: 'u', attachment: { node: 'n0', hostNqn: 'q' } });
    expect(readyCondition(lost)).toMatchObject({ status: 'True', reason: 'Degraded' });
    const rebuilding = rec(['InSync', 'Faulty', 'Syncing'], {
      arrayUuid: 'u',
      attachment: { node: 'n0', hostNqn: 'q' },
      relocation: {
        toNode: 'n2',
        toReplica: 'r2',
        fromReplica: 'r1',
        step: 'syncing',
        bytesDone: 1 << 28,
        bytesTotal: 1 << 30,
      },
    });
    expect(readyCondition(rebuilding)).toMatchObject({
      status: 'True',
      reason: 'Rebuilding',
      message: 'rebuilding r1 (on n1, lost) as r2 on n2: syncing 25%; 1 of 2 copies in sync',
    });
    const done = rec(['InSync', 'Removed', 'InSync'], { arrayUuid: 'u' });
    expect(readyCondition(done)).toMatchObject({ reason: 'InSync', message: '2 of 2 copies in sync' });
  });

  it('keeps the transition time while the status holds', () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    const a = withCondition(undefined, { type: 'Ready', status: 'True', reason: 'InSync' }, t0);
    const b = withCondition(a, { type: 'Ready', status: 'True', reason: 'Syncing' }, new Date());
    expect(b[0]?.lastTransitionTime).toBe(t0.toISOString());
    const c = withCondition(
      b,
      { type: 'Ready', status: 'False', reason: 'Degraded' },
      new Date('2026-02-01T00:00:00Z'),
    );
    expect(c[0]?.lastTransitionTime).toBe('2026-02-01T00:00:00.000Z');
    expect(c).toHaveLength(1);
  });
});
