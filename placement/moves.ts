// What moving data costs and when it is worth it: a sync copies a member's bytes at the bandwidth
// one sync gets; data follows a pod only once the pod has stayed long enough to be likely to stay
// as long again; queued syncs run catch-ups and rebuilds first (a volume short of copies), then drains, then
// relocations, smallest first within each, so many small volumes become local before one big one.

/** `catch-up`: a member that was away (its node back under its own name) resyncs what changed. */
export type SyncKind = 'catch-up' | 'rebuild' | 'drain' | 'relocation';

export interface MovePolicy {
  /** A pod runs on its node at least this long before its data follows it (hysteresis). */
  dwellHours: number;
  /**
   * ...and at least this many times the move's own duration: a pod that has stayed T on a node is
   * taken to stay about T more, so a move is worth starting once that stay outweighs its copy time.
   */
  stayPerMoveHour: number;
  /** A relocation that found no room on the pod's node is tried again this much later. */
  retryHours: number;
}

/** Defaults chosen by the simulation sweep in docs/adr/0003-time-and-multi-resource-placement.md. */
export const DEFAULT_MOVE_POLICY: MovePolicy = { dwellHours: 1, stayPerMoveHour: 1, retryHours: 24 };

/** Hours a copy of `bytes` takes at `bytesPerSecond`. */
export function syncHours(bytes: number, bytesPerSecond: number): number {
  if (!(bytesPerSecond > 0)) throw new RangeError(`sync bandwidth must be > 0 (got ${bytesPerSecond})`);
  return bytes / bytesPerSecond / 3600;
}

/** How long after a pod lands on a node without its data the relocation should start. */
export function relocationDelayHours(bytes: number, bytesPerSecond: number, policy: MovePolicy): number {
  return Math.max(policy.dwellHours, policy.stayPerMoveHour * syncHours(bytes, bytesPerSecond));
}

// A catch-up restores a copy soonest (it copies only what changed), so it goes first.
const PRIORITY: Record<SyncKind, number> = { 'catch-up': 0, rebuild: 1, drain: 2, relocation: 3 };

export interface QueuedSync {
  kind: SyncKind;
  bytes: number;
  /** Arrival order, the last tie-break (FIFO). */
  seq: number;
}

/** Negative when `a` should start before `b`: safety first, then small first, then first come. */
export function compareSyncs(a: QueuedSync, b: QueuedSync): number {
  return PRIORITY[a.kind] - PRIORITY[b.kind] || a.bytes - b.bytes || a.seq - b.seq;
}
