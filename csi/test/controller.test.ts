// The controller and identity services through a real gRPC client on a unix socket.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, drive, node } from '../../placement/test/fixtures.ts';
import { GiB, MiB } from '../../placement/units.ts';
import { MemoryVolumeStore, StaticInventory } from '../../state/memory-store.ts';
import { ControllerService } from '../controller.ts';
import { IdentityService } from '../identity.ts';
import { loadCsi, serveCsi } from '../server.ts';
import { NODE_KEY, ZONE_KEY } from '../topology.ts';

type Call = (req: object) => Promise<Record<string, unknown>>;

function promisify(client: grpc.Client): Record<string, Call> {
  const out: Record<string, Call> = {};
  for (const name of Object.keys(Object.getPrototypeOf(client))) {
    const fn = (client as unknown as Record<string, unknown>)[name];
    if (typeof fn !== 'function') continue;
    out[name] = (req) =>
      new Promise((resolve, reject) =>
        fn.call(client, req, (err: grpc.ServiceError | null, res: Record<string, unknown>) =>
          err ? reject(err) : resolve(res),
        ),
      );
  }
  return out;
}

const range = (bytes: number) => ({ required_bytes: String(bytes), limit_bytes: '0' });
const createReq = (name: string, bytes: number) => ({
  name,
  capacity_range: range(bytes),
  volume_capabilities: [
    {
      mount: { fs_type: 'xfs', mount_flags: [], volume_mount_group: '' },
      access_mode: { mode: 'SINGLE_NODE_WRITER' as const },
    },
  ],
  parameters: { replicaCount: '2' },
  secrets: {},
  volume_content_source: null,
  accessibility_requirements: null,
  mutable_parameters: {},
});

const mount = { mount: { fs_type: 'xfs' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const block = { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

let server: grpc.Server;
let ctl: Record<string, Call>;
let id: Record<string, Call>;
let store: MemoryVolumeStore;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshstor-csi-'));
  const socket = join(dir, 'csi.sock');
  store = new MemoryVolumeStore();
  const nodes = [...cluster(3, ['a', 'b', 'c'], [100]), node('small', 'a', [drive('d0', 3)])];
  server = await serveCsi(socket, {
    identity: new IdentityService({ controller: true, ready: () => true }),
    controller: new ControllerService({ store, inventory: new StaticInventory(nodes), seed: 1 }),
  });
  const pkg = loadCsi();
  const creds = grpc.credentials.createInsecure();
  ctl = promisify(new pkg.csi.v1.Controller(`unix:${socket}`, creds));
  id = promisify(new pkg.csi.v1.Identity(`unix:${socket}`, creds));
});

afterAll(() => server.forceShutdown());

const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return grpc.status[(e as grpc.ServiceError).code];
  }
};

describe('identity', () => {
  it('names the driver and its capabilities', async () => {
    expect((await id.GetPluginInfo?.({}))?.name).toBe('meshstor.io');
    const caps = (await id.GetPluginCapabilities?.({}))?.capabilities as {
      service?: { type: string };
      volume_expansion?: { type: string };
    }[];
    expect(caps.map((c) => c.service?.type ?? c.volume_expansion?.type)).toEqual([
      'CONTROLLER_SERVICE',
      'VOLUME_ACCESSIBILITY_CONSTRAINTS',
      'ONLINE',
    ]);
    expect((await id.Probe?.({}))?.ready).toEqual({ value: true });
  });
});

