// Where the external-provisioner sidecar binary lives: $MESHSTOR_CSI_PROVISIONER, else the
// versioned cache `npm run setup:provisioner` fills (outside the repo).
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const PROVISIONER_MODULE = 'github.com/kubernetes-csi/external-provisioner/v6';
export const PROVISIONER_VERSION = 'v6.3.0';

export function provisionerCacheDir(): string {
  return join(
    process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'),
    'meshstor',
    'csi-provisioner',
    PROVISIONER_VERSION,
  );
}

export function provisionerBinary(): string | undefined {
  const fromEnv = process.env.MESHSTOR_CSI_PROVISIONER;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  const cached = join(provisionerCacheDir(), 'bin', 'csi-provisioner');
  return existsSync(cached) ? cached : undefined;
}
