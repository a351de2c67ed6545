// The plain manifests (deploy/manifests/meshstor.yaml, which the unit tier proves equal to the
// Helm chart's rendering) against the real apiserver: the CRDs and the Namespace are applied for
// real, then every object is applied with server-side apply in dry-run, so the apiserver runs its
// whole admission and validation on each without persisting it.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApiextensionsV1Api,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { kubeErrorMessage } from '../../kube/client.ts';
import { Kube } from './kube.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIELD_MANAGER = 'meshstor-manifests-test';

// loadAllYaml maps JSON names (x-kubernetes-validations, enum, default) onto the client's typed
// models, which is what it serializes from: a plain YAML parse would reach the apiserver without them.
const manifests = (
  loadAllYaml(readFileSync(join(root, 'deploy/manifests/meshstor.yaml'), 'utf8')) as unknown[]
).filter((o): o is KubernetesObject => o !== null && typeof o === 'object');
const name = (o: KubernetesObject) =>
  `${o.kind}/${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;

let api: KubernetesObjectApi;

/** Server-side apply of one object; dry-run unless `persist`. Resolves to the apiserver's error, if any. */
async function apply(o: KubernetesObject, persist = false): Promise<string | undefined> {
  try {
    await api.patch(
      o,
      undefined,
      persist ? undefined : 'All',
      FIELD_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    );
    return undefined;
  } catch (e) {
    return kubeErrorMessage(e);
  }
}

beforeAll(async () => {
  api = KubernetesObjectApi.makeApiClient(new Kube(inject('cluster').kubeconfig).kc);
  // CRDs first (the global setup created them from deploy/crds; applying takes them over
  // unchanged), then the Namespace: a dry-run object cannot live in a namespace that is not there.
  for (const o of manifests.filter((x) => x.kind === 'CustomResourceDefinition' || x.kind === 'Namespace')) {
    expect(await apply(o, true), name(o)).toBeUndefined();
  }
});

describe('deploy/manifests/meshstor.yaml on the real apiserver', () => {
  it('has the objects an install needs', () => {
    const kinds = new Set(manifests.map((o) => o.kind));
    for (const k of [
      'CustomResourceDefinition',
      'Namespace',
      'DaemonSet',
      'Deployment',
      'CSIDriver',
      'StorageClass',
    ]) {
      expect(kinds, k).toContain(k);
    }
  });

  for (const o of manifests) {
    it(`accepts ${name(o)} (server-side apply, dry-run)`, async () => {
      expect(await apply(o)).toBeUndefined();
    });
  }

  it('the applied CRDs keep every validation rule of deploy/crds', async () => {
    const ext = new Kube(inject('cluster').kubeconfig).kc.makeApiClient(ApiextensionsV1Api);
    for (const o of manifests.filter((x) => x.kind === 'CustomResourceDefinition')) {
      const name = o.metadata?.name as string; // <plural>.meshstor.io, in meshstor.io_<plural>.yaml
      const file = readFileSync(join(root, 'deploy/crds', `meshstor.io_${name.split('.')[0]}.yaml`), 'utf8');
      const rules = file.match(/\brule:/g)?.length ?? 0;
      expect(rules, name).toBeGreaterThan(0);
      const stored = await ext.readCustomResourceDefinition({ name });
      expect(JSON.stringify(stored).match(/"rule":/g)?.length ?? 0, name).toBe(rules);
    }
  });

  it('the applied CRDs still refuse a volume whose size is not whole MiB', async () => {
    const bad = {
      apiVersion: 'meshstor.io/v1alpha1',
      kind: 'MeshStorVolume',
      metadata: { name: 'manifests-test-bad-size' },
      spec: { sizeBytes: 1024 * 1024 + 1, replicaCount: 1, replicas: [] },
    };
    expect(await apply(bad)).toMatch(/whole number of MiB/);
  });

  it('the dry-run does validate: a DaemonSet with a bad mount propagation is refused', async () => {
    const ds = structuredClone(manifests.find((o) => o.kind === 'DaemonSet')) as KubernetesObject & {
      spec: { template: { spec: { containers: { volumeMounts: { mountPropagation?: string }[] }[] } } };
    };
    const mount = ds.spec.template.spec.containers[0]?.volumeMounts.find((m) => m.mountPropagation);
    if (!mount) throw new Error('the agent DaemonSet has no mount with propagation');
    mount.mountPropagation = 'Sideways';
    expect(await apply(ds)).toMatch(/mountPropagation/);
  });

  it('dry-run persisted nothing: the controller Deployment does not exist', async () => {
    const d = manifests.find((o) => o.kind === 'Deployment') as KubernetesObject;
    await expect(
      api.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: d.metadata as never }),
    ).rejects.toMatchObject({
      code: 404,
    });
  });
});
