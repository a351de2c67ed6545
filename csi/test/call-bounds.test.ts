// No call runs without a deadline: a caller that sets none (or a far one) is bounded by the
// server's own limit, so a call whose work hangs, and the calls queued behind it on the same
// volume's lock, are answered DEADLINE_EXCEEDED instead of waiting for ever; Probe still answers.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { SimulatedHost } from '../../agent/host/simulated.ts';
import { HostInventory } from '../../agent/host-inventory.ts';
import { GiB } from '../../placement/units.ts';
import { MemoryVolumeStore } from '../../state/memory-store.ts';
import { ControllerService } from '../controller.ts';
import { IdentityService } from '../identity.ts';
import { NodeService } from '../node.ts';
import { loadCsi, serveCsi } from '../server.ts';
import { mountCap } from './requests.ts';

type Unary = (req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void;
const call = (client: grpc.Client, rpc: string, req: object, opts: grpc.CallOptions = {}) =>
  new Promise<number>((resolve) =>
    ((client as unknown as Record<string, Unary>)[rpc] as Unary).call(client, req, opts, (e) =>
      resolve(e ? e.code : grpc.status.OK),
    ),
  );

describe('call bounds', () => {
  it('a call without a deadline is ended by the server’s limit, and so is one queued behind it', async () => {
    const host = new SimulatedHost({
      hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:bounds-n1',
      drives: [{ id: 'B0', sizeBytes: 8 * GiB }],
    });
    const store = new MemoryVolumeStore();
    const controller = new ControllerService({ store, inventory: new HostInventory('n1', 'a', host, store) });
    const node = new NodeService({
      nodeName: 'n1',
      host,
      store,
      kubeletDir: '/var/lib/kubelet',
      // a target that can never be made: the work hangs and ignores the call's signal
      mountPoints: { ensure: () => new Promise(() => undefined), remove: async () => undefined },
    });
    const socket = join(mkdtempSync(join(tmpdir(), 'meshstor-bounds-')), 'csi.sock');
    const server = await serveCsi(socket, {
      identity: new IdentityService({ controller: true, ready: () => true }),
      controller,
      node,
      maxCallMs: 500,
    });
    const csi = loadCsi().csi.v1;
    const nodeClient = new csi.Node(`unix:${socket}`, grpc.credentials.createInsecure());
    const identity = new csi.Identity(`unix:${socket}`, grpc.credentials.createInsecure());
    try {
      const { volume } = await controller.createVolume({
        name: 'v1',
        capacity_range: { required_bytes: String(GiB), limit_bytes: '0' },
        volume_capabilities: [mountCap],
        parameters: {},
        secrets: {},
        volume_content_source: null,
        accessibility_requirements: null,
        mutable_parameters: {},
      });
      const staging = '/var/lib/kubelet/plugins/meshstor.io/v1/globalmount';
      await node.nodeStageVolume({
        volume_id: volume.volume_id,
        staging_target_path: staging,
        volume_capability: mountCap,
        volume_context: {},
      });
      const target = '/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/v1/mount';
      const publish = call(nodeClient, 'NodePublishVolume', {
        volume_id: 'v1',
        staging_target_path: staging,
        target_path: target,
        volume_capability: mountCap,
      });
      // a far deadline of the caller's own is cut to the server's limit as well
      const queued = call(
        nodeClient,
        'NodeUnpublishVolume',
        { volume_id: 'v1', target_path: target },
        { deadline: Date.now() + 3_600_000 },
      );
      expect(await publish).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(await queued).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(await call(identity, 'Probe', {})).toBe(grpc.status.OK);
    } finally {
      nodeClient.close();
      identity.close();
      server.forceShutdown();
    }
  }, 20_000);
});
