// The rebuild reconciler (the active allocator only): a member whose node is lost (no heartbeat
// for the grace period, rebuilder.ts) gets a replacement placed by placement's planRebuild (the
// attached node preferred, then the spread rules), claimed in the ledger before the record names
// it, and added by the attached node's agent through the relocation steps (agent/relocation.ts);
// the lost member is Removed once the new one is in sync and wiped by its node when it returns.
// At most `perNode` full resyncs per node at once, the volumes with the fewest in-sync copies
// first. One volume's failure is reported as blocked; the others go on. ADR 0008.
// `meshstor controller` runs it every --resync-seconds, after the relocation pass.
import type { EventRecorder } from '../kube/events.ts';
import type { Logger } from '../kube/log.ts';
import type { NodeInfo } from '../placement/model.ts';
import type { VolumeRecord } from '../state/store.ts';
import type { Allocator } from './allocator.ts';
import { ownerOf } from './claims.ts';
import { claimStands, recordClaimedMember } from './member-claim.ts';
import {
  DEFAULT_LIVENESS,
  type Heartbeats,
  inSyncOnLiveNodes,
  type LivenessTimes,
  type NodeState,
  nodeStates,
  rebuildEngine,
  rebuildNeeded,
  rebuildOrder,
  resyncsPerNode,
  tidyRemoved,
} from './rebuilder.ts';
import { beginRelocation } from './relocator.ts';

/** Full resyncs (rebuilds and relocations) a node carries at once before more rebuilds wait. */
export const REBUILDS_PER_NODE = 2;

export interface RebuildPass {
  /** Rebuilds started: `volume: rX on lost-node -> rY on node`. */
  started: { volume: string; message: string }[];
  /** Volumes whose lost member was dropped from the record after its node wiped it (or left for good). */
  released: string[];
  /** Volumes with a lost member that cannot be rebuilt now, and why. */
  blocked: { volume: string; reason: string }[];
  /** Volumes waiting for a node's rebuild slots (expected under load, not a problem). */
  queued: string[];
  /** Members whose node is down but still within the grace period (caught up if it returns). */
  grace: { volume: string; replica: string; node: string; rebuildAt: number }[];
}

export interface RebuildOptions {
  /** The nodes' last heartbeats (cmd/controller.ts: from the MeshStorNodes). */
  heartbeats: () => Promise<Heartbeats>;
  times?: Partial<LivenessTimes>;
  perNode?: number;
  /** The elector that picks the one replica running this pass (default: the allocator's). */
  leader?: { isLeader: boolean } | undefined;
  now?: () => number;
}

export class RebuildReconciler {
  private readonly a: Allocator;
  private readonly o: RebuildOptions;
  private readonly times: LivenessTimes;
  /** Nodes named by records whose MeshStorNode is missing, since when this controller saw that. */
  private readonly missingSince = new Map<string, number>();

  constructor(allocator: Allocator, o: RebuildOptions) {
    this.a = allocator;
    this.o = o;
    this.times = { ...DEFAULT_LIVENESS, ...o.times };
  }

  async pass(): Promise<RebuildPass> {
    const a = this.a;
    const out: RebuildPass = { started: [], released: [], blocked: [], queued: [], grace: [] };
    if (!(this.o.leader?.isLeader ?? a.isLeader)) return out;
    const records = await a.store.list();
    const now = this.o.now?.() ?? Date.now();
    const beats = await this.o.heartbeats();
    const named = records.flatMap((r) => r.replicas.map((x) => x.node));
    const state = nodeStates(beats, named, this.missingSince, now, this.times);

    await this.tidy(records, state, out);

    const perNode = this.o.perNode ?? REBUILDS_PER_NODE;
    const load = resyncsPerNode(records);
    const full = (n: string) => (load.get(n) ?? 0) >= perNode;
    const wanted: { rec: VolumeRecord }[] = [];
    for (const rec of records) {
      const need = rebuildNeeded(rec, state);
      if (need?.kind === 'grace') {
        const since = beats.get(need.down.node) ?? this.missingSince.get(need.down.node) ?? now;
        out.grace.push({
          volume: rec.id,
          replica: need.down.id,
          node: need.down.node,
          // from the last heartbeat, so the time (and the Event saying it) is the same every pass
          rebuildAt: since + this.times.graceMs,
        });
      } else if (need?.kind === 'blocked') out.blocked.push({ volume: rec.id, reason: need.reason });
      else if (need?.kind === 'rebuild') wanted.push({ rec });
    }
    let nodes: NodeInfo[] | undefined;
    for (const { rec: listed } of rebuildOrder(wanted, state)) {
      const attached = listed.attachment?.node as string;
      if (full(attached)) {
        out.queued.push(listed.id);
        continue;
      }
      try {
        nodes ??= await a.inventory.nodes();
        const dest = await this.start(listed.id, state, nodes, full, out);
        if (dest) for (const n of new Set([attached, dest])) load.set(n, (load.get(n) ?? 0) + 1);
      } catch (e) {
        out.blocked.push({ volume: listed.id, reason: e instanceof Error ? e.message : String(e) });
      }
    }
    return out;
  }

