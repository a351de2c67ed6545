// Scenario files: a cluster, a workload, events and the policies to compare, validated with zod
// so a bad file fails with the path of every problem in it.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { POLICIES } from '../placement/policies.ts';
import { parseBytes } from '../placement/units.ts';

const bytes = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseBytes(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const weighted = <T extends z.ZodType>(value: T) =>
  z.array(z.object({ value, weight: z.number().positive() }).strict()).min(1);

const nodeType = z
  .object({
    name: z.string().min(1),
    weight: z.number().positive().default(1),
    osDrive: z.object({ size: bytes, used: bytes }).strict().optional(),
    drives: z.array(bytes).default([]),
    logicalBlockSize: z.union([z.literal(512), z.literal(4096)]).default(512),
  })
  .strict();

const cluster = z
  .object({
    zones: z.array(z.string().min(1)).min(1),
    nodesPerZone: z.number().int().positive(),
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
    sizes: weighted(bytes),
    replicaCounts: weighted(z.number().int().min(1).max(5)),
    spread: z.enum(['required', 'preferred', 'none']).default('preferred'),
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
  z.object({ at: z.number().nonnegative(), type: z.literal('nodeLoss'), node: nodeRef }).strict(),
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
    })
    .strict(),
]);

const policyNames = POLICIES.map((p) => p.name);

export const scenarioSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits and dashes'),
    description: z.string().default(''),
    seed: z.number().int(),
    durationHours: z.number().positive(),
    sampleEveryHours: z.number().positive().default(24),
    cluster,
    workload,
    events: z.array(event).default([]),
    policies: z
      .array(
        z
          .string()
          .refine((p) => policyNames.includes(p), { message: `known policies: ${policyNames.join(', ')}` }),
      )
      .min(1)
      .default(policyNames),
  })
  .strict()
  .superRefine((s, ctx) => {
    const types = new Set(s.cluster.nodeTypes.map((t) => t.name));
    s.events.forEach((e, i) => {
      if (e.type === 'nodeAdded') {
        if (!types.has(e.nodeType))
          ctx.addIssue({
            code: 'custom',
            path: ['events', i, 'nodeType'],
            message: `no node type "${e.nodeType}"`,
          });
        if (!s.cluster.zones.includes(e.zone))
          ctx.addIssue({ code: 'custom', path: ['events', i, 'zone'], message: `no zone "${e.zone}"` });
      }
      if (e.at > s.durationHours)
        ctx.addIssue({
          code: 'custom',
          path: ['events', i, 'at'],
          message: `after the end (${s.durationHours} h)`,
        });
    });
    s.cluster.nodeTypes.forEach((t, i) => {
      if (!t.osDrive && t.drives.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['cluster', 'nodeTypes', i],
          message: 'a node type needs drives or an OS drive',
        });
      }
      if (t.osDrive && t.osDrive.used >= t.osDrive.size) {
        ctx.addIssue({
          code: 'custom',
          path: ['cluster', 'nodeTypes', i, 'osDrive', 'used'],
          message: 'must be smaller than the drive',
        });
      }
    });
  });

export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioEvent = Scenario['events'][number];

export class ScenarioError extends Error {
  constructor(source: string, problems: string[]) {
    super(`scenario ${source} is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ScenarioError';
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
