// The Node service on SimulatedHost, with the Controller on the same in-memory state.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../agent/host/errors.ts';
import { SimulatedHost } from '../../agent/host/simulated.ts';
import { HostInventory } from '../../agent/host-inventory.ts';
import { GiB } from '../../placement/units.ts';
import { MemoryVolumeStore } from '../../state/memory-store.ts';
import { ControllerService } from '../controller.ts';
import { type CsiError, codeFor } from '../errors.ts';
import { NodeService } from '../node.ts';
import { NODE_KEY } from '../topology.ts';
import type { VolumeCapability } from '../types.ts';
import { codeOf, mountCap } from './requests.ts';

const blockCap = { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } };

function setup() {
  const host = new SimulatedHost({
    hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:test-n1',
    drives: [{ id: 'SIM0', sizeBytes: 100 * GiB }],
  });
  const store = new MemoryVolumeStore();
  const dirs = new Map<string, 'file' | 'dir'>();
  const ctl = new ControllerService({ store, inventory: new HostInventory('n1', 'a', host) });
  const node = new NodeService({
    // these tests play kubelet at paths of their own: any absolute path is under '/'
    kubeletDir: '/',
    nodeName: 'n1',
    zone: 'a',
    host,
    store,
    mountPoints: {
      ensure: async (p, kind) => {
        dirs.set(p, kind);
      },
      remove: async (p) => {
        dirs.delete(p);
      },
    },
  });
  const create = (name: string, gib: number, cap: typeof mountCap | typeof blockCap = mountCap) =>
    ctl.createVolume({
      name,
      capacity_range: { required_bytes: String(gib * GiB), limit_bytes: '0' },
      volume_capabilities: [cap],
      parameters: {},
      secrets: {},
      volume_content_source: null,
      accessibility_requirements: null,
      mutable_parameters: {},
    });
  return { host, store, ctl, node, dirs, create };
}

const stage = (volume_id: string, volume_capability: VolumeCapability = mountCap) => ({
  volume_id,
  staging_target_path: '/stage/x',
  volume_capability,
  volume_context: {},
});
const publish = (volume_id: string, target_path = '/pods/x', readonly = false) => ({
  ...stage(volume_id),
  target_path,
  readonly,
});
const publishBlock = (volume_id: string, target_path = '/pods/b', readonly = false) => ({
  ...stage(volume_id, blockCap),
  target_path,
  readonly,
});