  /**
   * Ended moves whose removed member's node is not up stop holding the volume; removed members
   * no agent reports any more leave the record, and then their ledger claims.
   */
  private async tidy(
    records: readonly VolumeRecord[],
    state: ReadonlyMap<string, NodeState>,
    out: RebuildPass,
  ): Promise<void> {
    const a = this.a;
    const candidates = records.filter(
      (r) => r.phase === 'Active' && r.replicas.some((x) => x.state === 'Removed'),
    );
    if (candidates.length === 0) return;
    const nodes = await a.inventory.nodes();
    for (const listed of candidates) {
      if (!tidyRemoved(structuredClone(listed), nodes, state)) continue;
      try {
        await a.perVolume.run(listed.id, async () => {
          const rec = await a.store.get(listed.id);
          if (!rec) return;
          const dropped = tidyRemoved(rec, nodes, state);
          if (!dropped) return;
          await a.store.replace(rec);
          // The record no longer holds the dropped members' bytes: their claims go too.
          if (dropped.length) {
            await a.claims.release(ownerOf(rec), dropped);
            out.released.push(rec.id);
          }
        });
      } catch (e) {
        out.blocked.push({ volume: listed.id, reason: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  /** Plans, claims and records one rebuild under the volume's lock; returns the new member's node. */
  private async start(
    id: string,
    state: ReadonlyMap<string, NodeState>,
    nodes: readonly NodeInfo[],
    full: (node: string) => boolean,
    out: RebuildPass,
  ): Promise<string | undefined> {
    const a = this.a;
    return a.perVolume.run(id, async () => {
      const rec = await a.store.get(id);
      const need = rec && rebuildNeeded(rec, state);
      if (!rec || need?.kind !== 'rebuild') return undefined;
      const added = await a.decide(async () => {
        // Decided on a fresh list (rebuilds are rare; the ledger refuses bytes a lagging list missed).
        const res = rebuildEngine(nodes, await a.store.list(), state).planRebuild(rec.id, need.lost.node);
        if (!res.ok) {
          out.blocked.push({ volume: rec.id, reason: res.message });
          return undefined;
        }
        const to = res.plan.to;
        if (res.noop || !to) return undefined;
        if (full(to.node)) {
          out.queued.push(rec.id);
          return undefined;
        }
        if (!beginRelocation(rec, res.plan)) return undefined;
        const lost = rec.replicas.find((x) => x.id === need.lost.id);
        if (lost) lost.state = 'Faulty';
        const member = rec.replicas.find((x) => x.id === to.replicaId);
        if (!member) return undefined;
        // As for CreateVolume and relocation: the bytes are claimed before the record names them.
        const refused = await recordClaimedMember(a, rec, member);
        if (refused) {
          out.blocked.push({ volume: rec.id, reason: refused });
          return undefined;
        }
        return member;
      });
      if (!added) return undefined;
      if (!(await claimStands(a, rec, added))) {
        out.blocked.push({ volume: rec.id, reason: 'the new extent lost its claim; retrying' });
        return undefined;
      }
      const copies = inSyncOnLiveNodes(rec, state).length;
      out.started.push({
        volume: rec.id,
        message: `${need.lost.id} on ${need.lost.node} (lost) -> ${added.id} on ${added.node}/${added.drive}, from ${copies} in-sync ${copies === 1 ? 'copy' : 'copies'}`,
      });
      return added.node;
    });
  }
}

/**
 * What a pass tells users: Normal Events while a member's node is down (when it will be rebuilt)
 * and when a rebuild starts, Warning Events when one cannot start; log lines for the rest. The
 * recorder writes one Event per reason and message per 10 minutes.
 */
export async function reportRebuildPass(
  p: RebuildPass,
  log: Pick<Logger, 'info' | 'warn'>,
  events: Pick<EventRecorder, 'note' | 'warn'> | undefined,
): Promise<void> {
  for (const g of p.grace) {
    // to the minute: the message stays the same from pass to pass (one Event, not one a pass)
    const at = new Date(Math.ceil(g.rebuildAt / 60_000) * 60_000).toISOString().replace(':00.000Z', 'Z');
    await events?.note(
      { kind: 'MeshStorVolume', name: g.volume },
      'MemberNodeDown',
      `${g.replica} on ${g.node}: the node's agent stopped reporting; rebuilt elsewhere at ${at} unless the node returns (then it is caught up from the bitmap)`,
    );
  }
  for (const st of p.started) {
    log.info(st, 'rebuild started');
    await events?.note({ kind: 'MeshStorVolume', name: st.volume }, 'RebuildStarted', st.message);
  }
  if (p.released.length) log.info({ volumes: p.released }, 'lost members released');
  if (p.queued.length) log.info({ volumes: p.queued }, 'rebuild queued behind running resyncs');
  for (const b of p.blocked) {
    log.warn(b, 'rebuild blocked');
    await events?.warn({ kind: 'MeshStorVolume', name: b.volume }, 'RebuildBlocked', b.reason);
  }
}
