// Renders the chart the way deploy/manifests/meshstor.yaml is made: `npm run manifests` writes
// it, and a unit test checks the committed file is exactly this rendering.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHART_DIR = join(dirname(fileURLToPath(import.meta.url)), 'meshstor');
export const MANIFESTS_FILE = join(CHART_DIR, '..', '..', 'manifests', 'meshstor.yaml');
export const RELEASE = 'meshstor';
export const NAMESPACE = 'meshstor-system';

/**
 * The chart's default values, with the CRDs and, since `kubectl apply` has no --create-namespace,
 * the Namespace object.
 */
export const MANIFEST_ARGS = ['--include-crds', '--set', 'namespace.create=true'];

export const MANIFESTS_HEADER = `# MeshStor, rendered from deploy/helm/meshstor with its default values by \`npm run manifests\`
# (helm template ${RELEASE} deploy/helm/meshstor -n ${NAMESPACE} ${MANIFEST_ARGS.join(' ')}).
# Do not edit: change the chart and re-render. Install: kubectl apply --server-side -f meshstor.yaml
`;

/** `helm <args>`; throws with helm's message when it fails. */
export function helm(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.error) throw new Error(`cannot run ${bin}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
  return r.stdout;
}

/** `helm template` of the chart in the release namespace, with extra arguments. */
export function renderChart(bin: string, extra: string[] = []): string {
  return helm(bin, ['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, ...extra]);
}

/** The plain manifests, as committed. */
export function renderManifests(bin: string): string {
  return MANIFESTS_HEADER + renderChart(bin, MANIFEST_ARGS);
}
