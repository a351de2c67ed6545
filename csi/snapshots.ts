// The CSI snapshot RPCs and CreateVolume's content sources (docs/adr/0010-snapshots.md): thin
// checks over controller/snapshots.ts. A snapshot is a volume record of its own (`snap-<hash>`);
// a restore records `seed` on the new volume and its first stage copies the snapshot in; a clone
// takes an internal snapshot of its source first and seeds from that.
import { status } from '@grpc/grpc-js';
import type { Allocator } from '../controller/allocator.ts';
import {
  createSnapshotRecord,
  deleteSnapshotRecord,
  listedSnapshots,
  snapshotIdFor,
  startCapture,
} from '../controller/snapshots.ts';
import { isSnapshot, type Seed, SNAPSHOT_PREFIX, seedingFrom } from '../state/snapshots.ts';
import type { VolumeRecord } from '../state/store.ts';
import { alreadyExists, CsiError, invalid, notFound } from './errors.ts';
import type { Int64, StringMap } from './types.ts';
import { checkId } from './validate.ts';

export interface CreateSnapshotRequest {
  source_volume_id: string;
  name: string;
  secrets: StringMap;
  parameters: StringMap;
}

export interface DeleteSnapshotRequest {
  snapshot_id: string;
  secrets: StringMap;
}

export interface ListSnapshotsRequest {
  max_entries: number;
  starting_token: string;
  source_volume_id: string;
  snapshot_id: string;
  secrets: StringMap;
}

export interface Snapshot {
  size_bytes: Int64;
  snapshot_id: string;
  source_volume_id: string;
  creation_time: { seconds: Int64; nanos: number };
  ready_to_use: boolean;
}

/** CSI's VolumeContentSource as proto-loader hands it over (oneof named `type`). */
export interface ContentSource {
  type?: 'snapshot' | 'volume';
  snapshot?: { snapshot_id: string } | null;
  volume?: { volume_id: string } | null;
}

const precondition = (message: string) => new CsiError(status.FAILED_PRECONDITION, message);

function toSnapshot(r: VolumeRecord): Snapshot {
  const s = r.snapshot;
  if (!s) throw new Error(`record ${r.id} is not a snapshot`);
  const ms = Date.parse(s.createdAt);
  return {
    size_bytes: String(r.sizeBytes),
    snapshot_id: r.id,
    source_volume_id: s.source,
    creation_time: { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 },
    ready_to_use: s.readyToUse,
  };
}

/** Snapshot parameters: none of MeshStor's own; the CO's `csi.storage.k8s.io/*` keys are ignored. */
function checkParameters(p: StringMap | undefined): void {
  const unknown = Object.keys(p ?? {}).filter((k) => !k.startsWith('csi.storage.k8s.io/'));
  if (unknown.length > 0) throw invalid(`unknown snapshot parameter ${unknown[0]}`);
}

export async function createSnapshot(
  a: Allocator,
  req: CreateSnapshotRequest,
  signal?: AbortSignal,
): Promise<{ snapshot: Snapshot }> {
  checkId(req.name, 'name');
  checkId(req.source_volume_id, 'source_volume_id');
  checkParameters(req.parameters);
  const id = snapshotIdFor(req.name);
  a.requireLeader();
  return a.perVolume.run(
    id,
    async () => {
      const existing = await a.store.get(id);
      if (existing) {
        if (!isSnapshot(existing) || existing.snapshot.source !== req.source_volume_id)
          throw alreadyExists(`snapshot ${req.name} exists with another source volume`);
        if (existing.phase === 'Deleting')
          throw alreadyExists(`snapshot ${req.name} is being deleted; retry when it is gone`);
        await a.confirm(existing);
        // the CO calls again until ready: each call starts the capture if its source was busy
        await startCapture(a, existing);
        return { snapshot: toSnapshot(existing) };
      }
      const source = await a.store.get(req.source_volume_id);
      if (!source || isSnapshot(source) || source.phase === 'Deleting')
        throw notFound(`volume ${req.source_volume_id} does not exist`);
      const rec = await createSnapshotRecord(a, { id, name: req.name, source });
      return { snapshot: toSnapshot(rec) };
    },
    signal,
  );
}

export async function deleteSnapshot(
  a: Allocator,
  req: DeleteSnapshotRequest,
  signal?: AbortSignal,
): Promise<Record<string, never>> {
  checkId(req.snapshot_id, 'snapshot_id');
  a.requireLeader();
  await a.perVolume.run(
    req.snapshot_id,
    async () => {
      const rec = await a.store.get(req.snapshot_id);
      // An id that names no snapshot (nothing, or a volume) is deleted already, as the spec asks.
      if (!rec || !isSnapshot(rec)) return;
      const readers = seedingFrom(await a.store.list(), rec.id);
      if (readers.length > 0)
        throw precondition(
          `snapshot ${rec.id} is being restored into ${readers.map((r) => r.id).join(', ')}; retry once they are seeded`,
        );
      await deleteSnapshotRecord(a, rec.id);
    },
    signal,
  );
  return {};
}

