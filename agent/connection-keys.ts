// The host side of a key rotation (ADR 0007, step 2): on the node running a volume's array, every
// live connection to a remote member gets the keys its target now holds. Host.connect on a
// connected subsystem hands them to the live controller, which re-authenticates in place (no
// disconnect, I/O goes on); once it has them the pair records it and the old keys are retired.

import type { VolumeRecord } from '../state/store.ts';
import { type AgentContext, eachVolume, type VolumeFailure } from './context.ts';
import { subsystemNqn } from './host/names.ts';
import { remoteLegCtrlLossSec } from './write-right.ts';

/** Returns the members whose connection took keys this pass (`volume/replica`). */
export async function refreshConnectionKeys(
  o: AgentContext,
  records: readonly VolumeRecord[],
  failures: VolumeFailure[],
): Promise<string[]> {
  const { keys, peers } = o;
  if (!keys || !peers) return [];
  const mine = records.filter((r) => r.phase === 'Active' && r.attachment?.node === o.nodeName);
  const done = await eachVolume(o, 'keys', mine, failures, async (rec) => {
    const took: string[] = [];
    for (const r of rec.replicas) {
      if (r.node === o.nodeName || r.state === 'Removed') continue;
      const nqn = subsystemNqn({ volumeId: rec.id, replicaId: r.id });
      if (!(await o.host.findDeviceByNqn(nqn))) continue; // not connected: staging connects with the keys
      const k = await keys.forConnect(r.node);
      const peer = await peers.peer(r.node);
      if (!k || !peer) continue;
      await o.host.connect({
        subsystemNqn: nqn,
        target: peer.address,
        ...k.keys,
        ctrlLossTmoSec: remoteLegCtrlLossSec(o),
      });
      await k.taken();
      took.push(`${rec.id}/${r.id}`);
    }
    return took;
  });
  return done.flat();
}
