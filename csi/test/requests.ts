// Request shapes and helpers shared by the node service tests.
import { codeFor } from '../errors.ts';

export const mountCap = {
  mount: { fs_type: 'xfs', mount_flags: [], volume_mount_group: '' },
  access_mode: { mode: 'SINGLE_NODE_WRITER' as const },
};

export const stageRequest = (volume_id: string, staging_target_path = '/stage/x') => ({
  volume_id,
  staging_target_path,
  volume_capability: mountCap,
  volume_context: {},
});

/** The gRPC status code a call ends with, or 'OK'. */
export const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return codeFor(e);
  }
};
