// StorageClass parameters: every key is known or refused by name, every value checked.
import { MAX_REPLICAS } from '../placement/engine.ts';
import type { SpreadPolicy } from '../placement/model.ts';
import { invalid } from './errors.ts';
import type { StringMap } from './types.ts';
import { shown } from './validate.ts';

export interface VolumeParameters {
  replicaCount: number;
  spread: SpreadPolicy;
  fsType: 'xfs';
}

/** Keys external-provisioner adds or reserves; they are metadata, not our parameters. */
const RESERVED_PREFIX = 'csi.storage.k8s.io/';

const KNOWN = ['replicaCount', 'spread', 'spreadDomain', 'fsType'] as const;

export function parseParameters(params: StringMap): VolumeParameters {
  for (const key of Object.keys(params)) {
    if (key.startsWith(RESERVED_PREFIX)) continue;
    if (!(KNOWN as readonly string[]).includes(key)) {
      throw invalid(`unknown StorageClass parameter ${shown(key)} (known: ${KNOWN.join(', ')})`);
    }
  }
  const rc = params.replicaCount ?? '1';
  if (!/^\d+$/.test(rc) || Number(rc) < 1 || Number(rc) > MAX_REPLICAS) {
    throw invalid(
      `StorageClass parameter "replicaCount" must be a whole number from 1 to ${MAX_REPLICAS} (got ${shown(rc)})`,
    );
  }
  const mode = params.spread ?? 'preferred';
  if (mode !== 'required' && mode !== 'preferred' && mode !== 'none') {
    throw invalid(`StorageClass parameter "spread" must be required, preferred or none (got ${shown(mode)})`);
  }
  const domain = params.spreadDomain ?? 'zone';
  if (domain !== 'zone' && domain !== 'rack') {
    throw invalid(`StorageClass parameter "spreadDomain" must be zone or rack (got ${shown(domain)})`);
  }
  const fsType = params.fsType ?? 'xfs';
  if (fsType !== 'xfs') throw invalid(`StorageClass parameter "fsType" must be xfs (got ${shown(fsType)})`);
  return { replicaCount: Number(rc), spread: { domain, mode }, fsType };
}
