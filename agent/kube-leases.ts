// The nodes' rights to write (ADR 0006) as coordination.k8s.io Leases, one per node
// (`meshstor-node-<node>` in the agent's namespace): one small write per node every renewal period,
// whatever the number of volumes. A renewal replaces the Lease this process last wrote (no read
// first); a 409 or a missing Lease reads or creates it and the next renewal goes through.
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { httpStatusOf } from '../kube/client.ts';
import type { LeaseApi, LeaseSight } from './write-right.ts';

export const nodeLeaseName = (node: string) => `meshstor-node-${node}`;

export class KubeLeases implements LeaseApi {
  private readonly api: CoordinationV1Api;
  private readonly namespace: string;
  /** The Lease as this process last wrote it, per node. */
  private readonly mine = new Map<string, V1Lease>();

  constructor(kc: KubeConfig, namespace: string) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.namespace = namespace;
  }

  private async get(node: string): Promise<V1Lease | undefined> {
    try {
      return await this.api.readNamespacedLease({ name: nodeLeaseName(node), namespace: this.namespace });
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw e;
    }
  }

  async renew(node: string, leaseSeconds: number): Promise<void> {
    const name = nodeLeaseName(node);
    const now = new V1MicroTime();
    const spec = { holderIdentity: node, leaseDurationSeconds: leaseSeconds, renewTime: now };
    let last = this.mine.get(node) ?? (await this.get(node));
    if (!last) {
      last = await this.api.createNamespacedLease({
        namespace: this.namespace,
        body: { metadata: { name, namespace: this.namespace }, spec: { ...spec, acquireTime: now } },
      });
      this.mine.set(node, last);
      return;
    }
    try {
      const written = await this.api.replaceNamespacedLease({
        name,
        namespace: this.namespace,
        body: { ...last, spec: { ...last.spec, ...spec } },
      });
      this.mine.set(node, written);
    } catch (e) {
      // someone else wrote it (an old copy of this agent, an admin): read it again next time
      if (httpStatusOf(e) === 409 || httpStatusOf(e) === 404) this.mine.delete(node);
      throw e;
    }
  }

  async read(node: string): Promise<LeaseSight | undefined> {
    const lease = await this.get(node);
    const version = lease?.metadata?.resourceVersion;
    if (!lease || !version) return undefined;
    return { version, leaseSeconds: lease.spec?.leaseDurationSeconds };
  }
}
