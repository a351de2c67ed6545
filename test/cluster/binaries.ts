// Where the control-plane binaries of the `cluster` tier live, and which are missing.
// MESHSTOR_K8S_BIN points at a directory someone already has; otherwise the cache
// ~/.cache/k8s-test-bins/<version>/bin (outside the repository, keyed by version) that
// `npm run setup:cluster` fills.
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The Kubernetes release the tier runs against (any k8s.io/kubernetes tag >= v1.34). */
export const K8S_VERSION = process.env.MESHSTOR_K8S_VERSION ?? 'v1.36.3';
export const BINARIES = ['etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager'] as const;
export type Binary = (typeof BINARIES)[number];

export function cacheDir(version: string = K8S_VERSION): string {
  const root = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(root, 'k8s-test-bins', version);
}

export function binDir(): string {
  return process.env.MESHSTOR_K8S_BIN ?? join(cacheDir(), 'bin');
}

export function binPath(name: Binary): string {
  return join(binDir(), name);
}

export function missingBinaries(): Binary[] {
  return BINARIES.filter((b) => {
    try {
      accessSync(binPath(b), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}
