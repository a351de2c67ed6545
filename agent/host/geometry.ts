// GPT geometry shared by both Host implementations: usable area, free extents, overlap checks.
import { alignDown, alignUp, type Extent } from '../../placement/index.ts';
import { InvalidArgumentError, PartitionOverlapError } from './errors.ts';

/** First/last usable byte range of a GPT disk with 128 entries (primary + backup table). */
export function usableArea(sizeBytes: number, lbs: number): Extent {
  const tableBytes = 128 * 128; // 128 entries of 128 bytes: whole sectors for 512 and 4096
  return { start: 2 * lbs + tableBytes, end: sizeBytes - lbs - tableBytes };
}

/** Free ranges of the usable area, each trimmed to 1 MiB boundaries; ranges under 1 MiB dropped. */
export function freeExtents(area: Extent, taken: Extent[]): Extent[] {
  const sorted = [...taken].sort((a, b) => a.start - b.start);
  const out: Extent[] = [];
  let at = area.start;
  for (const t of [...sorted, { start: area.end, end: area.end }]) {
    const s = alignUp(at);
    const e = alignDown(Math.min(t.start, area.end));
    if (e > s) out.push({ start: s, end: e });
    at = Math.max(at, t.end);
  }
  return out;
}

/** Refuses an extent that is unaligned, outside the usable area, or overlapping a taken one. */
export function checkNewExtent(
  driveId: string,
  lbs: number,
  area: Extent,
  taken: (Extent & { name?: string })[],
  x: Extent,
): void {
  if (!Number.isSafeInteger(x.start) || !Number.isSafeInteger(x.end) || x.end <= x.start) {
    throw new InvalidArgumentError(`extent [${x.start}, ${x.end}) on ${driveId} is empty or not integral`);
  }
  if (x.start % lbs !== 0 || x.end % lbs !== 0) {
    throw new InvalidArgumentError(`extent [${x.start}, ${x.end}) is not aligned to ${lbs}-byte blocks`);
  }
  if (x.start < area.start || x.end > area.end) {
    throw new PartitionOverlapError(
      `extent [${x.start}, ${x.end}) leaves the usable area [${area.start}, ${area.end}) of drive ${driveId}`,
    );
  }
  for (const t of taken) {
    if (x.start < t.end && t.start < x.end) {
      throw new PartitionOverlapError(
        `extent [${x.start}, ${x.end}) overlaps partition ${t.name ?? ''} [${t.start}, ${t.end}) on drive ${driveId}`,
      );
    }
  }
}
