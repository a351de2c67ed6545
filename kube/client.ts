// Kubernetes client construction: one KubeConfig from --kubeconfig, $KUBECONFIG, or in-cluster.
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new Error(
      `no Kubernetes cluster in ${file ?? 'the default kubeconfig or the in-cluster environment'}`,
    );
  }
  return kc;
}

/** A readable message for an error from the Kubernetes client (ApiException carries the Status body). */
export function kubeErrorMessage(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && 'body' in e) {
    const body = (e as { body: unknown }).body;
    let msg = typeof body === 'string' ? body : JSON.stringify(body);
    try {
      const parsed = typeof body === 'string' ? (JSON.parse(body) as { message?: string }) : undefined;
      if (parsed?.message) msg = parsed.message;
    } catch {
      // body was not JSON: keep it as it is
    }
    return `HTTP ${(e as { code: number }).code}: ${msg}`;
  }
  return e instanceof Error ? e.message : String(e);
}

/** The HTTP status of a failed Kubernetes API call (404, 409, …), or 0 when it is not one. */
export function httpStatusOf(e: unknown): number {
  return e && typeof e === 'object' && 'code' in e && typeof e.code === 'number' ? e.code : 0;
}
