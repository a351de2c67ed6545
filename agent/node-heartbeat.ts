// The MeshStorNode heartbeat with the node's identity kept current: before each publish it reads
// this node's Node object (at most once a minute: one GET per node per heartbeat would be 500
// requests a second at 5,000 nodes), so a cordon, a zone or rack relabel, or a new InternalIP
// reaches placement within a minute. A Node that cannot be read (the API is down, or a test cluster
// without Node objects) keeps the last identity: the heartbeat itself must still go out.
import { CoreV1Api, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import { httpStatusOf, kubeErrorMessage } from '../kube/client.ts';
import type { Logger } from '../kube/log.ts';
import type { VolumeRecord } from '../state/store.ts';
import type { Heartbeat } from './loop.ts';
import { type NodeFacts, type NodeIdentityOptions, nodeIdentityFrom } from './node-identity.ts';
import type { NodeIdentity, NodePublisher } from './publisher.ts';

export type NodeReader = () => Promise<V1Node | undefined>;

/** Reads this node's Node object; undefined when there is none (404). */
export function kubeNodeReader(kc: KubeConfig, nodeName: string): NodeReader {
  const api = kc.makeApiClient(CoreV1Api);
  return async () => {
    try {
      return await api.readNode({ name: nodeName });
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw new Error(`reading Node ${nodeName}: ${kubeErrorMessage(e)}`);
    }
  };
}

export class NodeHeartbeat implements Heartbeat {
  private readonly publisher: NodePublisher;
  private readonly readNode: NodeReader;
  private readonly options: NodeIdentityOptions;
  private identity: NodeIdentity;
  private readonly log: Logger;
  private warned = false;
  private refreshedAt = Number.NEGATIVE_INFINITY;
  private readonly refreshMs: number;

  /** `identity`: what flags said, used until (and unless) the Node object says otherwise. */
  constructor(o: {
    publisher: NodePublisher;
    readNode: NodeReader;
    options: NodeIdentityOptions;
    identity: NodeIdentity;
    log: Logger;
    /** How often the Node is read again (default 60 s). */
    refreshMs?: number;
  }) {
    this.refreshMs = o.refreshMs ?? 60_000;
    this.publisher = o.publisher;
    this.readNode = o.readNode;
    this.options = o.options;
    this.identity = o.identity;
    this.log = o.log;
  }

  /** The identity the last publish used. */
  get current(): NodeIdentity {
    return this.identity;
  }

  /** Reads the Node and takes its identity; the flags' values stay where the Node says nothing. */
  async refresh(): Promise<NodeIdentity> {
    this.refreshedAt = Date.now();
    let facts: NodeFacts | undefined;
    try {
      const node = await this.readNode();
      if (!node) {
        if (!this.warned)
          this.log.warn(
            { node: this.identity.nodeName },
            'no Node object of this name: zone, rack, address and cordon come from flags',
          );
        this.warned = true;
        return this.identity;
      }
      facts = nodeIdentityFrom(node, this.options);
    } catch (e) {
      this.log.warn({ error: (e as Error).message }, 'node identity not refreshed');
      return this.identity;
    }
    const next: NodeIdentity = {
      ...this.identity,
      address: facts.address,
      zone: facts.zone ?? this.identity.zone,
      rack: facts.rack ?? this.identity.rack,
      schedulable: facts.schedulable,
    };
    this.publisher.identify(next);
    this.identity = next;
    return next;
  }

  async publish(records: readonly VolumeRecord[]): Promise<void> {
    if (Date.now() - this.refreshedAt >= this.refreshMs) await this.refresh();
    await this.publisher.publish(records);
  }
}
