// Least privilege on the real apiserver (issue 13 §4): the RBAC objects of deploy/manifests/
// meshstor.yaml (the chart's rendering) are created for real, then each component's code runs as
// its own ServiceAccount (impersonation: the apiserver authorises every call as that account) and
// does its job, and each is refused something it does not need. A SubjectAccessReview table then
// checks every verb each component's code uses (derived from its kube calls; see the comments in
// deploy/helm/meshstor/templates/rbac-*.yaml) and a few it must not have.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SimulatedHost } from '../../agent/host/simulated.ts';
import { kubeNodeReader } from '../../agent/node-heartbeat.ts';
import { NodePublisher } from '../../agent/publisher.ts';
import { LeaseElector } from '../../controller/leader.ts';
import { httpStatusOf } from '../../kube/client.ts';
import { GROUP, PLURAL, VERSION } from '../../kube/crds.ts';
import { EventRecorder } from '../../kube/events.ts';
import { makeLogger } from '../../kube/log.ts';
import { DEFAULT_SPREAD } from '../../placement/model.ts';
import { type RunningExtender, startExtender } from '../../scheduler/extender.ts';
import { KubeLedger } from '../../state/kube-ledger.ts';
import { KubeNodeInventory, KubeVolumeStore } from '../../state/kube-store.ts';
import { updateRecord } from '../../state/store.ts';
import { Kube, until } from './kube.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NS = 'meshstor-system';
const COMPONENTS = ['controller', 'agent', 'extender'] as const;
type Component = (typeof COMPONENTS)[number];
const OWN_NODE_POLICY = 'meshstor-agent-own-node';
const RBAC_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

const manifests = (
  loadAllYaml(readFileSync(join(root, 'deploy/manifests/meshstor.yaml'), 'utf8')) as unknown[]
).filter((o): o is KubernetesObject => o !== null && typeof o === 'object');
/** The Namespace, each component's ServiceAccount, roles and bindings, and the agent's policy, as shipped. */
const rbacObjects = manifests.filter(
  (o) =>
    o.kind === 'Namespace' ||
    o.metadata?.name === OWN_NODE_POLICY ||
    (RBAC_KINDS.has(o.kind ?? '') &&
      COMPONENTS.some(
        (c) => o.metadata?.name === `meshstor-${c}` || o.metadata?.name?.startsWith(`meshstor-${c}-`),
      )),
);

let k: Kube;
/** A kubeconfig whose every call the apiserver authorises as the component's ServiceAccount. */
const as: Partial<Record<Component, KubeConfig>> = {};
const kcOf = (c: Component) => as[c] as KubeConfig;

/**
 * Calls as `user`; with `node`, also as the apiserver sees a token bound to a pod on that node
 * (user extra authentication.kubernetes.io/node-name, which the agent's own-node policy reads).
 */
class Impersonating extends KubeConfig {
  private readonly node: string | undefined;
  constructor(base: KubeConfig, user: string, node?: string) {
    super();
    this.node = node;
    this.loadFromOptions({
      clusters: base.clusters,
      contexts: base.contexts,
      currentContext: base.currentContext,
      users: base.users.map((u) => ({ ...u, impersonateUser: user })),
    });
  }
  override async applySecurityAuthentication(
    context: Parameters<KubeConfig['applySecurityAuthentication']>[0],
  ) {
    await super.applySecurityAuthentication(context);
    // The extra's key is percent-encoded in the header name ('/' is not allowed there).
    if (this.node)
      context.setHeaderParam('Impersonate-Extra-authentication.kubernetes.io%2fnode-name', this.node);
  }
}
const impersonating = (base: KubeConfig, user: string, node?: string): KubeConfig =>
  new Impersonating(base, user, node);
const HOST_NQN = 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000abc01';
const IDENTITY = { nodeName: 'rbac-node-1', zone: 'z1', address: '10.0.0.9', port: 4420, schedulable: true };
const serviceAccount = (c: Component) => `system:serviceaccount:${NS}:meshstor-${c}`;

/** Resolves to the HTTP status the call failed with, or 0 when it succeeded. */
async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 0;
  } catch (e) {
    return httpStatusOf(e) ?? -1;
  }
}

beforeAll(async () => {
  k = new Kube(inject('cluster').kubeconfig);
  const objects = KubernetesObjectApi.makeApiClient(k.kc);
  expect(rbacObjects.map((o) => `${o.kind}/${o.metadata?.name}`)).toContain('ClusterRole/meshstor-agent');
  for (const o of rbacObjects)
    await objects.patch(o, undefined, undefined, 'meshstor-rbac-test', true, PatchStrategy.ServerSideApply);
  for (const c of COMPONENTS)
    as[c] = impersonating(k.kc, serviceAccount(c), c === 'agent' ? 'rbac-node-1' : undefined);
  await k.createNode('rbac-node-1');
});

