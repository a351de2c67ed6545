// Issue 13 §1, each finding as a regression test: what a careless or hostile caller sent, and what
// the driver now answers. The Controller on placement fixtures, the Node on SimulatedHost with the
// real publish targets (agent/mount-points.ts) in a temporary kubelet directory.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedHost } from '../../agent/host/simulated.ts';
import { HostInventory } from '../../agent/host-inventory.ts';
import { fsMountPoints } from '../../agent/mount-points.ts';
import type { MountPoints } from '../../agent/node-volumes.ts';
import { cluster, drive, node } from '../../placement/test/fixtures.ts';
import { GiB, MiB } from '../../placement/units.ts';
import { MemoryVolumeStore, StaticInventory } from '../../state/memory-store.ts';
import { ControllerService } from '../controller.ts';
import { NodeService } from '../node.ts';
import { NODE_KEY, ZONE_KEY } from '../topology.ts';
import type { CreateVolumeRequest, VolumeCapability } from '../types.ts';
import { codeOf } from './requests.ts';

const mountCap: VolumeCapability = {
  mount: { fs_type: 'xfs', mount_flags: [], volume_mount_group: '' },
  access_mode: { mode: 'SINGLE_NODE_WRITER' },
};
const blockCap: VolumeCapability = { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const bothCap: VolumeCapability = { ...mountCap, block: {} };

const createReq = (name: string, over: Partial<CreateVolumeRequest> = {}): CreateVolumeRequest => ({
  name,
  capacity_range: { required_bytes: String(GiB), limit_bytes: '0' },
  volume_capabilities: [mountCap],
  parameters: {},
  secrets: {},
  volume_content_source: null,
  accessibility_requirements: null,
  mutable_parameters: {},
  ...over,
});

let kubelet: string;
beforeEach(async () => {
  kubelet = await mkdtemp(join(tmpdir(), 'meshstor-kubelet-'));
});
afterEach(async () => {
  await rm(kubelet, { recursive: true, force: true });
});

/** One node: Controller and Node on SimulatedHost, publish targets on the real filesystem. */
function oneNode(mountPoints: MountPoints = fsMountPoints, kubeletDir = kubelet) {
  const host = new SimulatedHost({
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:hostile-n1',
    drives: [{ id: 'S0', sizeBytes: 20 * GiB }],
  });
  const store = new MemoryVolumeStore();
  const ctl = new ControllerService({ store, inventory: new HostInventory('n1', 'a', host, store) });
  const svc = new NodeService({ nodeName: 'n1', zone: 'a', host, store, kubeletDir, mountPoints });
  const staging = (v: string) => join(kubeletDir, 'plugins/kubernetes.io/csi/meshstor.io', v, 'globalmount');
  const target = (v: string, pod = 'uid') =>
    join(kubeletDir, 'pods', pod, 'volumes/kubernetes.io~csi', v, 'mount');
  const ready = async (name: string, cap = mountCap, bytes = GiB) => {
    const { volume } = await ctl.createVolume(
      createReq(name, {
        volume_capabilities: [cap],
        capacity_range: { required_bytes: String(bytes), limit_bytes: '0' },
      }),
    );
    const id = volume.volume_id;
    await svc.nodeStageVolume({
      volume_id: id,
      staging_target_path: staging(id),
      volume_capability: cap,
      volume_context: {},
    });
    return { id, volume };
  };
  const publishReq = (id: string, target_path: string, cap = mountCap) => ({
    volume_id: id,
    staging_target_path: staging(id),
    target_path,
    volume_capability: cap,
    volume_context: {},
    readonly: false,
  });
  return { host, store, ctl, svc, staging, target, ready, publishReq };
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('the node plugin’s paths', () => {
  it('NodeUnpublish of a target that is an unrelated regular file leaves the file', async () => {
    const n = oneNode();
    const { id } = await n.ready('v1');
    const precious = join(kubelet, 'pods/uid/precious.db');
    await mkdir(join(kubelet, 'pods/uid'), { recursive: true });
    await writeFile(precious, 'data');
    expect(await codeOf(n.svc.nodeUnpublishVolume({ volume_id: id, target_path: precious }))).toBe('OK');
    expect(await readFile(precious, 'utf8')).toBe('data');
  });

  it('NodeUnpublish removes the mount directory and the block-device file NodePublish created', async () => {
    const n = oneNode();
    const { id } = await n.ready('v1');
    const dir = n.target(id);
    await n.svc.nodePublishVolume(n.publishReq(id, dir));
    expect(await exists(dir)).toBe(true);
    await n.svc.nodeUnpublishVolume({ volume_id: id, target_path: dir });
    expect(await exists(dir)).toBe(false);
    const b = await n.ready('b1', blockCap);
    const file = join(kubelet, 'plugins/kubernetes.io/csi/volumeDevices/publish', b.id, 'pod');
    await n.svc.nodePublishVolume(n.publishReq(b.id, file, blockCap));
    expect((await stat(file)).isFile()).toBe(true);
    await n.svc.nodeUnpublishVolume({ volume_id: b.id, target_path: file });
    expect(await exists(file)).toBe(false);
  });

  it('NodeUnpublish of one volume at another volume’s target leaves that publish mounted', async () => {
    const n = oneNode();
    const a = await n.ready('va');
    const b = await n.ready('vb');
    const t = n.target(b.id);
    await n.svc.nodePublishVolume(n.publishReq(b.id, t));
    expect(await codeOf(n.svc.nodeUnpublishVolume({ volume_id: a.id, target_path: t }))).toBe(
      status.FAILED_PRECONDITION,
    );
    expect(await n.host.getMount(t)).toBeDefined();
    expect(await exists(t)).toBe(true);
  });

  it.each([
    ['a control character', (k: string) => `${k}/pods/a\u0000b/mount`],
    ['a path outside it', () => '/etc'],
    ['`..` out of it', (k: string) => `${k}/pods/../../../etc`],
  ])(
    'NodePublish refuses %s with INVALID_ARGUMENT; stats and expand read nothing there (NOT_FOUND)',
    async (_, path) => {
      const n = oneNode();
      const { id } = await n.ready('v1');
      const p = path(kubelet);
      expect(await codeOf(n.svc.nodePublishVolume(n.publishReq(id, p)))).toBe(status.INVALID_ARGUMENT);
      expect(await codeOf(n.svc.nodeGetVolumeStats({ volume_id: id, volume_path: p }))).toBe(
        status.NOT_FOUND,
      );
      expect(
        await codeOf(n.svc.nodeExpandVolume({ volume_id: id, volume_path: p, capacity_range: null })),
      ).toBe(status.NOT_FOUND);
    },
  );

  it('NodeExpandVolume at another volume’s mount grows nothing there (NOT_FOUND)', async () => {
    const n = oneNode();
    const a = await n.ready('va');
    const b = await n.ready('vb');
    const t = n.target(b.id);
    await n.svc.nodePublishVolume(n.publishReq(b.id, t));
    let grown = 0;
    const grow = n.host.growFilesystem.bind(n.host);
    n.host.growFilesystem = async (...args) => {
      grown++;
      return grow(...args);
    };
    expect(
      await codeOf(n.svc.nodeExpandVolume({ volume_id: a.id, volume_path: t, capacity_range: null })),
    ).toBe(status.NOT_FOUND);
    expect(grown).toBe(0);
  });

  it('a NodePublish to a target under /proc answers instead of hanging, and frees the volume', async () => {
    // kubelet's directory is never /proc; this one is, so the target passes the path check and the
    // work itself (making the target directory) must end
    const n = oneNode(fsMountPoints, '/proc');
    const { id } = await n.ready('v1');
    const signal = AbortSignal.timeout(10_000);
    const code = await codeOf(
      n.svc.nodePublishVolume(n.publishReq(id, '/proc/meshstor-test/pods/x/mount'), signal),
    );
    expect(code).not.toBe('OK');
    expect(signal.aborted, 'the publish ran into its deadline instead of failing').toBe(false);
    expect(
      await codeOf(n.svc.nodeUnpublishVolume({ volume_id: id, target_path: '/proc/meshstor-test/x' })),
    ).toBe('OK');
  });

  it('no call holds a volume’s lock past its deadline: work that hangs, and the calls queued behind it, are answered', async () => {
    const hanging: MountPoints = {
      ensure: () => new Promise(() => undefined),
      remove: async () => undefined,
    };
    const n = oneNode(hanging);
    const { id } = await n.ready('v1');
    const first = codeOf(n.svc.nodePublishVolume(n.publishReq(id, n.target(id)), AbortSignal.timeout(200)));
    const queued = codeOf(
      n.svc.nodeUnpublishVolume({ volume_id: id, target_path: n.target(id) }, AbortSignal.timeout(300)),
    );
    expect(await first).not.toBe('OK');
    expect(await queued).not.toBe('OK');
  });
});

describe('CreateVolume’s name', () => {
  const ctl = () =>
    new ControllerService({
      store: new MemoryVolumeStore(),
      inventory: new StaticInventory(cluster(2, ['a'], [100])),
    });

  it.each([
    ['129 bytes', 'x'.repeat(129)],
    ['3.5 MB', 'n'.repeat(3_500_000)],
    ['129 bytes in 43 three-byte characters', '€'.repeat(43)],
    ['a NUL', 'pvc-\u0000'],
    ['a newline', 'pvc-1\nlevel=error'],
    ['DEL', 'pvc-\u007f'],
  ])('refuses %s with INVALID_ARGUMENT and stores nothing', async (_, name) => {
    const c = ctl();
    expect(await codeOf(c.createVolume(createReq(name)))).toBe(status.INVALID_ARGUMENT);
    expect(await c.allocator.store.list()).toEqual([]);
  });

  it('takes 128 bytes', async () => {
    expect(await codeOf(ctl().createVolume(createReq('y'.repeat(128))))).toBe('OK');
  });
});

describe('a capability with both mount and block', () => {
  it('is INVALID_ARGUMENT at CreateVolume, NodeStage and NodePublish', async () => {
    const n = oneNode();
    expect(await codeOf(n.ctl.createVolume(createReq('both', { volume_capabilities: [bothCap] })))).toBe(
      status.INVALID_ARGUMENT,
    );
    const { id } = await n.ready('v1');
    expect(
      await codeOf(
        n.svc.nodeStageVolume({
          volume_id: id,
          staging_target_path: n.staging(id),
          volume_capability: bothCap,
          volume_context: {},
        }),
      ),
    ).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(n.svc.nodePublishVolume(n.publishReq(id, n.target(id), bothCap)))).toBe(
      status.INVALID_ARGUMENT,
    );
  });
});

describe('accessibility_requirements.requisite', () => {
  const nodes = [
    node('n1', 'a', [drive('d0', 100)]),
    node('n2', 'a', [drive('d0', 100)]),
    node('n3', 'b', [drive('d0', 2)]),
  ];
  const ctl = () =>
    new ControllerService({ store: new MemoryVolumeStore(), inventory: new StaticInventory(nodes) });
  const topo = (segments: Record<string, string>) => ({ segments });
  const within = (requisite: ReturnType<typeof topo>[], preferred = requisite) =>
    createReq('v', { accessibility_requirements: { requisite, preferred } });

  it('naming no existing node or zone is RESOURCE_EXHAUSTED', async () => {
    expect(await codeOf(ctl().createVolume(within([topo({ [NODE_KEY]: 'nowhere' })])))).toBe(
      status.RESOURCE_EXHAUSTED,
    );
    expect(await codeOf(ctl().createVolume(within([topo({ [ZONE_KEY]: 'z9' })])))).toBe(
      status.RESOURCE_EXHAUSTED,
    );
    expect(await codeOf(ctl().createVolume(within([topo({ 'example.com/region': 'r1' })])))).toBe(
      status.RESOURCE_EXHAUSTED,
    );
  });

  it('is RESOURCE_EXHAUSTED when nothing inside it has room', async () => {
    const req = within([topo({ [ZONE_KEY]: 'b' })]);
    req.capacity_range = { required_bytes: String(10 * GiB), limit_bytes: '0' };
    expect(await codeOf(ctl().createVolume(req))).toBe(status.RESOURCE_EXHAUSTED);
  });

  it('puts every replica inside it', async () => {
    const c = ctl();
    // WaitForFirstConsumer's node comes first in preferred; the requisite still wins
    const req = within(
      [topo({ [NODE_KEY]: 'n2', [ZONE_KEY]: 'a' })],
      [topo({ [NODE_KEY]: 'n1', [ZONE_KEY]: 'a' })],
    );
    await c.createVolume(req);
    expect((await c.allocator.store.list())[0]?.replicas.map((r) => r.node)).toEqual(['n2']);
  });

  it('as external-provisioner sends it (every node’s segment) still spreads replicas', async () => {
    const c = ctl();
    const req = within(
      nodes.map((n) => topo({ [NODE_KEY]: n.name, [ZONE_KEY]: n.labels.zone as string })),
      [topo({ [NODE_KEY]: 'n1', [ZONE_KEY]: 'a' })],
    );
    req.parameters = { replicaCount: '2' };
    await c.createVolume(req);
    expect((await c.allocator.store.list())[0]?.replicas.map((r) => r.node).sort()).toEqual(['n1', 'n3']);
  });
});

describe('a volume too small for its filesystem', () => {
  it('a 1 MiB mount volume is rounded up to XFS’s 300 MiB and then stages', async () => {
    const n = oneNode();
    const { volume } = await n.ready('tiny', mountCap, MiB);
    expect(Number(volume.capacity_bytes)).toBe(300 * MiB);
  });

  it('is OUT_OF_RANGE when limit_bytes is below that', async () => {
    const n = oneNode();
    const req = createReq('tiny', {
      capacity_range: { required_bytes: String(MiB), limit_bytes: String(100 * MiB) },
    });
    expect(await codeOf(n.ctl.createVolume(req))).toBe(status.OUT_OF_RANGE);
  });

  it('a 1 MiB block volume stays 1 MiB (no filesystem)', async () => {
    const n = oneNode();
    const { volume } = await n.ready('raw', blockCap, MiB);
    expect(Number(volume.capacity_bytes)).toBe(MiB);
  });
});

describe('NodeExpandVolume’s capacity_range', () => {
  it.each([
    ['10 PiB required', { required_bytes: String(10 * 1024 ** 5), limit_bytes: '0' }, status.OUT_OF_RANGE],
    [
      'more than the controller expanded it to',
      { required_bytes: String(2 * GiB), limit_bytes: '0' },
      status.OUT_OF_RANGE,
    ],
    ['a limit below its size', { required_bytes: '0', limit_bytes: String(512 * MiB) }, status.OUT_OF_RANGE],
    [
      'required above limit',
      { required_bytes: String(GiB), limit_bytes: String(GiB / 2) },
      status.INVALID_ARGUMENT,
    ],
    ['a negative size', { required_bytes: '-1', limit_bytes: '0' }, status.INVALID_ARGUMENT],
  ])('%s is refused', async (_, capacity_range, code) => {
    const n = oneNode();
    const { id } = await n.ready('v1');
    await n.svc.nodePublishVolume(n.publishReq(id, n.target(id)));
    expect(
      await codeOf(n.svc.nodeExpandVolume({ volume_id: id, volume_path: n.target(id), capacity_range })),
    ).toBe(code);
  });

  it('its own size is fine', async () => {
    const n = oneNode();
    const { id } = await n.ready('v1');
    await n.svc.nodePublishVolume(n.publishReq(id, n.target(id)));
    const r = n.svc.nodeExpandVolume({
      volume_id: id,
      volume_path: n.target(id),
      capacity_range: { required_bytes: String(GiB), limit_bytes: String(2 * GiB) },
    });
    expect(await codeOf(r)).toBe('OK');
  });
});