describe('CreateVolume', () => {
  it('places replicas, prefers the WFFC node, returns no node-pinning topology, is idempotent', async () => {
    const req = {
      name: 'pvc-one',
      capacity_range: { required_bytes: String(5 * GiB) },
      volume_capabilities: [mount],
      parameters: { replicaCount: '2', 'csi.storage.k8s.io/pvc/name': 'data' },
      accessibility_requirements: { preferred: [{ segments: { [NODE_KEY]: 'node-2', [ZONE_KEY]: 'c' } }] },
    };
    const res = await ctl.CreateVolume?.(req);
    const vol = res?.volume as { volume_id: string; capacity_bytes: string; accessible_topology: unknown[] };
    expect(vol.volume_id).toBe('pvc-one');
    expect(vol.capacity_bytes).toBe(String(5 * GiB));
    expect(vol.accessible_topology).toEqual([]);
    const rec = await store.get('pvc-one');
    expect(rec?.replicas.map((r) => r.node)[0]).toBe('node-2');
    expect(new Set(rec?.replicas.map((r) => r.node)).size).toBe(2);
    expect((await ctl.CreateVolume?.(req))?.volume).toEqual(res?.volume);
    expect(
      await code(
        ctl.CreateVolume?.({
          ...req,
          capacity_range: { required_bytes: String(9 * GiB) },
        }) as Promise<unknown>,
      ),
    ).toBe('ALREADY_EXISTS');
  });

  it('refuses bad input with INVALID_ARGUMENT naming the problem', async () => {
    const base = { name: 'pvc-bad', volume_capabilities: [mount], parameters: {} };
    const cases: [object, RegExp][] = [
      [{ ...base, name: '' }, /name is required/],
      [{ ...base, volume_capabilities: [] }, /volume_capabilities is required/],
      [{ ...base, parameters: { replicas: '2' } }, /unknown StorageClass parameter "replicas"/],
      [{ ...base, parameters: { replicaCount: 'two' } }, /"replicaCount" must be a whole number/],
      [{ ...base, parameters: { spread: 'maybe' } }, /"spread" must be required, preferred or none/],
      [
        { ...base, volume_capabilities: [{ ...mount, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }] },
        /not supported/,
      ],
      [
        {
          ...base,
          volume_capabilities: [{ mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
        },
        /fs_type "ext4"/,
      ],
      [{ ...base, capacity_range: { required_bytes: '10', limit_bytes: '5' } }, /above limit_bytes/],
      [
        {
          ...base,
          volume_capabilities: [{ ...mount, mount: { fs_type: 'xfs', mount_flags: ['noatime', 'ro'] } }],
        },
        /mount flag "ro" is not accepted: read-only comes from the access mode .*\(allowed: noatime, /,
      ],
    ];
    for (const [req, msg] of cases) {
      const err = await ctl.CreateVolume?.(req).catch((e: grpc.ServiceError) => e);
      expect((err as grpc.ServiceError).code, JSON.stringify(req)).toBe(grpc.status.INVALID_ARGUMENT);
      expect((err as grpc.ServiceError).details).toMatch(msg);
    }
    expect(await store.get('pvc-bad')).toBeUndefined();
  });

  it('says RESOURCE_EXHAUSTED with per-node reasons when nothing fits; OUT_OF_RANGE for impossible ranges', async () => {
    const err = (await ctl
      .CreateVolume?.({
        name: 'huge',
        capacity_range: { required_bytes: String(500 * GiB) },
        volume_capabilities: [block],
      })
      .catch((e) => e)) as grpc.ServiceError;
    expect(grpc.status[err.code]).toBe('RESOURCE_EXHAUSTED');
    expect(err.details).toMatch(/node-0: largest free extent/);
    const range = { required_bytes: String(MiB + 1), limit_bytes: String(MiB + 2) };
    expect(
      await code(
        ctl.CreateVolume?.({
          name: 'odd',
          capacity_range: range,
          volume_capabilities: [block],
        }) as Promise<unknown>,
      ),
    ).toBe('OUT_OF_RANGE');
  });

  it('serialises concurrent creates of one name: one volume, same answer', async () => {
    const req = {
      name: 'pvc-race',
      capacity_range: { required_bytes: String(GiB) },
      volume_capabilities: [block],
    };
    const answers = await Promise.all(Array.from({ length: 5 }, () => ctl.CreateVolume?.(req)));
    for (const a of answers) expect(a).toEqual(answers[0]);
    expect((await store.list()).filter((r) => r.name === 'pvc-race')).toHaveLength(1);
  });

  it('concurrent creates of different names never share an extent', async () => {
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        ctl.CreateVolume?.({
          name: `pvc-par-${i}`,
          capacity_range: { required_bytes: String(2 * GiB) },
          volume_capabilities: [block],
        }),
      ),
    );
    const taken = (await store.list()).flatMap((r) =>
      r.replicas.map((x) => ({ k: `${x.node}/${x.drive}`, ...x.extent })),
    );
    taken.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.start - b.start));
    for (let i = 1; i < taken.length; i++) {
      const [a, b] = [taken[i - 1], taken[i]] as [(typeof taken)[number], (typeof taken)[number]];
      if (a.k === b.k) expect(b.start).toBeGreaterThanOrEqual(a.end);
    }
  });
});