// The apiserver is the tier's: take away what would change the other files' scheduling and counts.
afterAll(async () => {
  const ms = (plural: string, name: string) => ({ group: GROUP, version: VERSION, plural, name });
  const gone = async (call: () => Promise<unknown>) => {
    const code = await statusOf(call);
    if (code !== 0 && code !== 404) throw new Error(`cleaning up: HTTP ${code}`);
  };
  await gone(() => k.custom.deleteClusterCustomObject(ms(PLURAL.MeshStorNode, 'rbac-node-1')));
  await gone(() => k.custom.deleteClusterCustomObject(ms(PLURAL.MeshStorLedger, 'rbac-node-1')));
  await gone(() => k.storage.deleteCSINode({ name: 'rbac-node-1' }));
  await gone(() => k.core.deleteNode({ name: 'rbac-node-1' }));
  const objects = KubernetesObjectApi.makeApiClient(k.kc);
  for (const o of rbacObjects.filter((x) => x.metadata?.name === OWN_NODE_POLICY))
    await gone(() => objects.delete(o));
});

describe("each component's code does its job as its own ServiceAccount", () => {
  let ext: RunningExtender | undefined;
  afterAll(async () => {
    await ext?.close();
  });

  it('extender: every informer lists and watches (the caches sync)', async () => {
    ext = await startExtender({
      kc: kcOf('extender'),
      log: makeLogger('extender', 'silent'),
      door: { insecureHttp: true }, // the door is not what this test is about
      port: 0,
      warmUpRounds: 0,
    });
    await Promise.race([
      ext.whenSynced,
      new Promise((_, reject) => setTimeout(() => reject(new Error('caches did not sync in 30 s')), 30_000)),
    ]);
  });

  it('controller: creates a volume record, holds the allocator Lease, writes the ledger, lists nodes', async () => {
    const store = new KubeVolumeStore(kcOf('controller'));
    const MiB = 2 ** 20;
    await store.create({
      id: 'rbac-vol',
      name: 'rbac-vol',
      sizeBytes: 1024 * MiB,
      replicaCount: 1,
      spread: DEFAULT_SPREAD,
      fsType: 'xfs',
      phase: 'Active',
      replicas: [
        {
          id: 'r0',
          node: 'rbac-node-1',
          drive: 'SIM0',
          extent: { start: MiB, end: 1153 * MiB },
          state: 'Pending',
        },
      ],
    });
    expect((await store.list()).map((r) => r.id)).toContain('rbac-vol');

    const lease = new LeaseElector(kcOf('controller'), {
      namespace: NS,
      name: 'rbac-allocator',
      identity: 'c1',
    });
    expect(await lease.tick()).toBe(true); // create
    expect(await lease.tick()).toBe(true); // read and renew (update)

    const ledger = new KubeLedger(kcOf('controller'));
    const written = await ledger.write({ node: 'rbac-node-1', claims: [] });
    await ledger.write(await ledger.read('rbac-node-1'));
    expect(written.node).toBe('rbac-node-1');
    expect((await ledger.list()).map((l) => l.node)).toContain('rbac-node-1');

    expect(Array.isArray(await new KubeNodeInventory(kcOf('controller')).nodes())).toBe(true);
  });

  it('agent: publishes its MeshStorNode, reads its Node, writes a volume it serves, records an Event', async () => {
    const host = new SimulatedHost({
      hostNqn: HOST_NQN,
      drives: [{ id: 'SIM0', sizeBytes: 20 * 2 ** 30 }],
    });
    const pub = new NodePublisher(kcOf('agent'), IDENTITY, host);
    await pub.publish(); // create, then status
    await pub.publish(); // get, then status again
    expect((await k.getMeshStorNode('rbac-node-1')).status?.drives?.map((d) => d.id)).toEqual(['SIM0']);

    expect((await kubeNodeReader(kcOf('agent'), 'rbac-node-1')())?.metadata?.name).toBe('rbac-node-1');

    const store = new KubeVolumeStore(kcOf('agent'));
    const written = await updateRecord(store, 'rbac-vol', (r) => {
      r.attachment = { node: 'rbac-node-1', hostNqn: host.hostNqn };
      const first = r.replicas[0];
      if (first) first.state = 'Syncing';
      return true;
    });
    expect(written?.attachment?.node).toBe('rbac-node-1');
    const after = await k.getMeshStorVolume('rbac-vol');
    expect(after.spec.attachment?.node).toBe('rbac-node-1'); // spec: update
    expect(after.status?.members?.[0]?.state).toBe('Syncing'); // status: update

    const errors: string[] = [];
    const events = EventRecorder.forCluster(kcOf('agent'), 'meshstor-agent/rbac-node-1', (m) =>
      errors.push(m),
    );
    expect(await events.warn({ kind: 'MeshStorNode', name: 'rbac-node-1' }, 'RbacTest', 'an Event')).toBe(
      true,
    );
    expect(errors).toEqual([]);
  });

  it('controller: releases the record (delete, then drop the finalizer)', async () => {
    const store = new KubeVolumeStore(kcOf('controller'));
    await updateRecord(store, 'rbac-vol', (r) => {
      r.phase = 'Deleting';
      return true;
    });
    await store.remove('rbac-vol');
    expect(await store.get('rbac-vol')).toBeUndefined();
  });
});

