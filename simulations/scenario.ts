// Scenario files: a cluster, a workload, events and the policies to compare, validated with zod
// so a bad file fails with the path of every problem in it.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_MOVE_POLICY } from '../placement/moves.ts';
import { ALL_POLICIES, POLICIES } from '../placement/policies.ts';
import { MiB, parseBytes } from '../placement/units.ts';

const bytes = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseBytes(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const positiveBytes = bytes.refine((b) => b > 0, 'must be more than 0 bytes');

/** Bytes per second: "2GB", "200MB/s" or a number. */
const bandwidth = z
  .union([z.string().transform((t) => t.replace(/\/s$/, '')), z.number()])
  .pipe(positiveBytes);

/** What the generator puts before the root partition on an OS drive (cluster-gen.ts). */
export const OS_DRIVE_HEAD = 513 * MiB;

/** Upper bounds that keep a scenario from running for hours or exhausting memory. */
export const LIMITS = { hours: 87_600, nodes: 20_000, samples: 100_000, arrivals: 2_000_000 };

const weighted = <T extends z.ZodType>(value: T) =>
  z.array(z.object({ value, weight: z.number().positive() }).strict()).min(1);

const nodeType = z
  .object({
    name: z.string().min(1),
    weight: z.number().positive().default(1),
    osDrive: z.object({ size: positiveBytes, used: bytes }).strict().optional(),
    drives: z.array(positiveBytes).default([]),
    logicalBlockSize: z.union([z.literal(512), z.literal(4096)]).default(512),
  })
  .strict();

const cluster = z
  .object({
    zones: z.array(z.string().min(1)).min(1),
    /** One count for every zone, or a count per zone (zone skew). */
    nodesPerZone: z.union([
      z.number().int().positive(),
      z.record(z.string(), z.number().int().nonnegative()),
    ]),
    racksPerZone: z.number().int().positive().default(1),
    gptSlots: z.number().int().min(4).max(16384).default(128),
    nodeTypes: z.array(nodeType).min(1),
  })
  .strict();

const workload = z
  .object({
    binding: z.enum(['WaitForFirstConsumer', 'Immediate']).default('WaitForFirstConsumer'),
    arrivalsPerHour: z.number().positive(),
    /** Mean lifetime of a database cluster (its volumes are deleted together); omit: forever. */
    lifetimeHours: z.number().positive().optional(),
    /** Instances per database cluster: each has its own volume; their pods avoid each other. */
    groupSize: z.number().int().min(1).max(9).default(1),
    sizes: weighted(positiveBytes),
    replicaCounts: weighted(z.number().int().min(1).max(5)),
    spread: z.enum(['required', 'preferred', 'none']).default('preferred'),
    /** The extender ranks nodes with room for a new volume by the policy (ScoreOptions.rankRoom). */
    extenderRanksRoom: z.boolean().default(true),
  })
  .strict();

const nodeRef = z.string().min(1).default('auto');
const event = z.discriminatedUnion('type', [
  z
    .object({
      at: z.number().nonnegative(),
      type: z.literal('drain'),
      node: nodeRef,
      uncordonAfterHours: z.number().positive().optional(),
    })
    .strict(),
  z
    .object({
      at: z.number().nonnegative(),
      type: z.literal('nodeLoss'),
      node: nodeRef,
      /** The node comes back under its own name, drives intact (a reboot, a partition healed). */
      returnAfterHours: z.number().positive().max(LIMITS.hours).optional(),
    })
    .strict(),
  z.object({ at: z.number().nonnegative(), type: z.literal('zoneOutage'), zone: z.string().min(1) }).strict(),
  z
    .object({
      at: z.number().nonnegative(),
      type: z.literal('driveFailure'),
      node: nodeRef,
      /** Which of the node's drives, in the order the node type lists them (the OS drive first). */
      drive: z.number().int().nonnegative().max(64).default(0),
    })
    .strict(),
  z
    .object({
      at: z.number().nonnegative(),
      type: z.literal('nodeAdded'),
      nodeType: z.string().min(1),
      zone: z.string().min(1),
    })
    .strict(),
  z
    .object({
      at: z.number().nonnegative(),
      type: z.literal('evictionStorm'),
      fraction: z.number().gt(0).max(1),
      /** Only pods running in this zone are evicted (they may land anywhere). */
      zone: z.string().min(1).optional(),
    })
    .strict(),
]);

/** How syncs take time (defaults: 25 Gbit/s network, md's default 200 MB/s sync_speed_max). */
const sync = z
  .object({
    driveBandwidth: bandwidth.default(2e9),
    networkBandwidth: bandwidth.default(3.125e9),
    perSyncCap: bandwidth.default(2e8),
    concurrentPerNode: z.number().int().min(1).max(64).default(2),
    /**
     * Bytes each volume writes per hour: what a member that was away must catch up (md's
     * write-intent bitmap resyncs only what changed; never more than the volume).
     */
    writtenPerVolumeHour: z
      .number()
      .nonnegative()
      .max(2 ** 50)
      .default(2 ** 30),
  })
  .strict();

const moves = z
  .object({
    dwellHours: z.number().nonnegative().max(10_000).default(DEFAULT_MOVE_POLICY.dwellHours),
    stayPerMoveHour: z.number().nonnegative().max(1_000).default(DEFAULT_MOVE_POLICY.stayPerMoveHour),
    retryHours: z.number().min(0.1).max(10_000).default(DEFAULT_MOVE_POLICY.retryHours),
  })
  .strict();

const policyNames = POLICIES.map((p) => p.name);
const knownPolicies = ALL_POLICIES.map((p) => p.name);

export const scenarioSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits and dashes'),
    description: z.string().default(''),
    seed: z.number().int(),
    durationHours: z.number().positive().max(LIMITS.hours),
    sampleEveryHours: z.number().positive().default(24),
    cluster,
    workload,
    events: z.array(event).default([]),
    /** Extra output files: `placements` writes placements.csv (every member of every volume). */
    outputs: z
      .object({ placements: z.boolean().default(false) })
      .strict()
      .default({ placements: false }),
    sync: sync.default(sync.parse({})),
    moves: moves.default(moves.parse({})),
    policies: z
      .array(
        z.string().refine((p) => knownPolicies.includes(p), {
          message: `known policies: ${knownPolicies.join(', ')}`,
        }),
      )
      .min(1)
      .default(policyNames),
  })
  .strict()
  .superRefine((s, ctx) => {
    const problem = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    const types = new Set(s.cluster.nodeTypes.map((t) => t.name));
    const counts = zoneCounts(s.cluster);
    if (typeof s.cluster.nodesPerZone === 'object') {
      for (const z of Object.keys(s.cluster.nodesPerZone)) {
        if (!s.cluster.zones.includes(z)) problem(['cluster', 'nodesPerZone', z], `no zone "${z}"`);
      }
    }
    const total = counts.reduce((a, b) => a + b, 0);
    if (total === 0) problem(['cluster', 'nodesPerZone'], 'the cluster has no nodes');
    if (total > LIMITS.nodes) problem(['cluster', 'nodesPerZone'], `${total} nodes: at most ${LIMITS.nodes}`);
    const names = new Set(total <= LIMITS.nodes ? nodeNames(s.cluster) : []);
    if (s.durationHours / s.sampleEveryHours > LIMITS.samples) {
      problem(['sampleEveryHours'], `more than ${LIMITS.samples} samples; sample less often`);
    }
    if (s.workload.arrivalsPerHour * s.durationHours > LIMITS.arrivals) {
      problem(
        ['workload', 'arrivalsPerHour'],
        `about ${Math.round(s.workload.arrivalsPerHour * s.durationHours)} arrivals: at most ${LIMITS.arrivals}`,
      );
    }
    s.events.forEach((e, i) => {
      if (e.type === 'nodeAdded') {
        if (!types.has(e.nodeType)) problem(['events', i, 'nodeType'], `no node type "${e.nodeType}"`);
        if (!s.cluster.zones.includes(e.zone)) problem(['events', i, 'zone'], `no zone "${e.zone}"`);
      }
      if (
        (e.type === 'zoneOutage' || (e.type === 'evictionStorm' && e.zone !== undefined)) &&
        !s.cluster.zones.includes(e.zone as string)
      ) {
        problem(['events', i, 'zone'], `no zone "${e.zone}"`);
      }
      if (e.type === 'driveFailure') {
        const fewest = Math.min(...s.cluster.nodeTypes.map((t) => t.drives.length + (t.osDrive ? 1 : 0)));
        if (e.drive >= fewest) {
          problem(['events', i, 'drive'], `drive ${e.drive}: some node type has only ${fewest} drive(s)`);
        }
      }
      if (
        (e.type === 'drain' || e.type === 'nodeLoss' || e.type === 'driveFailure') &&
        e.node !== 'auto' &&
        !names.has(e.node)
      ) {
        problem(['events', i, 'node'], `no node "${e.node}" (nodes are named <zone>-NN, from 00)`);
      }
      if (e.at > s.durationHours) problem(['events', i, 'at'], `after the end (${s.durationHours} h)`);
    });
    s.cluster.nodeTypes.forEach((t, i) => {
      if (!t.osDrive && t.drives.length === 0) {
        problem(['cluster', 'nodeTypes', i], 'a node type needs drives or an OS drive');
      }
      if (t.osDrive && t.osDrive.used >= t.osDrive.size) {
        problem(['cluster', 'nodeTypes', i, 'osDrive', 'used'], 'must be smaller than the drive');
      } else if (t.osDrive && OS_DRIVE_HEAD + t.osDrive.used + MiB > t.osDrive.size) {
        problem(
          ['cluster', 'nodeTypes', i, 'osDrive', 'used'],
          'the root partition (after 513 MiB of EFI and alignment) ends past the end of the drive',
        );
      }
    });
  });

