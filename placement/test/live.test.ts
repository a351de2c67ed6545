import { describe, expect, it } from 'vitest';
import { sharedSpread } from '../cluster.ts';
import { DriveState } from '../drive.ts';
import { LiveCluster } from '../live.ts';
import type { VolumeInfo } from '../model.ts';
import { GiB, MiB } from '../units.ts';
import { drive, node } from './fixtures.ts';

const vol = (
  id: string,
  on: [string, string][],
  state: VolumeInfo['replicas'][number]['state'] = 'InSync',
) => ({
  id,
  sizeBytes: GiB,
  replicaCount: on.length,
  spread: { domain: 'zone' as const, mode: 'preferred' as const },
  replicas: on.map(([n, d], i) => ({
    id: `r${i}`,
    node: n,
    drive: d,
    extent: { start: GiB, end: 2 * GiB + MiB },
    state,
  })),
});

describe('LiveCluster', () => {
  it('holds each volume once: what volume() returns is the model record', () => {
    const live = new LiveCluster();
    live.setNode(node('a', 'z1', [drive('d0', 100)]));
    live.setVolume(vol('v1', [['a', 'd0']]));
    expect(live.volume('v1')).toBe(live.cluster.volumes.get('v1'));
    expect(live.volumeCount).toBe(1);
    live.deleteVolume('v1');
    expect(live.volume('v1')).toBeUndefined();
    expect(live.cluster.node('a')?.drive('d0')?.extents).toEqual([]);
  });

  it('a reloaded node gets its volumes back as their records say (removeNode marks them Faulty on the way)', () => {
    const live = new LiveCluster();
    live.setNode(node('a', 'z1', [drive('d0', 100)]));
    live.setNode(node('b', 'z2', [drive('d0', 100)]));
    live.setVolume(
      vol('v1', [
        ['a', 'd0'],
        ['b', 'd0'],
      ]),
    );
    // a drive added on node a: a reload, not a health change
    expect(live.setNode(node('a', 'z1', [drive('d0', 100), drive('d1', 50)]))).toBe(true);
    const v = live.volume('v1');
    expect(v?.replicas.map((r) => r.state)).toEqual(['InSync', 'InSync']);
    const taken = live.cluster.node('a')?.drive('d0')?.extents ?? [];
    expect(taken.map((t) => [t.start, t.claim.kind])).toEqual([[GiB, 'replica']]);
  });

  it('a deleted node leaves its volumes as recorded (their extents there unclaimed), and claims them again when it returns', () => {
    const live = new LiveCluster();
    live.setNode(node('a', 'z1', [drive('d0', 100)]));
    live.setVolume(vol('v1', [['a', 'd0']]));
    live.deleteNode('a');
    expect(live.volume('v1')?.replicas[0]?.state).toBe('InSync');
    expect(live.cluster.drift.some((d) => d.kind === 'unknown-node')).toBe(true);
    live.setNode(node('a', 'z1', [drive('d0', 100)]));
    expect(
      live.cluster
        .node('a')
        ?.drive('d0')
        ?.extents.map((t) => t.start),
    ).toEqual([GiB]);
  });

  it('a node update the model refuses leaves the volumes on it loaded', () => {
    const live = new LiveCluster();
    live.setNode(node('a', 'z1', [drive('d0', 100)]));
    live.setNode(node('b', 'z2', [drive('d0', 100)]));
    live.setVolume(
      vol('v1', [
        ['a', 'd0'],
        ['b', 'd0'],
      ]),
    );
    expect(() => live.setNode(node('a', 'z1', [drive('d0', 100), drive('d0', 50)]))).toThrow(/appears twice/);
    expect(live.volume('v1')?.replicas.map((r) => r.state)).toEqual(['InSync', 'InSync']);
    expect(
      live.cluster
        .node('b')
        ?.drive('d0')
        ?.extents.map((t) => t.start),
    ).toEqual([GiB]);
  });

  it('a volume that arrives before its node is claimed once the node arrives', () => {
    const live = new LiveCluster();
    live.setVolume(vol('v1', [['a', 'd0']], 'Syncing'));
    expect(live.cluster.drift.map((d) => d.kind)).toEqual(['unknown-node']);
    live.setNode(node('a', 'z1', [drive('d0', 100)]));
    expect(
      live.cluster
        .node('a')
        ?.drive('d0')
        ?.extents.map((t) => t.claim.kind),
    ).toEqual(['replica']);
    expect(live.volume('v1')?.replicas[0]?.state).toBe('Syncing');
  });

  it('loaded volumes share one frozen spread per policy', () => {
    const live = new LiveCluster();
    live.setNode(node('a', 'z1', [drive('d0', 100)]));
    live.setVolume(vol('v1', [['a', 'd0']]));
    live.setVolume({ ...vol('v2', []), spread: { domain: 'zone', mode: 'preferred' } });
    const [s1, s2] = ['v1', 'v2'].map((id) => live.volume(id)?.spread);
    expect(s1).toBe(s2);
    expect(Object.isFrozen(s1)).toBe(true);
    expect(sharedSpread({ domain: 'rack', mode: 'required' })).toEqual({ domain: 'rack', mode: 'required' });
    expect(sharedSpread({ domain: 'rack', mode: 'required' })).not.toBe(s1);
  });
});

describe('DriveState free extents', () => {
  it('lists the holes between taken extents, 1 MiB aligned, and finds a fit in them', () => {
    const d = new DriveState('n', drive('d0', 10));
    d.take({ start: GiB, end: 2 * GiB }, { kind: 'foreign' });
    d.take({ start: 4 * GiB, end: 5 * GiB }, { kind: 'foreign' });
    const free = d.free;
    expect(free.slice(1, 3)).toEqual([
      { start: 2 * GiB, end: 4 * GiB },
      { start: 5 * GiB, end: free[2]?.end },
    ]);
    expect(free[0]?.end).toBe(GiB);
    expect(d.freeBytes).toBe(free.reduce((s, f) => s + f.end - f.start, 0));
    expect(d.isFree({ start: 2 * GiB, end: 4 * GiB })).toBe(true);
    expect(d.isFree({ start: 2 * GiB, end: 4 * GiB + MiB })).toBe(false);
    // the first hole ends at 1 GiB but starts after the GPT: too small for 1 GiB
    expect(d.smallestHoleFor(GiB)).toBe(2 * GiB);
    expect(d.pick(2 * GiB, 'best')).toEqual({ extent: { start: 2 * GiB, end: 4 * GiB }, holeBytes: 2 * GiB });
  });
});
