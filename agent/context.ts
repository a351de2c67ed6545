// What every step of the agent's pass works with, and how a step reports one volume's failure
// without stopping the others: one volume that cannot be served must never make a live node look
// dead (the MeshStorNode heartbeat) or hold up the other volumes.
import type { KeyedLock } from '../state/lock.ts';
import type { PeerDirectory, VolumeRecord, VolumeStore } from '../state/store.ts';
import type { Host, ListenAddress } from './host/types.ts';
import type { NodeKeys } from './node-keys.ts';

export interface AgentContext {
  nodeName: string;
  host: Host;
  store: VolumeStore;
  /** Where this node's NVMe-oF target listens. */
  listen: ListenAddress;
  /** Shared with the node service: a volume is never staged and worked on here at the same time. */
  locks: KeyedLock;
  /**
   * Other nodes' NVMe-oF addresses and health: a member back on its node is connected again
   * (catch-up), and the key step hands live connections their new keys.
   */
  peers?: PeerDirectory | undefined;
  /** Aborts the host commands in flight when the agent stops (SIGTERM). */
  signal?: AbortSignal | undefined;
  /** DH-HMAC-CHAP keys per node pair (ADR 0007); without them exports and connects are unauthenticated. */
  keys?: NodeKeys | undefined;
  /**
   * md's resync speed cap (KiB/s) for an array while a member is added to it (a rebuild or a
   * relocation: a full copy), so one array cannot take the node's bandwidth; undefined: md's own.
   */
  resyncMaxKibPerSec?: number | undefined;
  /**
   * L of ADR 0006 for the remote legs this node connects: the ctrl-loss-tmo of its write-right
   * timing (`meshstor agent --lease-seconds`); undefined: the default lease's (`remoteLegCtrlLossSec`).
   */
  remoteCtrlLossTmoSec?: number | undefined;
}

/** One volume a step could not finish, and why; the step goes on with the others. */
export interface VolumeFailure {
  step:
    | 'fence'
    | 'exports'
    | 'keys'
    | 'members'
    | 'catch-up'
    | 'read-preference'
    | 'relocation'
    | 'snapshot'
    | 'deletion';
  volume: string;
  reason: string;
}

export const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Runs `work` for each record, each on its own: a throw is recorded as that volume's failure and
 * the next volume runs. A stop (the context's signal) ends the loop between volumes.
 */
export async function eachVolume<T>(
  ctx: AgentContext,
  step: VolumeFailure['step'],
  records: readonly VolumeRecord[],
  failures: VolumeFailure[],
  work: (rec: VolumeRecord) => Promise<T | undefined>,
): Promise<T[]> {
  const out: T[] = [];
  for (const rec of records) {
    if (ctx.signal?.aborted) break;
    try {
      const r = await work(rec);
      if (r !== undefined) out.push(r);
    } catch (e) {
      failures.push({ step, volume: rec.id, reason: reasonOf(e) });
    }
  }
  return out;
}
