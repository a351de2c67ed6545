// Asking MeshStor to move every replica off a node: the Node label `meshstor.io/evacuate=true`
// (`meshstor drain NODE --yes` sets it with the cordon; an admin may set it by hand). A label, not
// an annotation, so the controller lists only the evacuating Nodes (a label selector) instead of
// every Node of a 5,000-node cluster on each pass.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

export const EVACUATE_LABEL = 'meshstor.io/evacuate';

/** Whether a Node's labels ask for its evacuation. */
export function evacuationRequested(labels: Readonly<Record<string, string>> | undefined): boolean {
  return labels?.[EVACUATE_LABEL] === 'true';
}

/** Reads the names of the Nodes being evacuated (one list call with a label selector). */
export function evacuatingNodes(kc: KubeConfig): () => Promise<ReadonlySet<string>> {
  const api = kc.makeApiClient(CoreV1Api);
  return async () => {
    const list = await api.listNode({ labelSelector: `${EVACUATE_LABEL}=true` });
    return new Set(list.items.map((n) => n.metadata?.name).filter((n): n is string => !!n));
  };
}
