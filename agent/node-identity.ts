// Who this node is, from its Kubernetes Node object rather than flags: where its NVMe-oF target
// listens (the first InternalIP, unless the admin overrides it), its failure domains (the zone
// label and a configurable rack label) and whether it is cordoned (placement avoids it).

import { isIP } from 'node:net';
import type { V1Node } from '@kubernetes/client-node';
import { evacuationRequested } from '../kube/evacuation.ts';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const DEFAULT_RACK_LABEL = 'topology.meshstor.io/rack';

export interface NodeIdentityOptions {
  /** `--address`: the NVMe-oF address to use instead of the Node's InternalIP. */
  addressOverride?: string | undefined;
  /** `--rack-label`: the Node label naming the rack (default topology.meshstor.io/rack). */
  rackLabel?: string | undefined;
}

export interface NodeFacts {
  nodeName: string;
  /** IPv4 or IPv6 address other nodes connect to. */
  address: string;
  zone?: string | undefined;
  rack?: string | undefined;
  /** false while the Node is cordoned (spec.unschedulable) or labelled meshstor.io/evacuate=true. */
  schedulable: boolean;
}

export class NodeIdentityError extends Error {
  override name = 'NodeIdentityError';
}

/** Zone and rack go into MeshStorNode spec.topology (63 characters at most, like a label value). */
const labelValue = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);

export function nodeIdentityFrom(node: V1Node, opts: NodeIdentityOptions = {}): NodeFacts {
  const nodeName = node.metadata?.name;
  if (!nodeName) throw new NodeIdentityError('the Node object has no metadata.name');
  let address = opts.addressOverride;
  if (address !== undefined) {
    if (isIP(address) === 0)
      throw new NodeIdentityError(`--address ${JSON.stringify(address)} is not an IPv4 or IPv6 address`);
  } else {
    address = node.status?.addresses?.find((a) => a.type === 'InternalIP' && isIP(a.address) !== 0)?.address;
    if (address === undefined) {
      const have = (node.status?.addresses ?? []).map((a) => `${a.type}=${a.address}`).join(', ') || 'none';
      throw new NodeIdentityError(
        `Node ${nodeName} has no InternalIP address (addresses: ${have}); give the NVMe-oF address with --address`,
      );
    }
  }
  const labels = node.metadata?.labels ?? {};
  return {
    nodeName,
    address,
    zone: labelValue(labels[ZONE_LABEL]),
    rack: labelValue(labels[opts.rackLabel ?? DEFAULT_RACK_LABEL]),
    // a node being evacuated takes no new replica either, cordoned or not
    schedulable: node.spec?.unschedulable !== true && !evacuationRequested(labels),
  };
}