type ClusterSpec = { zones: string[]; nodesPerZone: number | Record<string, number> };

/** Nodes in each zone, in the order of `zones`. */
export function zoneCounts(c: ClusterSpec): number[] {
  return c.zones.map((z) => (typeof c.nodesPerZone === 'number' ? c.nodesPerZone : (c.nodesPerZone[z] ?? 0)));
}

/** The generated nodes' names, zone by zone: `<zone>-NN`. */
export function nodeNames(c: ClusterSpec): string[] {
  const counts = zoneCounts(c);
  return c.zones.flatMap((z, i) =>
    Array.from({ length: counts[i] as number }, (_, k) => `${z}-${String(k).padStart(2, '0')}`),
  );
}

export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioEvent = Scenario['events'][number];

export class ScenarioError extends Error {
  constructor(source: string, problems: string[]) {
    super(`scenario ${source} is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ScenarioError';
  }
}

/**
 * A simulation that cannot run or write its outputs for a reason the user can fix (a bad --out):
 * a ScenarioError so the command prints the message without a stack trace.
 */
export class SimulationInputError extends ScenarioError {
  constructor(message: string) {
    super('', []);
    this.message = message;
    this.name = 'SimulationInputError';
  }
}

export function parseScenario(text: string, source = '(inline)'): Scenario {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ScenarioError(source, [`YAML: ${(e as Error).message.split('\n')[0]}`]);
  }
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) {
    throw new ScenarioError(
      source,
      r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top)'}: ${i.message}`),
    );
  }
  return r.data;
}
