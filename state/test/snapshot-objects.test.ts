import { describe, expect, it } from 'vitest';
import { snapshotFieldsOf, snapshotSpecOf } from '../snapshot-objects.ts';
import type { VolumeRecord } from '../store.ts';

const base: VolumeRecord = {
  id: 'snap-1',
  name: 's',
  sizeBytes: 1 << 30,
  replicaCount: 1,
  spread: { domain: 'zone', mode: 'none' },
  fsType: 'xfs',
  replicas: [],
  phase: 'Active',
};

describe('snapshot fields of a MeshStorVolume', () => {
  it('a snapshot and a restore survive the round trip through spec', () => {
    const snap = {
      ...base,
      snapshot: { source: 'v', createdAt: '2026-11-28T13:00:00.000Z', readyToUse: true },
    };
    expect(snapshotFieldsOf({ sizeBytes: 1, replicaCount: 1, ...snapshotSpecOf(snap) }, undefined)).toEqual({
      snapshot: snap.snapshot,
      seed: undefined,
      capture: undefined,
    });
    const restored = { ...base, seed: { snapshot: 'snap-1', done: false, fromVolume: 'v' } };
    expect(
      snapshotFieldsOf({ sizeBytes: 1, replicaCount: 1, ...snapshotSpecOf(restored) }, undefined).seed,
    ).toEqual(restored.seed);
  });

  it('reads a capture from status, and drops a step it does not know', () => {
    const spec = { sizeBytes: 1, replicaCount: 1 };
    expect(
      snapshotFieldsOf(spec, { capture: { snapshot: 'snap-1', step: 'syncing', bytesDone: 5 } }).capture,
    ).toEqual({
      snapshot: 'snap-1',
      step: 'syncing',
      bytesDone: 5,
    });
    expect(
      snapshotFieldsOf(spec, { capture: { snapshot: 'snap-1', step: 'exploding' } }).capture,
    ).toBeUndefined();
  });

  it('a record that is neither writes neither field', () => {
    expect(snapshotSpecOf(base)).toEqual({});
  });
});
