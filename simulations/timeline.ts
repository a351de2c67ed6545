// The policy-independent part of a run: when database clusters arrive and leave, their sizes and
// replica counts, and when scenario events happen. Every policy replays the same timeline.
import { Rng } from '../placement/rng.ts';
import type { Scenario, ScenarioEvent } from './scenario.ts';

export interface GroupArrival {
  kind: 'arrival';
  t: number;
  group: number;
  sizeBytes: number;
  replicaCount: number;
}
export interface GroupDelete {
  kind: 'delete';
  t: number;
  group: number;
}
export interface Sample {
  kind: 'sample';
  t: number;
}
export interface Uncordon {
  kind: 'uncordon';
  t: number;
  node: string;
}
/** A lost node back under its own name (a `nodeLoss` with `returnAfterHours`). */
export interface NodeReturn {
  kind: 'return';
  t: number;
  node: string;
  /** The nodeLoss event's index (its catch-ups count toward that event's settle time). */
  index: number;
}
/** A scenario event with `node: auto` resolved to a node name. */
export type ResolvedEvent = ScenarioEvent;
export interface ScenarioStep {
  kind: 'event';
  t: number;
  /** Position in the scenario's events (what settle times are reported against). */
  index: number;
  event: ResolvedEvent;
}
export type Step = GroupArrival | GroupDelete | Sample | Uncordon | NodeReturn | ScenarioStep;

const ORDER: Record<Step['kind'], number> = {
  event: 0,
  uncordon: 1,
  return: 1,
  delete: 2,
  arrival: 3,
  sample: 4,
};

/** `initialNodes` names the generated nodes, for events that say `node: auto`. */
export function buildTimeline(s: Scenario, initialNodes: readonly string[]): Step[] {
  const rng = new Rng(s.seed);
  const steps: Step[] = [];
  let t = 0;
  let group = 0;
  for (;;) {
    t += rng.exponential(1 / s.workload.arrivalsPerHour);
    if (t > s.durationHours) break;
    const sizeBytes = rng.weighted(s.workload.sizes);
    const replicaCount = rng.weighted(s.workload.replicaCounts);
    steps.push({ kind: 'arrival', t, group, sizeBytes, replicaCount });
    if (s.workload.lifetimeHours !== undefined) {
      const end = t + rng.exponential(s.workload.lifetimeHours);
      if (end <= s.durationHours) steps.push({ kind: 'delete', t: end, group });
    }
    group++;
  }
  const gone = new Set<string>();
  for (const [index, e] of s.events.entries()) {
    if (e.type === 'drain' || e.type === 'nodeLoss' || e.type === 'driveFailure') {
      const node = e.node === 'auto' ? rng.pick(initialNodes.filter((n) => !gone.has(n))) : e.node;
      if (e.type === 'nodeLoss') gone.add(node);
      if (e.type === 'drain' && e.uncordonAfterHours !== undefined) {
        steps.push({ kind: 'uncordon', t: e.at + e.uncordonAfterHours, node });
      }
      if (e.type === 'nodeLoss' && e.returnAfterHours !== undefined) {
        steps.push({ kind: 'return', t: e.at + e.returnAfterHours, node, index });
      }
      steps.push({ kind: 'event', t: e.at, index, event: { ...e, node } });
    } else steps.push({ kind: 'event', t: e.at, index, event: e });
  }
  for (let x = 0; x <= s.durationHours; x += s.sampleEveryHours) steps.push({ kind: 'sample', t: x });
  // Stable order: time, then kind, then insertion order.
  return steps
    .map((st, i) => ({ st, i }))
    .sort((a, b) => a.st.t - b.st.t || ORDER[a.st.kind] - ORDER[b.st.kind] || a.i - b.i)
    .map((x) => x.st);
}