describe("an agent writes only its own node's MeshStorNode (agent.ownNodePolicy)", () => {
  const publisherOn = (tokenNode: string | undefined) =>
    new NodePublisher(
      impersonating(k.kc, serviceAccount('agent'), tokenNode),
      IDENTITY, // rbac-node-1
      new SimulatedHost({ hostNqn: HOST_NQN, drives: [{ id: 'SIM0', sizeBytes: 20 * 2 ** 30 }] }),
    );

  it("refuses an agent whose token names another node, or none, and keeps that node's own agent working", async () => {
    // A new policy takes effect within a moment of its creation: wait for the first refusal.
    const refusal = await until('the own-node policy to refuse', 30_000, async () => {
      const e = await publisherOn('rbac-node-2')
        .publish()
        .then(() => undefined)
        .catch((x: Error) => x);
      return e && /may write only the MeshStorNode rbac-node-2, not rbac-node-1/.test(e.message)
        ? e
        : undefined;
    });
    expect(refusal.message).toMatch(/forbidden/i);
    await expect(publisherOn(undefined).publish()).rejects.toThrow(/only with a token bound to its node/);
    await publisherOn('rbac-node-1').publish();
  });
});

describe('and is refused what it does not need', () => {
  const custom = (c: Component) => kcOf(c).makeApiClient(CustomObjectsApi);
  const volumeBody = (name: string) => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'MeshStorVolume',
    metadata: { name },
    spec: { sizeBytes: 2 ** 30, replicaCount: 1, volumeMode: 'Filesystem', fsType: 'xfs', replicas: [] },
  });

  it('extender: writes nothing, reads no pods or Secrets', async () => {
    const create = () =>
      custom('extender').createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL.MeshStorVolume,
        body: volumeBody('rbac-by-extender'),
      });
    expect(await statusOf(create)).toBe(403);
    const core = kcOf('extender').makeApiClient(CoreV1Api);
    expect(await statusOf(() => core.listPodForAllNamespaces())).toBe(403);
    expect(await statusOf(() => core.listNamespacedSecret({ namespace: NS }))).toBe(403);
  });

  it('agent: creates and deletes no volume records, deletes no MeshStorNode, lists no Secrets', async () => {
    const ref = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorVolume };
    expect(
      await statusOf(() =>
        custom('agent').createClusterCustomObject({ ...ref, body: volumeBody('rbac-by-agent') }),
      ),
    ).toBe(403);
    expect(
      await statusOf(() => custom('agent').deleteClusterCustomObject({ ...ref, name: 'rbac-src' })),
    ).toBe(403);
    expect(
      await statusOf(() =>
        custom('agent').deleteClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL.MeshStorNode,
          name: 'rbac-node-1',
        }),
      ),
    ).toBe(403);
    const core = kcOf('agent').makeApiClient(CoreV1Api);
    expect(await statusOf(() => core.listNamespacedSecret({ namespace: NS }))).toBe(403);
  });

  it("controller: never writes an agent's MeshStorNode", async () => {
    const pub = new NodePublisher(
      kcOf('controller'),
      IDENTITY,
      new SimulatedHost({ hostNqn: HOST_NQN, drives: [] }),
    );
    await expect(pub.publish()).rejects.toThrow(/forbidden/i);
    const core = kcOf('controller').makeApiClient(CoreV1Api);
    expect(await statusOf(() => core.listNamespacedSecret({ namespace: NS }))).toBe(403);
  });
});

