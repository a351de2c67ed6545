// The agent's two clocks. The pass (exports, member states, relocation steps, wipes) runs every
// resync period and at once when a volume involving this node changes. The heartbeat (this node's
// MeshStorNode) runs on its own timer and never waits for a pass: the extender and NodeStage's
// takeover rule read it, so a pass stuck on one volume or failing on every volume must never make
// a live node look dead. Stopping aborts the host commands in flight.
import type { MeshStorVolume } from '../kube/crds.ts';
import type { Logger } from '../kube/log.ts';
import { every, type Periodic } from '../kube/periodic.ts';
import type { VolumeRecord } from '../state/store.ts';
import { describeCatchUp } from './catch-up.ts';
import { type AgentContext, reasonOf } from './context.ts';
import { type AgentPassResult, agentPass } from './pass.ts';

/** Writes this node's MeshStorNode (agent/publisher.ts in a cluster). */
export interface Heartbeat {
  publish(records: readonly VolumeRecord[]): Promise<void>;
}

/** Where per-volume problems (Warning Events) and progress (Normal Events) are told to users. */
export interface VolumeWarnings {
  warn(on: { kind: 'MeshStorVolume'; name: string }, reason: string, message: string): Promise<unknown>;
  note?(on: { kind: 'MeshStorVolume'; name: string }, reason: string, message: string): Promise<unknown>;
}

export interface AgentLoopOptions {
  context: Omit<AgentContext, 'signal'>;
  heartbeat?: Heartbeat | undefined;
  warnings?: VolumeWarnings | undefined;
  resyncMs: number;
  heartbeatMs: number;
  log: Logger;
  /** Hears every pass's result (the metrics). */
  onPass?: ((result: AgentPassResult) => void) | undefined;
}

/** Whether a change to this volume (before or after it) is work for the agent on `nodeName`. */
export function involvesNode(nodeName: string, v: MeshStorVolume | undefined): boolean {
  return (
    !!v && (v.spec.attachment?.node === nodeName || (v.spec.replicas ?? []).some((r) => r.node === nodeName))
  );
}

export class AgentLoop {
  private readonly o: AgentLoopOptions;
  private readonly stopping = new AbortController();
  private passes: Periodic | undefined;
  private beats: Periodic | undefined;
  /** The last pass's result (tests and the metrics read it). */
  last: AgentPassResult | undefined;

  constructor(o: AgentLoopOptions) {
    this.o = o;
  }

  /** Aborts when the loop stops: the agent's other work (the CSI server's calls) can follow it. */
  get signal(): AbortSignal {
    return this.stopping.signal;
  }

  start(): void {
    this.passes = every(this.o.resyncMs, async () => void (await this.pass()));
    if (this.o.heartbeat) this.beats = every(this.o.heartbeatMs, () => this.beat());
  }

  /** Runs a pass now (after the running one). */
  kick(): void {
    this.passes?.kick();
  }

  /** A MeshStorVolume changed: runs a pass at once when it involves this node. */
  volumeChanged(before: MeshStorVolume | undefined, after: MeshStorVolume | undefined): void {
    const me = this.o.context.nodeName;
    if (involvesNode(me, before) || involvesNode(me, after)) this.kick();
  }

  /** Publishes the heartbeat once; its failure is logged, never thrown. */
  async beat(): Promise<void> {
    try {
      await this.o.heartbeat?.publish(await this.o.context.store.list());
    } catch (e) {
      this.o.log.warn({ error: reasonOf(e) }, 'heartbeat not published');
    }
  }

  /** One pass with its report; never throws (a pass that cannot list the volumes is logged). */
  async pass(): Promise<AgentPassResult | undefined> {
    const log = this.o.log;
    try {
      const r = await agentPass({ ...this.o.context, signal: this.stopping.signal });
      this.last = r;
      this.o.onPass?.(r);
      await this.report(r);
      return r;
    } catch (e) {
      if (this.stopping.signal.aborted) log.info({ error: reasonOf(e) }, 'pass abandoned');
      else log.warn({ error: reasonOf(e) }, 'pass failed');
      return undefined;
    }
  }

  private async report(r: AgentPassResult): Promise<void> {
    const { log, warnings } = this.o;
    if (r.fenced.length) log.warn({ volumes: r.fenced }, 'fenced: attached to another node now');
    const x = r.exports;
    if (x.created.length) log.info({ replicas: x.created }, 'partitions created');
    if (x.exported.length) log.info({ replicas: x.exported }, 'exported');
    if (x.unexported.length) log.info({ replicas: x.unexported }, 'unexported');
    for (const w of x.waiting) log.info(w, 'waiting to export');
    const stopping = this.stopping.signal.aborted;
    for (const f of x.failed) {
      // a step the stop cut short is resumable, not a failure: no warning, no Event on the volume
      if (stopping) {
        log.info(f, 'volume step abandoned');
        continue;
      }
      log.warn(f, 'replica not served');
      await warnings
        ?.warn(
          { kind: 'MeshStorVolume', name: f.volume },
          'ReplicaNotServed',
          `node ${this.o.context.nodeName}, replica ${f.replica}: ${f.reason}`,
        )
        .catch(() => undefined);
    }
    if (r.members.length) log.info({ volumes: r.members }, 'member states reported');
    for (const c of r.catchUps) {
      log.info({ ...c }, 'member catching up from the bitmap');
      await warnings
        ?.note?.({ kind: 'MeshStorVolume', name: c.volume }, 'MemberCatchingUp', describeCatchUp(c))
        .catch(() => undefined);
    }
    if (r.readPreference.length) log.info({ volumes: r.readPreference }, 'remote members write-mostly');
    for (const p of r.relocations) log.info({ ...p }, 'relocation');
    if (r.staleAttachments.length)
      log.info({ volumes: r.staleAttachments }, 'deleted volumes not staged here: attachment cleared');
    if (r.deletions.wiped.length) log.info({ partitions: r.deletions.wiped }, 'wiped');
    for (const w of r.deletions.waiting) log.info(w, 'waiting to wipe');
    for (const f of r.failures) {
      if (stopping) {
        log.info(f, 'volume step abandoned');
        continue;
      }
      log.warn(f, 'volume step failed');
      if (f.volume === '*' || f.step === 'deletion') continue; // not one volume's (a partition's, or the step's)
      await warnings
        ?.warn(
          { kind: 'MeshStorVolume', name: f.volume },
          'AgentStepFailed',
          `node ${this.o.context.nodeName}, ${f.step}: ${f.reason}`,
        )
        .catch(() => undefined);
    }
  }

  /** Stops both clocks and aborts the host commands in flight; resolves when the running pass ended. */
  async stop(): Promise<void> {
    this.stopping.abort(new Error('the agent is stopping'));
    await Promise.all([this.passes?.stop(), this.beats?.stop()]);
  }
}
