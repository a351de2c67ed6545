// A member on another node, connected from the node running the array by the agent's pass (a
// member back from a reboot, a relocation's new member on another node): only once its node's
// agent is ready, and its owner exports it here (until then the target refuses us: next pass).
import type { VolumeRecord } from '../state/store.ts';
import type { AgentContext } from './context.ts';
import { ConnectRefusedError } from './host/errors.ts';
import { subsystemNqn } from './host/names.ts';
import { remoteLegCtrlLossSec } from './write-right.ts';

/** The member's block device here: connected already, connected now, or undefined (not yet). */
export async function connectRemoteMember(
  o: Pick<AgentContext, 'host' | 'peers' | 'remoteCtrlLossTmoSec'>,
  rec: VolumeRecord,
  r: VolumeRecord['replicas'][number],
): Promise<string | undefined> {
  const nqn = subsystemNqn({ volumeId: rec.id, replicaId: r.id });
  const have = await o.host.findDeviceByNqn(nqn);
  if (have) return have;
  const peer = await o.peers?.peer(r.node);
  if (!peer?.ready) return undefined;
  try {
    // L of ADR 0006 like every remote leg: once in sync this member carries acknowledged writes,
    // and a shorter L would let a stalled write complete on the other legs before the fence
    return await o.host.connect({
      subsystemNqn: nqn,
      target: peer.address,
      ctrlLossTmoSec: remoteLegCtrlLossSec(o),
    });
  } catch (e) {
    if (e instanceof ConnectRefusedError) return undefined;
    throw e;
  }
}
