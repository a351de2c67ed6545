// Where the external-snapshotter's two binaries and the VolumeSnapshot CRDs live: the versioned
// caches `npm run setup:snapshotter` fills (outside the repo). One release for both binaries and the
// CRDs, as the external-snapshotter's docs require: the sidecar (csi-snapshotter, beside the CSI
// controller) and the snapshot-controller (once per cluster) speak through those CRDs.
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const SNAPSHOTTER_MODULE = 'github.com/kubernetes-csi/external-snapshotter/v8';
/** Its client module: the CRDs ship in it (config/crd), and the binaries are built against it. */
export const SNAPSHOTTER_CLIENT_MODULE = 'github.com/kubernetes-csi/external-snapshotter/client/v8';
export const SNAPSHOTTER_VERSION = 'v8.7.0';

const cacheBase = () => join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'meshstor');

export const snapshotterCacheDir = (name: 'csi-snapshotter' | 'snapshot-controller' | 'snapshot-crds') =>
  join(cacheBase(), name, SNAPSHOTTER_VERSION);

function cached(name: 'csi-snapshotter' | 'snapshot-controller'): string | undefined {
  const path = join(snapshotterCacheDir(name), 'bin', name);
  return existsSync(path) ? path : undefined;
}

export const csiSnapshotterBinary = () => cached('csi-snapshotter');
export const snapshotControllerBinary = () => cached('snapshot-controller');

/** The VolumeSnapshotClass, VolumeSnapshotContent and VolumeSnapshot CRD files, or undefined. */
export function snapshotCrdFiles(): string[] | undefined {
  const dir = snapshotterCacheDir('snapshot-crds');
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  return files.length >= 3 ? files.map((f) => join(dir, f)) : undefined;
}

export function missingSnapshotter(): string | undefined {
  if (csiSnapshotterBinary() && snapshotControllerBinary() && snapshotCrdFiles()) return undefined;
  return `external-snapshotter ${SNAPSHOTTER_VERSION} is not built: run \`npm run setup:snapshotter\` (needs Go)`;
}
