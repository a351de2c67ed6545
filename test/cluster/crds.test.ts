// The CRDs of deploy/crds on the real apiserver: valid objects are accepted, invalid ones are
// rejected by the apiserver's own OpenAPI/CEL validation, and `kubectl get` columns are served.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { kubeErrorMessage } from '../../kube/client.ts';
import {
  API_VERSION,
  GROUP,
  type MeshStorNode,
  type MeshStorNodeStatus,
  type MeshStorVolume,
  NODE_CONDITION,
  PLURAL,
  VERSION,
} from '../../kube/crds.ts';
import { httpsGet } from './control-plane.ts';
import { Kube } from './kube.ts';

const MiB = 1024 * 1024;
let k: Kube;
beforeAll(() => {
  k = new Kube(inject('cluster').kubeconfig);
});

function volume(name: string, spec: Record<string, unknown>): MeshStorVolume {
  return {
    apiVersion: API_VERSION,
    kind: 'MeshStorVolume',
    metadata: { name },
    spec: {
      sizeBytes: 1024 * MiB,
      replicaCount: 2,
      replicas: [
        { id: 'r0', node: 'node-a', drive: 'd0', extent: { start: MiB, end: 1200 * MiB } },
        { id: 'r1', node: 'node-b', drive: 'd0', extent: { start: MiB, end: 1200 * MiB } },
      ],
      ...spec,
    } as MeshStorVolume['spec'],
  };
}

/** Creates the object and returns the apiserver's error message, or undefined when it was accepted. */
async function tryCreate(plural: string, body: object): Promise<string | undefined> {
  try {
    await k.custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural, body });
    return undefined;
  } catch (e) {
    expect((e as { code?: number }).code, kubeErrorMessage(e)).toBe(422);
    return kubeErrorMessage(e);
  }
}

describe('MeshStorVolume validation by the real apiserver', () => {
  it('accepts a valid volume', async () => {
    expect(await tryCreate(PLURAL.MeshStorVolume, volume('valid-1', {}))).toBeUndefined();
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['replicaCount 0', { replicaCount: 0 }, /replicaCount/],
    ['replicaCount 6', { replicaCount: 6 }, /replicaCount/],
    ['size not a whole MiB', { sizeBytes: MiB + 1 }, /whole number of MiB/],
    ['size below 1 MiB', { sizeBytes: 4096 }, /sizeBytes/],
    [
      'extent ending before it starts',
      { replicas: [{ id: 'r0', node: 'node-a', drive: 'd0', extent: { start: 10 * MiB, end: 5 * MiB } }] },
      /extent.end must be greater/,
    ],
    [
      'unaligned extent',
      { replicas: [{ id: 'r0', node: 'node-a', drive: 'd0', extent: { start: 4096, end: 5 * MiB } }] },
      /1 MiB aligned/,
    ],
    [
      'node name that is no DNS subdomain',
      { replicas: [{ id: 'r0', node: 'Node_A', drive: 'd0', extent: { start: MiB, end: 5 * MiB } }] },
      /node/,
    ],
    [
      'more replicas than replicaCount + 1',
      { replicaCount: 1, replicas: [0, 1, 2].map(rep) },
      /replicaCount \+ 1/,
    ],
    ['duplicate replica ids', { replicas: [rep(0), rep(0)] }, /Duplicate value/],
    ['fsType on a Block volume', { volumeMode: 'Block', fsType: 'xfs' }, /fsType/],
    ['unknown spread mode', { spread: { domain: 'zone', mode: 'sometimes' } }, /spread.mode/],
  ];
  for (const [what, spec, why] of bad) {
    it(`rejects ${what}`, async () => {
      const msg = await tryCreate(
        PLURAL.MeshStorVolume,
        volume(`bad-${what.replace(/[^a-z0-9]+/g, '-')}`, spec),
      );
      expect(msg).toMatch(why);
    });
  }

  it('rejects an unknown member state through the status subresource, and ignores status on create', async () => {
    const created = (await k.custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorVolume,
      body: { ...volume('status-1', {}), status: { inSyncMembers: 2 } },
    })) as MeshStorVolume;
    expect(created.status).toBeUndefined(); // status subresource: create drops it
    created.status = { members: [{ replicaId: 'r0', state: 'Happy' as 'InSync' }] };
    await expect(
      k.custom.replaceClusterCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        plural: PLURAL.MeshStorVolume,
        name: 'status-1',
        body: created,
      }),
    ).rejects.toMatchObject({ code: 422 });
  });
});

function rep(i: number) {
  return { id: `r${i}`, node: `node-${i}`, drive: 'd0', extent: { start: MiB, end: 5 * MiB } };
}

describe('MeshStorNode validation by the real apiserver', () => {
  it('accepts a node named like its Node and rejects one that is not', async () => {
    const node = (name: string, nodeName: string) => ({
      apiVersion: API_VERSION,
      kind: 'MeshStorNode',
      metadata: { name },
      spec: { nodeName },
    });
    expect(await tryCreate(PLURAL.MeshStorNode, node('crd-node-1', 'crd-node-1'))).toBeUndefined();
    expect(await tryCreate(PLURAL.MeshStorNode, node('crd-node-2', 'crd-node-3'))).toMatch(
      /metadata.name must equal spec.nodeName/,
    );
  });

  it('takes schedulable, skipped drives and a KernelModulesLoaded condition in status; a skipped drive needs a reason', async () => {
    const ref = { group: GROUP, version: VERSION, plural: PLURAL.MeshStorNode, name: 'crd-node-1' };
    const obj = (await k.custom.getClusterCustomObject(ref)) as MeshStorNode;
    const status: MeshStorNodeStatus = {
      schedulable: false,
      skippedDrives: [
        { id: 'S1', path: '/dev/nvme0n1', reason: 'has partitions MeshStor did not create (nvme0n1p1)' },
        { id: 'S1', path: '/dev/nvme0n2', reason: 'same id S1 as nvme0n1' },
      ],
      conditions: [
        {
          type: NODE_CONDITION.KernelModulesLoaded,
          status: 'False',
          reason: 'ModulesMissing',
          message: 'kernel modules missing: nvmet-tcp',
          lastTransitionTime: new Date().toISOString(),
        },
      ],
    };
    const written = (await k.custom.replaceClusterCustomObjectStatus({
      ...ref,
      body: { ...obj, status },
    })) as MeshStorNode;
    expect(written.status).toEqual(status);
    const bad = { ...written, status: { skippedDrives: [{ id: 'S2' }] } };
    await expect(k.custom.replaceClusterCustomObjectStatus({ ...ref, body: bad })).rejects.toMatchObject({
      code: 422,
    });
  });
});

describe('printer columns', () => {
  it('serves the MeshStorVolume columns as a Table (what kubectl get shows)', async () => {
    const user = k.kc.getCurrentUser();
    const cluster = k.kc.getCurrentCluster();
    const url = `${cluster?.server}/apis/${GROUP}/${VERSION}/${PLURAL.MeshStorVolume}/valid-1`;
    const [code, body] = await httpsGet(url, {
      ca: readFileSync(cluster?.caFile as string),
      cert: readFileSync(user?.certFile as string),
      key: readFileSync(user?.keyFile as string),
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    });
    expect(code, body).toBe(200);
    const table = JSON.parse(body) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    expect(table.columnDefinitions.map((c) => c.name)).toEqual([
      'Name',
      'Size',
      'Replicas',
      'In-Sync',
      'Attached',
      'Ready',
      'Mode',
      'Age',
    ]);
    expect(table.rows[0]?.cells.slice(0, 3)).toEqual(['valid-1', 1024 * MiB, 2]);
  });
});
