// A MeshStorVolume's snapshot fields and a record's (ADR 0010): `spec.snapshot` on a snapshot's own
// object, `spec.seed` on a restored volume's, `status.capture` on a source whose array is capturing.
import type { MeshStorVolumeSpec, MeshStorVolumeStatus } from '../kube/crds.ts';
import type { Capture } from './snapshots.ts';
import type { VolumeRecord } from './store.ts';

const CAPTURE_STEPS = new Set<Capture['step']>(['adding', 'syncing', 'detaching', 'detached']);

/** The record's snapshot, seed and capture as the object carries them. */
export function snapshotFieldsOf(
  spec: MeshStorVolumeSpec,
  status: MeshStorVolumeStatus | undefined,
): Pick<VolumeRecord, 'snapshot' | 'seed' | 'capture'> {
  const s = spec.snapshot;
  const c = status?.capture;
  return {
    snapshot: s && {
      source: s.source,
      createdAt: s.createdAt,
      readyToUse: s.readyToUse === true,
      ...(s.empty ? { empty: true } : {}),
      ...(s.forClone ? { forClone: s.forClone } : {}),
    },
    seed: spec.seed && {
      snapshot: spec.seed.snapshot,
      done: spec.seed.done === true,
      ...(spec.seed.fromVolume ? { fromVolume: spec.seed.fromVolume } : {}),
    },
    capture:
      c && CAPTURE_STEPS.has(c.step as Capture['step'])
        ? { snapshot: c.snapshot, step: c.step as Capture['step'], bytesDone: c.bytesDone }
        : undefined,
  };
}

/** The spec fields a record's snapshot and seed are written as (absent ones left out). */
export function snapshotSpecOf(r: VolumeRecord): Pick<MeshStorVolumeSpec, 'snapshot' | 'seed'> {
  return {
    ...(r.snapshot ? { snapshot: { ...r.snapshot } } : {}),
    ...(r.seed ? { seed: { ...r.seed } } : {}),
  };
}
