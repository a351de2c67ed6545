// The allocation ledger in Kubernetes: one MeshStorLedger per node, named like the node, written
// only with the resourceVersion it was read at (a create when it does not exist yet), so the
// apiserver refuses the second of two writers that read the same version.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { httpStatusOf, kubeErrorMessage } from '../kube/client.ts';
import { API_VERSION, GROUP, type MeshStorLedger, PLURAL, VERSION } from '../kube/crds.ts';
import { StateError } from './errors.ts';
import { retryTransient } from './kube-retry.ts';
import type { ExtentLedger, NodeLedger } from './ledger.ts';

const fromObject = (o: MeshStorLedger): NodeLedger => ({
  node: o.metadata.name,
  claims: o.spec.claims ?? [],
  version: o.metadata.resourceVersion,
});

export class KubeLedger implements ExtentLedger {
  private readonly api: CustomObjectsApi;
  private readonly all = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorLedger };

  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async read(node: string): Promise<NodeLedger> {
    try {
      return fromObject(
        (await retryTransient(() =>
          this.api.getClusterCustomObject({ ...this.all, name: node }),
        )) as MeshStorLedger,
      );
    } catch (e) {
      if (httpStatusOf(e) === 404) return { node, claims: [] };
      throw new StateError('unavailable', `reading the ledger of ${node}: ${kubeErrorMessage(e)}`);
    }
  }

  async write(l: NodeLedger): Promise<NodeLedger> {
    const body: MeshStorLedger = {
      apiVersion: API_VERSION,
      kind: 'MeshStorLedger',
      metadata: { name: l.node, ...(l.version === undefined ? {} : { resourceVersion: l.version }) },
      spec: { claims: l.claims, claimCount: l.claims.length },
    };
    try {
      const written =
        l.version === undefined
          ? await this.api.createClusterCustomObject({ ...this.all, body })
          : await this.api.replaceClusterCustomObject({ ...this.all, name: l.node, body });
      return fromObject(written as MeshStorLedger);
    } catch (e) {
      // 409: another writer got there first (or created it); 404: it was deleted since the read.
      const code = httpStatusOf(e);
      if (code === 409 || code === 404)
        throw new StateError('changed', `the ledger of ${l.node} changed since it was read; retry`);
      throw new StateError('unavailable', `writing the ledger of ${l.node}: ${kubeErrorMessage(e)}`);
    }
  }

  async list(): Promise<NodeLedger[]> {
    const l = (await retryTransient(() => this.api.listClusterCustomObject(this.all))) as {
      items: MeshStorLedger[];
    };
    return l.items.map(fromObject);
  }
}