describe('NodeService on SimulatedHost', () => {
  it('stages, publishes, reports, unpublishes and unstages; every step idempotent', async () => {
    const { host, node, store, dirs, create } = setup();
    const { volume } = await create('v1', 2);
    await node.nodeStageVolume(stage(volume.volume_id));
    await node.nodeStageVolume(stage(volume.volume_id));
    const rec = await store.get(volume.volume_id);
    expect(rec?.arrayUuid).toBeTruthy();
    expect(rec?.replicas.map((r) => r.state)).toEqual(['InSync']);
    const part = (await host.listDrives())[0]?.partitions.find((p) => p.owner?.volumeId === volume.volume_id);
    expect(part?.start).toBe(rec?.replicas[0]?.extent.start);
    await node.nodePublishVolume(publish(volume.volume_id));
    await node.nodePublishVolume(publish(volume.volume_id));
    expect(dirs.get('/pods/x')).toBe('dir');
    const stats = await node.nodeGetVolumeStats({ volume_id: volume.volume_id, volume_path: '/pods/x' });
    expect(stats.usage[0]?.unit).toBe('BYTES');
    expect(Number(stats.usage[0]?.total)).toBeGreaterThan(GiB);
    expect(stats.volume_condition.abnormal).toBe(false);
    await node.nodeUnpublishVolume({ volume_id: volume.volume_id, target_path: '/pods/x' });
    await node.nodeUnpublishVolume({ volume_id: volume.volume_id, target_path: '/pods/x' });
    expect(dirs.has('/pods/x')).toBe(false);
    await node.nodeUnstageVolume({ volume_id: volume.volume_id, staging_target_path: '/stage/x' });
    await node.nodeUnstageVolume({ volume_id: volume.volume_id, staging_target_path: '/stage/x' });
    expect(await host.getArray(volume.volume_id)).toBeUndefined();
    // staged again after a stop: assembled from the same member, the filesystem is still there
    await node.nodeStageVolume(stage(volume.volume_id));
    expect((await host.getArray(volume.volume_id))?.uuid).toBe(rec?.arrayUuid);
  });

  it('publishes a raw block volume: the array device bound onto a file, stats in bytes, unpublish undoes it', async () => {
    const { host, node, dirs, create } = setup();
    const { volume } = await create('b1', 2, blockCap);
    const id = volume.volume_id;
    await node.nodeStageVolume(stage(id, blockCap));
    const array = await host.getArray(id);
    if (!array) throw new Error('not staged');
    expect(await host.getMount('/stage/x')).toBeUndefined();
    await expect(host.mount(array.devicePath, '/probe')).rejects.toThrow(InvalidArgumentError); // no mkfs
    await node.nodePublishVolume(publishBlock(id));
    await node.nodePublishVolume(publishBlock(id));
    expect(dirs.get('/pods/b')).toBe('file');
    expect(await host.getMount('/pods/b')).toEqual({
      kind: 'device',
      devicePath: array.devicePath,
      readonly: false,
    });
    const stats = await node.nodeGetVolumeStats({ volume_id: id, volume_path: '/pods/b' });
    expect(stats.usage).toEqual([{ unit: 'BYTES', total: String(array.sizeBytes) }]);
    // the array stays while a pod has its device
    expect(await codeOf(node.nodeUnstageVolume({ volume_id: id, staging_target_path: '/stage/x' }))).toBe(9);
    await node.nodeUnpublishVolume({ volume_id: id, target_path: '/pods/b' });
    await node.nodeUnpublishVolume({ volume_id: id, target_path: '/pods/b' });
    expect(await host.getMount('/pods/b')).toBeUndefined();
    expect(dirs.has('/pods/b')).toBe(false);
    expect(await codeOf(node.nodeGetVolumeStats({ volume_id: id, volume_path: '/pods/b' }))).toBe(5);
    await node.nodeUnstageVolume({ volume_id: id, staging_target_path: '/stage/x' });
    expect(await host.getArray(id)).toBeUndefined();
  });

  it('publishes read-only as a read-only bind of the staged filesystem, beside a writable one', async () => {
    const { host, node, create } = setup();
    const { volume } = await create('r1', 2);
    const id = volume.volume_id;
    await node.nodeStageVolume(stage(id));
    await node.nodePublishVolume(publish(id, '/pods/ro', true));
    await node.nodePublishVolume(publish(id, '/pods/ro', true));
    await node.nodePublishVolume(publish(id, '/pods/rw'));
    const array = await host.getArray(id);
    const fs = { kind: 'filesystem', devicePath: array?.devicePath };
    expect(await host.getMount('/pods/ro')).toEqual({ ...fs, readonly: true, options: ['ro', 'relatime'] });
    expect(await host.getMount('/pods/rw')).toEqual({ ...fs, readonly: false, options: ['rw', 'relatime'] });
    expect(host.canWrite('/pods/ro')).toBe(false);
    expect(host.canWrite('/pods/rw')).toBe(true);
    expect(host.canWrite('/stage/x')).toBe(true);
    // published read-only at this target already: a writable publish there is incompatible
    expect(await codeOf(node.nodePublishVolume(publish(id, '/pods/ro')))).toBe(6);
    const stats = await node.nodeGetVolumeStats({ volume_id: id, volume_path: '/pods/ro' });
    expect(stats.usage.map((u) => u.unit)).toEqual(['BYTES', 'INODES']);
    await node.nodeUnpublishVolume({ volume_id: id, target_path: '/pods/ro' });
    await node.nodeUnpublishVolume({ volume_id: id, target_path: '/pods/rw' });
    await node.nodeUnstageVolume({ volume_id: id, staging_target_path: '/stage/x' });
    expect(await host.getArray(id)).toBeUndefined();
  });

  it('stages with the mount flags asked, each once; a re-stage keeps the mount; publishes carry them', async () => {
    const { host, node, create } = setup();
    const id = (await create('f1', 2)).volume.volume_id;
    const flagged = (...mount_flags: string[]) => ({
      ...mountCap,
      mount: { ...mountCap.mount, mount_flags },
    });
    await node.nodeStageVolume(stage(id, flagged('noatime', 'nodev', 'discard', 'noatime')));
    expect(host.mountFlagsAt('/stage/x')).toEqual(['noatime', 'nodev', 'discard']);
    expect((await host.getMount('/stage/x'))?.options).toEqual(['rw', 'nodev', 'noatime']);
    // staged already: the mount stays as it was made, nothing is remounted
    await node.nodeStageVolume(stage(id, flagged('strictatime')));
    expect(host.mountFlagsAt('/stage/x')).toEqual(['noatime', 'nodev', 'discard']);
    // a publish binds the staged mount, which carries its per-mount flags, read-only or not
    await node.nodePublishVolume({ ...publish(id, '/pods/ro', true), volume_capability: flagged('noatime') });
    await node.nodePublishVolume({ ...publish(id, '/pods/rw'), volume_capability: flagged('noatime') });
    expect((await host.getMount('/pods/ro'))?.options).toEqual(['ro', 'nodev', 'noatime']);
    expect((await host.getMount('/pods/rw'))?.options).toEqual(['rw', 'nodev', 'noatime']);
  });

  it('refuses a mount flag off the allow-list at stage and publish, naming it, and changes nothing', async () => {
    const { host, node, store, create } = setup();
    const id = (await create('f2', 2)).volume.volume_id;
    const flagged = (...mount_flags: string[]) => ({
      ...mountCap,
      mount: { ...mountCap.mount, mount_flags },
    });
    const err = await node.nodeStageVolume(stage(id, flagged('noatime', 'nouuid'))).catch((e: CsiError) => e);
    expect(codeFor(err)).toBe(3);
    expect((err as CsiError).message).toMatch(/mount flag "nouuid" is not accepted: MeshStor always mounts/);
    expect(await host.getArray(id)).toBeUndefined();
    expect((await store.get(id))?.attachment).toBeUndefined();
    await node.nodeStageVolume(stage(id));
    expect(await codeOf(node.nodePublishVolume({ ...publish(id), volume_capability: flagged('ro') }))).toBe(
      3,
    );
    expect(await host.getMount('/pods/x')).toBeUndefined();
  });

  it('publishes a raw block volume read-only; refuses a target another volume holds and an unmounted staging path', async () => {
    const { host, node, create } = setup();
    const b = (await create('b2', 1, blockCap)).volume.volume_id;
    const m = (await create('m2', 1)).volume.volume_id;
    await node.nodeStageVolume(stage(b, blockCap));
    await node.nodePublishVolume(publishBlock(b, '/pods/b', true));
    expect((await host.getMount('/pods/b'))?.readonly).toBe(true);
    await node.nodeStageVolume({ ...stage(m), staging_target_path: '/stage/m' });
    expect(
      await codeOf(node.nodePublishVolume({ ...publish(m, '/pods/b'), staging_target_path: '/stage/m' })),
    ).toBe(6);
    expect(
      await codeOf(node.nodePublishVolume({ ...publish(m, '/pods/m'), staging_target_path: '/stage/none' })),
    ).toBe(9);
    expect(await host.getMount('/pods/m')).toBeUndefined();
  });

  it('expands a raw block volume: partition and array grow, there is no filesystem to grow', async () => {
    const { host, node, ctl, create } = setup();
    const id = (await create('b3', 2, blockCap)).volume.volume_id;
    await node.nodeStageVolume(stage(id, blockCap));
    await node.nodePublishVolume(publishBlock(id));
    await ctl.controllerExpandVolume({
      volume_id: id,
      capacity_range: { required_bytes: String(4 * GiB), limit_bytes: '0' },
      secrets: {},
      volume_capability: blockCap,
    });
    const r = await node.nodeExpandVolume({ volume_id: id, volume_path: '/pods/b', capacity_range: null });
    expect(Number(r.capacity_bytes)).toBeGreaterThanOrEqual(4 * GiB - 8 * 1024 * 1024);
    const stats = await node.nodeGetVolumeStats({ volume_id: id, volume_path: '/pods/b' });
    expect(stats.usage[0]?.total).toBe(String((await host.getArray(id))?.sizeBytes));
  });

  it('resumes after a crash between creating the array and recording it', async () => {
    const { host, node, store, create } = setup();
    const { volume } = await create('v2', 2);
    const rec = await store.get(volume.volume_id);
    const r0 = rec?.replicas[0];
    if (!rec || !r0) throw new Error('no record');
    const [part] = await host.createPartitions(r0.drive, [
      { volumeId: rec.id, replicaId: r0.id, extent: r0.extent },
    ]);
    await host.createArray({ volumeId: rec.id, devices: [part?.path as string] });
    await host.stopArray(rec.id); // "crash": the array exists on disk, the record never heard of it
    await node.nodeStageVolume(stage(rec.id));
    expect((await store.get(rec.id))?.arrayUuid).toBeTruthy();
  });

  it('answers bad calls with the spec codes', async () => {
    const { node, create } = setup();
    const { volume } = await create('v3', 1);
    expect(await codeOf(node.nodeStageVolume({ ...stage(''), volume_id: '' }))).toBe(3);
    expect(await codeOf(node.nodeStageVolume({ ...stage(volume.volume_id), staging_target_path: '' }))).toBe(
      3,
    );
    expect(await codeOf(node.nodeStageVolume({ ...stage(volume.volume_id), volume_capability: null }))).toBe(
      3,
    );
    expect(await codeOf(node.nodeStageVolume(stage('missing')))).toBe(5);
    expect(await codeOf(node.nodePublishVolume(publish(volume.volume_id)))).toBe(9); // not staged
    expect(
      await codeOf(node.nodeGetVolumeStats({ volume_id: volume.volume_id, volume_path: '/nowhere' })),
    ).toBe(5);
    expect(await codeOf(node.nodePublishVolume(publish(volume.volume_id, '/pods/x', true)))).toBe(9);
  });

  it('without cluster state (--state memory) refuses a member on another node, saying why', async () => {
    const { node, store } = setup();
    await store.create({
      id: 'remote',
      name: 'remote',
      sizeBytes: GiB,
      replicaCount: 1,
      spread: { domain: 'zone', mode: 'none' },
      fsType: 'xfs',
      replicas: [{ id: 'r0', node: 'n2', drive: 'X', extent: { start: 0, end: GiB }, state: 'InSync' }],
      phase: 'Active',
    });
    const err = await node.nodeStageVolume(stage('remote')).catch((e: CsiError) => e);
    expect(codeFor(err)).toBe(9);
    expect((err as CsiError).message).toMatch(/a member on n2, and this agent runs without cluster state/);
  });

  it('grows online: controller grows the extents, the node grows partition, array and filesystem', async () => {
    const { node, ctl, create } = setup();
    const { volume } = await create('v4', 2);
    await node.nodeStageVolume(stage(volume.volume_id));
    await node.nodePublishVolume(publish(volume.volume_id));
    const before = await node.nodeGetVolumeStats({ volume_id: volume.volume_id, volume_path: '/pods/x' });
    await ctl.controllerExpandVolume({
      volume_id: volume.volume_id,
      capacity_range: { required_bytes: String(4 * GiB), limit_bytes: '0' },
      secrets: {},
      volume_capability: mountCap,
    });
    const r = await node.nodeExpandVolume({
      volume_id: volume.volume_id,
      volume_path: '/pods/x',
      capacity_range: null,
    });
    expect(Number(r.capacity_bytes)).toBeGreaterThanOrEqual(4 * GiB - 8 * 1024 * 1024);
    const after = await node.nodeGetVolumeStats({ volume_id: volume.volume_id, volume_path: '/pods/x' });
    expect(Number(after.usage[0]?.total)).toBeGreaterThan(Number(before.usage[0]?.total));
  });

  it('reports its node and zone as topology', async () => {
    const { node } = setup();
    expect(await node.nodeGetInfo()).toEqual({
      node_id: 'n1',
      max_volumes_per_node: '0',
      accessible_topology: { segments: { [NODE_KEY]: 'n1', 'topology.kubernetes.io/zone': 'a' } },
    });
  });
});