export async function listSnapshots(
  a: Allocator,
  req: ListSnapshotsRequest,
): Promise<{ entries: { snapshot: Snapshot }[]; next_token: string }> {
  if (req.max_entries < 0) throw invalid('max_entries must not be negative');
  const token = req.starting_token;
  // A token is the id of the last snapshot of the previous page; anything else is not ours.
  if (token && !(token.startsWith(SNAPSHOT_PREFIX) && token.length <= 128))
    throw new CsiError(status.ABORTED, 'starting_token is not one this driver gave');
  const all = (await listedSnapshots(a)).filter(
    (r) =>
      (!req.snapshot_id || r.id === req.snapshot_id) &&
      (!req.source_volume_id || r.snapshot.source === req.source_volume_id) &&
      (!token || r.id > token),
  );
  const page = req.max_entries > 0 ? all.slice(0, req.max_entries) : all;
  const more = page.length < all.length;
  return {
    entries: page.map((r) => ({ snapshot: toSnapshot(r) })),
    next_token: more ? (page[page.length - 1] as VolumeRecord).id : '',
  };
}

/** Where a new volume's content comes from: the seed its record carries, and the source to echo. */
export interface Seeding {
  seed: Seed;
  /** The smallest the new volume may be: the snapshot's size. */
  minBytes: number;
}

/**
 * Resolves CreateVolume's content source before anything is placed: the snapshot (ready, not being
 * deleted) or the source volume, NOT_FOUND when it does not exist. For a volume source the clone's
 * internal snapshot is taken here (idempotent: a retry finds it). The caller holds the new
 * volume's lock.
 */
export async function seedingFor(
  a: Allocator,
  src: ContentSource | null | undefined,
  newVolumeId: string,
): Promise<Seeding | undefined> {
  if (!src?.type) return undefined;
  if (src.type === 'snapshot') {
    const id = checkId(src.snapshot?.snapshot_id, 'volume_content_source.snapshot.snapshot_id');
    const snap = await a.store.get(id);
    if (!snap || !isSnapshot(snap) || snap.phase === 'Deleting' || snap.snapshot.forClone)
      throw notFound(`snapshot ${id} does not exist`);
    if (!snap.snapshot.readyToUse) throw precondition(`snapshot ${id} is not ready to use yet`);
    return { seed: { snapshot: id, done: !!snap.snapshot.empty }, minBytes: snap.sizeBytes };
  }
  const sourceId = checkId(src.volume?.volume_id, 'volume_content_source.volume.volume_id');
  const source = await a.store.get(sourceId);
  if (!source || isSnapshot(source) || source.phase === 'Deleting')
    throw notFound(`volume ${sourceId} does not exist`);
  // A volume never staged holds no data: its clone is a fresh volume, no snapshot needed.
  if (!source.arrayUuid)
    return { seed: { snapshot: '', done: true, fromVolume: sourceId }, minBytes: source.sizeBytes };
  const internalId = snapshotIdFor(`clone/${newVolumeId}`);
  const snap =
    (await a.store.get(internalId)) ??
    (await createSnapshotRecord(a, {
      id: internalId,
      name: `clone/${newVolumeId}`,
      source,
      forClone: newVolumeId,
    }));
  if (snap.snapshot?.source !== sourceId)
    throw alreadyExists(`volume ${newVolumeId} is being cloned from another source`);
  return {
    seed: { snapshot: internalId, done: !!snap.snapshot.empty, fromVolume: sourceId },
    minBytes: snap.sizeBytes,
  };
}

/** The content source a volume record was made from, as CSI echoes it in CreateVolume's answer. */
export function contentSourceOf(rec: VolumeRecord): ContentSource | undefined {
  const s = rec.seed;
  if (!s) return undefined;
  return s.fromVolume ? { volume: { volume_id: s.fromVolume } } : { snapshot: { snapshot_id: s.snapshot } };
}

/** Whether a retried CreateVolume asks for the content its record was made from. */
export function sameSource(rec: VolumeRecord, src: ContentSource | null | undefined): boolean {
  const have = contentSourceOf(rec);
  if (!src?.type || !have) return !src?.type && !have;
  if (src.type === 'snapshot') return have.snapshot?.snapshot_id === src.snapshot?.snapshot_id;
  return have.volume?.volume_id === src.volume?.volume_id;
}