/** [verb, group, resource (with /subresource), namespace?] */
type Access = [string, string, string, string?];
const MS = GROUP;
// What each component's code calls (grep of its kube/ client calls; comments in the RBAC templates).
const NEEDS: Record<Component, Access[]> = {
  extender: [
    ['list', '', 'persistentvolumeclaims'],
    ['watch', '', 'persistentvolumeclaims'],
    ['list', '', 'persistentvolumes'],
    ['watch', '', 'persistentvolumes'],
    ['list', 'storage.k8s.io', 'storageclasses'],
    ['watch', 'storage.k8s.io', 'storageclasses'],
    ['list', MS, 'meshstorvolumes'],
    ['watch', MS, 'meshstorvolumes'],
    ['list', MS, 'meshstornodes'],
    ['watch', MS, 'meshstornodes'],
  ],
  agent: [
    ['get', MS, 'meshstorvolumes'],
    ['list', MS, 'meshstorvolumes'],
    ['watch', MS, 'meshstorvolumes'],
    ['update', MS, 'meshstorvolumes'],
    ['update', MS, 'meshstorvolumes/status'],
    ['get', MS, 'meshstornodes'],
    ['create', MS, 'meshstornodes'],
    ['update', MS, 'meshstornodes'],
    ['update', MS, 'meshstornodes/status'],
    ['get', '', 'nodes'],
    ['create', '', 'events', 'default'],
    // its right to write (ADR 0006): its own Lease, and others' read before a takeover
    ['get', 'coordination.k8s.io', 'leases', NS],
    ['create', 'coordination.k8s.io', 'leases', NS],
    ['update', 'coordination.k8s.io', 'leases', NS],
    // the node-pair DH-HMAC-CHAP keys (ADR 0007), each read by name
    ['get', '', 'secrets', NS],
    ['create', '', 'secrets', NS],
    ['update', '', 'secrets', NS],
  ],
  controller: [
    ['get', MS, 'meshstorvolumes'],
    ['list', MS, 'meshstorvolumes'],
    ['watch', MS, 'meshstorvolumes'],
    ['create', MS, 'meshstorvolumes'],
    ['update', MS, 'meshstorvolumes'],
    ['delete', MS, 'meshstorvolumes'],
    ['update', MS, 'meshstorvolumes/status'],
    ['list', MS, 'meshstornodes'],
    ['watch', MS, 'meshstornodes'],
    ['get', MS, 'meshstorledgers'],
    ['list', MS, 'meshstorledgers'],
    ['create', MS, 'meshstorledgers'],
    ['update', MS, 'meshstorledgers'],
    ['get', 'coordination.k8s.io', 'leases', NS],
    ['create', 'coordination.k8s.io', 'leases', NS],
    ['update', 'coordination.k8s.io', 'leases', NS],
    ['create', '', 'events', 'default'],
  ],
};
// Things none of its code does.
const REFUSED: Record<Component, Access[]> = {
  extender: [
    ['get', '', 'pods', 'default'],
    ['get', MS, 'meshstorvolumes'],
    ['update', MS, 'meshstorvolumes'],
    ['create', '', 'events', 'default'],
    ['get', '', 'secrets', NS],
  ],
  agent: [
    ['create', MS, 'meshstorvolumes'],
    ['delete', MS, 'meshstorvolumes'],
    ['patch', MS, 'meshstorvolumes'],
    ['delete', MS, 'meshstornodes'],
    ['list', MS, 'meshstornodes'],
    ['update', MS, 'meshstorledgers'],
    ['update', '', 'nodes'],
    ['create', '', 'events', 'kube-system'],
    ['list', '', 'secrets', NS],
    ['delete', '', 'secrets', NS],
    ['get', '', 'secrets', 'default'],
  ],
  controller: [
    ['update', MS, 'meshstornodes'],
    ['update', MS, 'meshstornodes/status'],
    ['delete', MS, 'meshstorledgers'],
    ['patch', MS, 'meshstorvolumes'],
    ['get', '', 'secrets', NS],
  ],
};

async function allowed(c: Component, [verb, group, resource, namespace]: Access): Promise<boolean> {
  const [res, subresource] = resource.split('/');
  const r = await k.kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
    body: {
      spec: {
        user: serviceAccount(c),
        groups: ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'],
        resourceAttributes: { verb, group, resource: res, subresource, namespace },
      },
    },
  });
  return r.status?.allowed === true;
}

const show = ([verb, group, resource, namespace]: Access) =>
  `${verb} ${group ? `${group}/` : ''}${resource}${namespace ? ` in ${namespace}` : ''}`;

describe('SubjectAccessReview: every verb the code uses is granted, the others are not', () => {
  for (const c of COMPONENTS) {
    it(`${c}: may ${NEEDS[c].length} things, may not ${REFUSED[c].length}`, async () => {
      const missing: string[] = [];
      for (const a of NEEDS[c]) if (!(await allowed(c, a))) missing.push(show(a));
      const extra: string[] = [];
      for (const a of REFUSED[c]) if (await allowed(c, a)) extra.push(show(a));
      expect({ missing, extra }).toEqual({ missing: [], extra: [] });
    });
  }
});
