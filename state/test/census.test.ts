import { describe, expect, it } from 'vitest';
import type { ReplicaInfo } from '../../placement/model.ts';
import { volumeCensus } from '../census.ts';
import type { VolumeRecord } from '../store.ts';

const GiB = 2 ** 30;
const rep = (id: string, state: ReplicaInfo['state']): ReplicaInfo => ({
  id,
  node: `n-${id}`,
  drive: 'd',
  extent: { start: 0, end: GiB },
  state,
});
const vol = (id: string, over: Partial<VolumeRecord>): VolumeRecord => ({
  id,
  name: id,
  sizeBytes: 10 * GiB,
  replicaCount: 2,
  spread: { domain: 'zone', mode: 'preferred' },
  fsType: 'xfs',
  replicas: [rep('r0', 'InSync'), rep('r1', 'InSync')],
  phase: 'Active',
  arrayUuid: 'u',
  ...over,
});

describe('volumeCensus', () => {
  it('no volumes: every known state at zero', () => {
    expect(volumeCensus([])).toEqual({
      volumes: {
        InSync: 0,
        Syncing: 0,
        Relocating: 0,
        Rebuilding: 0,
        Degraded: 0,
        Provisioned: 0,
        Deleting: 0,
      },
      members: { Pending: 0, Syncing: 0, InSync: 0, Faulty: 0, Removed: 0 },
      relocations: 0,
      relocationBytesRemaining: 0,
    });
  });

  it('counts volumes by Ready reason, members by state, relocations with the bytes left', () => {
    const c = volumeCensus([
      vol('a', {}),
      vol('b', { replicas: [rep('r0', 'InSync'), rep('r1', 'Faulty')] }),
      vol('c', { arrayUuid: undefined, replicas: [rep('r0', 'Pending'), rep('r1', 'Pending')] }),
      vol('d', {
        replicas: [rep('r0', 'InSync'), rep('r1', 'InSync'), rep('r2', 'Syncing')],
        relocation: {
          toNode: 'n-r2',
          toReplica: 'r2',
          fromReplica: 'r1',
          step: 'syncing',
          bytesDone: 4 * GiB,
          bytesTotal: 10 * GiB,
        },
      }),
      vol('e', { relocation: { toNode: 'x', toReplica: 'r2', fromReplica: 'r0', step: 'adding' } }),
      vol('f', { relocation: { toNode: 'x', toReplica: 'r2', fromReplica: 'r0', step: 'done' } }),
      vol('g', { phase: 'Deleting' }),
    ]);
    expect(c.volumes).toEqual({
      InSync: 2,
      Syncing: 0,
      Relocating: 2,
      Rebuilding: 0,
      Degraded: 1,
      Provisioned: 1,
      Deleting: 1,
    });
    expect(c.members).toEqual({ Pending: 2, Syncing: 1, InSync: 11, Faulty: 1, Removed: 0 });
    expect(c.relocations).toBe(2);
    // d: 6 GiB left; e: no progress yet, the whole 10 GiB
    expect(c.relocationBytesRemaining).toBe(16 * GiB);
  });
});
