// The kube-scheduler extender wire format (k8s.io/kube-scheduler/extender/v1). Its Go structs have
// no JSON tags, so the keys are the Go field names, capitalised. Only the parts MeshStor reads are
// checked; everything else in the Pod passes through untouched.
import { z } from 'zod';

const volumeSchema = z.looseObject({
  name: z.string(),
  persistentVolumeClaim: z.looseObject({ claimName: z.string().min(1) }).nullish(),
  ephemeral: z.looseObject({}).nullish(),
});

export const podSchema = z.looseObject({
  metadata: z.looseObject({
    name: z.string().min(1),
    namespace: z.string().optional(),
    uid: z.string().optional(),
  }),
  spec: z
    .looseObject({
      volumes: z.array(volumeSchema).nullish(),
    })
    .optional(),
});
export type WirePod = z.infer<typeof podSchema>;

/** ExtenderArgs. With nodeCacheCapable: true only NodeNames is set; otherwise Nodes (a NodeList). */
export const extenderArgsSchema = z
  .object({
    Pod: podSchema,
    Nodes: z
      .looseObject({
        items: z.array(z.looseObject({ metadata: z.looseObject({ name: z.string() }) })).nullish(),
      })
      .nullish(),
    NodeNames: z.array(z.string()).nullish(),
  })
  .refine((a) => a.NodeNames != null || a.Nodes != null, {
    message: 'ExtenderArgs needs NodeNames (nodeCacheCapable: true) or Nodes',
  });
export type ExtenderArgs = z.infer<typeof extenderArgsSchema>;

/** ExtenderFilterResult. */
export interface ExtenderFilterResult {
  Nodes?: { items: unknown[] } | null;
  NodeNames?: string[] | null;
  /** Nodes that failed, with a reason; preemption might help. */
  FailedNodes: Record<string, string>;
  /** Nodes that failed, with a reason; preemption cannot help. */
  FailedAndUnresolvableNodes: Record<string, string>;
  Error: string;
}

/** One entry of HostPriorityList. Score is 0..10 (MaxExtenderPriority). */
export interface HostPriority {
  Host: string;
  Score: number;
}

/** The candidate node names of a request, whichever form they came in. */
export function candidateNames(args: ExtenderArgs): string[] {
  if (args.NodeNames != null) return args.NodeNames;
  return (args.Nodes?.items ?? []).map((n) => n.metadata.name);
}

/** A readable one-line account of what is wrong with a request body. */
export function describeIssues(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`)
    .join('; ');
}