describe('DeleteVolume, Validate, GetCapacity, Expand', () => {
  it('deletes idempotently and frees the extents', async () => {
    await ctl.CreateVolume?.({
      name: 'pvc-del',
      capacity_range: { required_bytes: String(GiB) },
      volume_capabilities: [block],
    });
    await ctl.DeleteVolume?.({ volume_id: 'pvc-del' });
    expect(await store.get('pvc-del')).toBeUndefined();
    await ctl.DeleteVolume?.({ volume_id: 'pvc-del' });
    expect(await code(ctl.DeleteVolume?.({ volume_id: '' }) as Promise<unknown>)).toBe('INVALID_ARGUMENT');
  });

  it('validates capabilities of existing volumes', async () => {
    const ok = await ctl.ValidateVolumeCapabilities?.({ volume_id: 'pvc-one', volume_capabilities: [mount] });
    expect(ok?.confirmed).toBeTruthy();
    const no = await ctl.ValidateVolumeCapabilities?.({
      volume_id: 'pvc-one',
      volume_capabilities: [{ ...mount, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }],
    });
    expect(no?.confirmed).toBeNull();
    expect(no?.message).toMatch(/not supported/);
    const flagged = await ctl.ValidateVolumeCapabilities?.({
      volume_id: 'pvc-one',
      volume_capabilities: [{ ...mount, mount: { fs_type: 'xfs', mount_flags: ['noatime', 'nodev'] } }],
    });
    expect(flagged?.confirmed).toBeTruthy();
    const refused = await ctl.ValidateVolumeCapabilities?.({
      volume_id: 'pvc-one',
      volume_capabilities: [{ ...mount, mount: { fs_type: 'xfs', mount_flags: ['uid=0'] } }],
    });
    expect(refused?.confirmed).toBeNull();
    expect(refused?.message).toMatch(/mount flag "uid=0" takes a value/);
    expect(
      await code(
        ctl.ValidateVolumeCapabilities?.({
          volume_id: 'nope',
          volume_capabilities: [mount],
        }) as Promise<unknown>,
      ),
    ).toBe('NOT_FOUND');
  });

  it('reports capacity as the largest volume that really fits, per replica count and zone', async () => {
    const one = await ctl.GetCapacity?.({ parameters: { replicaCount: '1' } });
    const three = await ctl.GetCapacity?.({ parameters: { replicaCount: '3' } });
    const zoneA = await ctl.GetCapacity?.({
      parameters: { replicaCount: '2' },
      accessible_topology: { segments: { [ZONE_KEY]: 'a' } },
    });
    // external-provisioner asks with each node's whole segment: a pod there reaches copies on any node
    const nodeInZoneA = await ctl.GetCapacity?.({
      parameters: { replicaCount: '2' },
      accessible_topology: { segments: { [NODE_KEY]: 'small', [ZONE_KEY]: 'a' } },
    });
    const anywhere = await ctl.GetCapacity?.({ parameters: { replicaCount: '2' } });
    expect(nodeInZoneA?.available_capacity).toBe(anywhere?.available_capacity);
    expect(Number(anywhere?.available_capacity)).toBeGreaterThan(3 * GiB);
    // The 100 GiB drives hold the volumes made above; one still has ~85+ GiB in one piece.
    expect(Number(one?.available_capacity)).toBeGreaterThan(80 * GiB);
    expect(Number(one?.available_capacity)).toBeLessThan(100 * GiB);
    expect(Number(three?.available_capacity)).toBeLessThanOrEqual(Number(one?.available_capacity));
    expect((one?.maximum_volume_size as { value: string } | undefined)?.value).toBe(one?.available_capacity);
    // zone a holds node-0 and "small" (3 GiB): two replicas in zone a are at most ~3 GiB, less
    // what small volumes put on "small" (they fill slack beside big slots first: ADR 0003)
    expect(Number(zoneA?.available_capacity)).toBeLessThan(3 * GiB);
    expect(Number(zoneA?.available_capacity)).toBeGreaterThan(GiB / 2);
  });

  it('reports capacity for a class with bad parameters as for the defaults (CreateVolume refuses it on the claim)', async () => {
    const bad = await ctl.GetCapacity?.({ parameters: { replicaCount: 'two' } });
    const def = await ctl.GetCapacity?.({ parameters: {} });
    expect(bad?.available_capacity).toBe(def?.available_capacity);
    expect(Number(bad?.available_capacity)).toBeGreaterThan(0);
    expect(
      await code(
        ctl.CreateVolume?.({
          name: 'x',
          volume_capabilities: [block],
          parameters: { replicaCount: 'two' },
        }) as Promise<unknown>,
      ),
    ).toBe('INVALID_ARGUMENT');
  });

  it('expands in place when the bytes after each member are free, idempotently', async () => {
    const svc = new ControllerService({
      store: new MemoryVolumeStore(),
      inventory: new StaticInventory(cluster(2, ['a', 'b'], [100])),
    });
    await svc.createVolume(createReq('grow', 4 * GiB));
    const r = await svc.controllerExpandVolume({
      volume_id: 'grow',
      capacity_range: range(8 * GiB),
      secrets: {},
      volume_capability: null,
    });
    expect(r).toEqual({ capacity_bytes: String(8 * GiB), node_expansion_required: true });
    const grown = await svc.controllerExpandVolume({
      volume_id: 'grow',
      capacity_range: range(6 * GiB),
      secrets: {},
      volume_capability: null,
    });
    expect(grown.capacity_bytes).toBe(String(8 * GiB));
  });

  it('growth blocked in place: ABORTED (pending) while a move must wait for a pod, RESOURCE_EXHAUSTED when no extent of the size exists', async () => {
    const expand = (bytes: number) =>
      ctl
        .ControllerExpandVolume?.({ volume_id: 'pvc-one', capacity_range: { required_bytes: String(bytes) } })
        .catch((e) => e) as Promise<grpc.ServiceError>;
    const none = await expand(500 * GiB);
    expect(grpc.status[none.code]).toBe('RESOURCE_EXHAUSTED');
    expect(none.details).toMatch(/cannot grow in place to .* no node has room for r0/);
    expect((await store.get('pvc-one'))?.expansion).toBeUndefined(); // nothing recorded
    // Room exists at 8 GiB, but nobody runs the array to copy the member: pending, shown, retried.
    const err = await expand(8 * GiB);
    expect(grpc.status[err.code]).toBe('ABORTED');
    expect(err.details).toMatch(/expansion to 8589934592 bytes in progress: waiting for a pod to stage it/);
    const rec = await store.get('pvc-one');
    expect(rec?.sizeBytes).toBe(5 * GiB);
    expect(rec?.expansion).toMatchObject({ sizeBytes: 8 * GiB });
    expect(rec?.relocation).toBeUndefined();
    expect(
      await code(
        ctl.ControllerExpandVolume?.({
          volume_id: 'nope',
          capacity_range: { required_bytes: '1' },
        }) as Promise<unknown>,
      ),
    ).toBe('NOT_FOUND');
  });
});
