// `meshstor controller --state kube` as a process against the real apiserver: it takes the
// allocator lease, loads its placement caches, provisions through CSI into a MeshStorVolume, and
// hands the lease back on SIGTERM.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import { loadCsi } from '../../csi/server.ts';
import { GROUP, type MeshStorVolume, PLURAL, VERSION } from '../../kube/crds.ts';
import { MeshstorProcess } from '../support/meshstor-process.ts';
import { Kube } from './kube.ts';

describe('meshstor controller --state kube', () => {
  it('leads, provisions a MeshStorVolume over CSI, and releases the lease on SIGTERM', async () => {
    const { kubeconfig } = inject('cluster');
    const k = new Kube(kubeconfig);
    await k.createMeshStorNode('proc-n1', { zone: 'pa' });
    const socket = join(mkdtempSync(join(tmpdir(), 'meshstor-ctl-kube-')), 'csi.sock');
    const ctl = MeshstorProcess.kubeController(socket, kubeconfig);
    await ctl.waitFor('leading');
    await ctl.waitFor('caches synced');

    const pkg = loadCsi();
    // Probe says ready only once the informer caches placement reads from have their first lists.
    const identity = new pkg.csi.v1.Identity(
      `unix:${socket}`,
      grpc.credentials.createInsecure(),
    ) as unknown as {
      Probe: (r: object, cb: (e: grpc.ServiceError | null, v: { ready: { value: boolean } }) => void) => void;
      close: () => void;
    };
    const probe = await new Promise<{ ready: { value: boolean } }>((resolve, reject) =>
      identity.Probe({}, (e, v) => (e ? reject(e) : resolve(v))),
    );
    identity.close();
    expect(probe.ready.value).toBe(true);
    const client = new pkg.csi.v1.Controller(
      `unix:${socket}`,
      grpc.credentials.createInsecure(),
    ) as unknown as {
      CreateVolume: (
        r: object,
        cb: (e: grpc.ServiceError | null, v: { volume: { volume_id: string } }) => void,
      ) => void;
      close: () => void;
    };
    const res = await new Promise<{ volume: { volume_id: string } }>((resolve, reject) =>
      client.CreateVolume(
        {
          name: 'pvc-proc',
          capacity_range: { required_bytes: String(2 ** 30) },
          volume_capabilities: [{ mount: { fs_type: 'xfs' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
          parameters: { replicaCount: '1' },
        },
        (e, v) => (e ? reject(e) : resolve(v)),
      ),
    );
    client.close();
    expect(res.volume.volume_id).toBe('pvc-proc');
    const obj = (await k.custom.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL.MeshStorVolume,
      name: 'pvc-proc',
    })) as MeshStorVolume;
    expect(obj.spec.replicas?.length).toBe(1);

    expect(await ctl.stop()).toBe(0);
    const lease = await k.kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'meshstor-allocator', namespace: 'default' });
    expect(lease.spec?.holderIdentity).toBeFalsy();
  });
});
