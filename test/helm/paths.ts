// Where the helm binary lives: $MESHSTOR_HELM, else the versioned cache `npm run setup:helm` fills
// (outside the repo), built from helm's Go module.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const HELM_MODULE = 'helm.sh/helm/v3';
export const HELM_VERSION = 'v3.22.0';

export function helmCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(base, 'meshstor', 'helm', HELM_VERSION);
}

export function helmBinary(): string | undefined {
  const fromEnv = process.env.MESHSTOR_HELM;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  const cached = join(helmCacheDir(), 'bin', 'helm');
  return existsSync(cached) ? cached : undefined;
}

export function missingHelm(): string | undefined {
  if (helmBinary()) return undefined;
  return process.env.MESHSTOR_HELM
    ? `MESHSTOR_HELM=${process.env.MESHSTOR_HELM} does not exist`
    : `helm ${HELM_VERSION} is not built: run \`npm run setup:helm\` (needs Go) or set MESHSTOR_HELM`;
}
