// Where the csi-sanity binary lives: $MESHSTOR_CSI_SANITY, else the versioned cache that
// `npm run setup:sanity` fills (outside the repo).
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const CSI_TEST_VERSION = 'v5.4.0';
export const CSI_TEST_MODULE = 'github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity';

export function sanityCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(base, 'meshstor', 'csi-sanity', CSI_TEST_VERSION);
}

export function csiSanityBinary(): string | undefined {
  const fromEnv = process.env.MESHSTOR_CSI_SANITY;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  const cached = join(sanityCacheDir(), 'bin', 'csi-sanity');
  return existsSync(cached) ? cached : undefined;
}

export function missingSanity(): string | undefined {
  if (csiSanityBinary()) return undefined;
  return process.env.MESHSTOR_CSI_SANITY
    ? `MESHSTOR_CSI_SANITY=${process.env.MESHSTOR_CSI_SANITY} does not exist`
    : `csi-sanity ${CSI_TEST_VERSION} is not built: run \`npm run setup:sanity\` (needs Go) or set MESHSTOR_CSI_SANITY`;
}
